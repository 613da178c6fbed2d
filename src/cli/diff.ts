/** `htvend diff` wiring (commander only) → src/commands/diff.ts. Docs: docs/lifecycle.md. */
import { Command } from 'commander';
import type { CommandKit, Opts } from './htvend.js';
import { addGlobals } from './htvend.js';

export function registerDiff(kit: CommandKit): void {
  const c = addGlobals(new Command('diff'))
    .description('[htvend-ts] Show what changed between two lockfiles, grouped by package (exit 0 same, 1 different, 2 trouble)')
    .argument('<old>', 'old lockfile: a path, or git:REV:PATH (e.g. git:HEAD~1:assets.json)')
    .argument('<new>', 'new lockfile: a path, or git:REV:PATH')
    .option('--json', 'Print the differences as JSON')
    .action((oldArg: string, newArg: string, o: Opts, cmd: Command) => {
      kit.withGlobals(cmd, o);
      kit.run.action = async () => {
        const { diffCommand } = await import('../commands/diff.js');
        return diffCommand({ old: oldArg, new: newArg, json: Boolean(o['json']) });
      };
    });
  kit.add(c);
}
