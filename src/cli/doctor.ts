/**
 * `htvend doctor [--blobs-dir DIR]`: commander wiring only; the checks live in
 * src/commands/doctor.ts. Prints one line per check and exits 1 when something the builder
 * needs is missing (warnings alone exit 0).
 */
import { Command } from 'commander';
import type { Logger } from '../util/log.js';
import { expandXdg } from './common.js';

/** The part of htvend.ts's run state a subcommand fills in. */
export interface RunSlot {
  action?: (log: Logger) => Promise<number>;
  globals: Record<string, unknown>;
}

const DEFAULT_BLOBS_DIR = '${XDG_DATA_HOME}/htvend/cache/blobs';

export function registerDoctor(root: Command, env: NodeJS.ProcessEnv, run: RunSlot): void {
  const c = new Command('doctor')
    .description('Check this machine for what recording and image building need (runc/crun, overlayfs, namespaces, qemu, free space); prints the fix for each')
    .option('--blobs-dir <dir>', 'Blob dir whose free space is checked', DEFAULT_BLOBS_DIR)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s.startsWith('error:') ? `htvend doctor: ${s}` : s) })
    .action((o: { blobsDir: string }) => {
      run.globals = { ...root.opts() };
      run.action = async () => {
        const { doctor, formatChecks } = await import('../commands/doctor.js');
        const results = await doctor({ blobsDir: expandXdg(o.blobsDir, env), env });
        process.stdout.write(formatChecks(results));
        const missing = results.filter((r) => r.status === 'missing');
        if (missing.length) {
          process.stderr.write(`htvend doctor: missing: ${missing.map((r) => r.name).join(', ')} (build-img-with-proxy needs these)\n`);
          return 1;
        }
        return 0;
      };
    });
  root.addCommand(c);
}
