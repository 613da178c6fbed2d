/**
 * `htvend doctor [--blobs-dir DIR]`: commander wiring only; the checks live in
 * src/commands/doctor.ts. Prints one line per check and exits 1 when something the builder
 * needs is missing (warnings alone exit 0).
 */
import { Command } from 'commander';
import type { Logger } from '../util/log.js';
import { commanderOutput, expandXdg } from './common.js';
import { writeStderr, writeStdout } from '../util/stdio.js';

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
    .option('--platform <list>', 'Also check emulation (qemu + binfmt_misc) for these build platforms, comma-separated (e.g. linux/arm64,linux/amd64); default: this host only, as build-img-with-proxy')
    .exitOverride()
    .configureOutput(commanderOutput('htvend', 'htvend doctor'))
    .addHelpText('after', '\nExamples:\n  $ htvend doctor\n  $ htvend doctor --blobs-dir /var/cache/htvend/blobs\n  $ htvend doctor --platform linux/arm64,linux/amd64\n')
    .action((o: { blobsDir: string; platform?: string }) => {
      run.globals = { ...root.opts() };
      run.action = async () => {
        const { doctor, formatChecks } = await import('../commands/doctor.js');
        // `linux/arm64`, `linux/arm/v7` or a bare `arm64`: the architecture is what emulation needs.
        const arches = o.platform?.split(',').map((p) => p.trim()).filter(Boolean).map((p) => (p.includes('/') ? p.split('/')[1]! : p));
        const results = await doctor({ blobsDir: expandXdg(o.blobsDir, env), env, arches });
        writeStdout(formatChecks(results));
        const missing = results.filter((r) => r.status === 'missing');
        if (missing.length) {
          writeStderr(`htvend: error: doctor: missing: ${missing.map((r) => r.name).join(', ')} (build-img-with-proxy needs these)\nhtvend: hint: each MISSING line above says how to fix it\n`);
          return 1;
        }
        return 0;
      };
    });
  root.addCommand(c);
}
