/** `htvend gc` wiring (commander only) → src/commands/gc.ts. Docs: docs/lifecycle.md. */
import { Command } from 'commander';
import type { CommandKit, Opts } from './htvend.js';
import { addGlobals, addStoreFlags, storeConfig } from './htvend.js';

export function registerGc(kit: CommandKit): void {
  const c = addStoreFlags(addGlobals(new Command('gc')))
    .description('[htvend-ts] Delete the blobs that no kept lockfile references (mark and sweep)')
    .requiredOption('--keep <files...>', 'Lockfiles (paths or quoted globs) whose blobs stay; each must exist and parse')
    .option('--min-age <duration>', 'Never delete a blob younger than this (a build in progress has not written its lockfile yet)', '24h')
    .option('--dry-run', 'Print what would be deleted; delete nothing')
    .action((o: Opts, cmd: Command) => {
      kit.withGlobals(cmd, o);
      kit.run.action = async (log) => {
        const { parseDuration } = await import('../lifecycle/duration.js');
        const { gcCommand } = await import('../commands/gc.js');
        return gcCommand(
          { store: storeConfig(o, kit.env), keep: o['keep'] as string[], minAgeMs: parseDuration(o['minAge'] as string, '--min-age'), dryRun: Boolean(o['dryRun']) },
          { env: kit.env, log },
        );
      };
    });
  kit.add(c);
}
