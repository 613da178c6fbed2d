/** `htvend outdated` wiring (commander only) → src/commands/outdated.ts. Docs: docs/lifecycle.md. */
import { Command } from 'commander';
import { HtvendError } from '../util/errors.js';
import type { CommandKit, Opts } from './htvend.js';
import { addGlobals } from './htvend.js';

export function registerOutdated(kit: CommandKit): void {
  const c = addGlobals(new Command('outdated'))
    .description('[htvend-ts] Ask upstream whether each recorded asset still has the same bytes (exit 1 when any changed or is gone)')
    .option('-m, --manifest <file>', 'Manifest file to check', './assets.json')
    .option('--deep', 'Download and hash every asset instead of asking with validators')
    .option('--jobs <n>', 'Assets checked in parallel', '8')
    .option('--json', 'Print every asset with its status as JSON')
    .action((o: Opts, cmd: Command) => {
      kit.withGlobals(cmd, o);
      kit.run.action = async (log) => {
        const jobs = Number(o['jobs']);
        if (!Number.isInteger(jobs) || jobs < 1 || jobs > 256) throw new HtvendError('USAGE', `--jobs ${JSON.stringify(o['jobs'])}: want an integer from 1 to 256`);
        const { outdatedCommand } = await import('../commands/outdated.js');
        return outdatedCommand({ manifest: o['manifest'] as string, deep: Boolean(o['deep']), jobs, json: Boolean(o['json']) }, { env: kit.env, log });
      };
    });
  kit.add(c);
}
