/**
 * `htvend sbom` and `htvend report` (SPEC §10, docs/supply-chain.md): argument parsing only.
 * htvend.ts hands in its shared flag helpers so these commands take the same -m and blob
 * store flags (the store is asked only for sizes assets.json does not record).
 */
import { Command, Option } from 'commander';
import type { Logger } from '../util/log.js';
import type { StoreConfig } from '../store/store.js';

type Opts = Record<string, unknown>;

export interface SupplyChainCli {
  env: NodeJS.ProcessEnv;
  /** Adds htvend's global, -m and blob store flags to a new command. */
  withManifestFlags: (c: Command) => Command;
  storeConfig: (o: Opts, env: NodeJS.ProcessEnv) => StoreConfig;
  /** Records what the command runs once parsing is done (htvend.ts's `run.action`). */
  setAction: (c: Command, o: Opts, action: (log: Logger) => Promise<number>) => void;
}

function repeatable(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

async function sizes(cli: SupplyChainCli, o: Opts, log: Logger) {
  const { storeSizes } = await import('../supply/inventory.js');
  const { openStore } = await import('../store/open.js');
  return storeSizes(() => openStore(cli.storeConfig(o, cli.env), { env: cli.env, log }));
}

/** Returns the new commands; htvend.ts adds them to the program. */
export function registerSupplyChain(cli: SupplyChainCli): Command[] {
  const sbomCmd = cli
    .withManifestFlags(new Command('sbom'))
    .description('[htvend-ts] Write an SBOM (CycloneDX 1.6 or SPDX 2.3 JSON) of the assets in the manifest file')
    .addOption(new Option('--format <format>', 'SBOM format').choices(['cyclonedx', 'spdx']).makeOptionMandatory())
    .option('-o, --output <file>', 'File to write (atomically); stdout if not given or -')
    .action((o: Opts, c: Command) => {
      cli.setAction(c, o, async (log) => {
        const { sbom } = await import('../commands/sbom.js');
        const s = await sizes(cli, o, log);
        try {
          await sbom({ manifestPath: o['manifest'] as string, format: o['format'] as 'cyclonedx' | 'spdx', output: o['output'] as string | undefined, sizeOf: s.sizeOf, env: cli.env });
        } finally {
          await s.close();
        }
        return 0;
      });
    });

  const reportCmd = cli
    .withManifestFlags(new Command('report'))
    .description('[htvend-ts] Write a self-contained HTML report of the assets in the manifest file')
    .requiredOption('-o, --output <file>', 'HTML file to write (atomically)')
    .option('--build-report <file>', "build-img-with-proxy's --report JSON: adds a section per Dockerfile step")
    .option('--offline-summary <file>', 'An offline run\'s summary: its saved stderr, its --github-output-path file, or {"missing": [...]} JSON (repeatable)', repeatable)
    .action((o: Opts, c: Command) => {
      cli.setAction(c, o, async (log) => {
        const { report } = await import('../commands/report.js');
        const s = await sizes(cli, o, log);
        try {
          await report({
            manifestPath: o['manifest'] as string,
            output: o['output'] as string,
            buildReport: o['buildReport'] as string | undefined,
            offlineSummaries: (o['offlineSummary'] as string[] | undefined) ?? [],
            sizeOf: s.sizeOf,
          });
        } finally {
          await s.close();
        }
        log.info(`report: wrote ${o['output'] as string}`);
        return 0;
      });
    });
  return [sbomCmd, reportCmd];
}
