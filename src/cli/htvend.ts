#!/usr/bin/env node
/**
 * `htvend` command line (SPEC §2): argument parsing only, then the command functions in
 * src/commands/. Every flag of the Go tool keeps its name, short form and default; our
 * additions are marked in --help and in docs/htvend-cli.md.
 *
 * commander was chosen (over node:util parseArgs) for per-command --help, choices, and
 * pass-through of the child's own options after the first positional argument.
 */
import { Command, CommanderError, Option } from 'commander';
import { HtvendError, describeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { StoreConfig } from '../store/store.js';
import type { ListenerOptions } from '../commands/listen.js';
import { registerMirror } from './mirror.js';
import { registerDiff } from './diff.js';
import { registerGc } from './gc.js';
import { registerOutdated } from './outdated.js';
import { registerSupplyChain } from './supply-chain.js';
import { withVersion } from './version.js';
import { registerDoctor } from './doctor.js';
import { commanderOutput, compileRegexes, expandXdg, listFlag, makeLogger, parseHeaderNames, parseListenAddr, parseSeconds, reportError, runIfEntryPoint, writeGithubOutput } from './common.js';
import { writeStderr } from '../util/stdio.js';

/** Go defaults (flags_listener.go, command_build.go, command_offline.go). */
export const DEFAULTS = {
  manifest: './assets.json',
  blobsDir: '${XDG_DATA_HOME}/htvend/cache/blobs',
  listenAddr: '127.0.0.1:0',
  sslCertFileVars: ['SSL_CERT_FILE'],
  jksKeystoreVars: ['JKS_KEYSTORE_FILE'],
  httpProxyVars: ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy'],
  noProxyVars: ['NO_PROXY', 'no_proxy'],
  noCacheResponse: ['^http.*/v2/$', '/token\\?'],
  cacheHeader: ['Content-Length', 'Docker-Content-Digest', 'Content-Type', 'Content-Encoding', 'X-Checksum-Sha1'],
  dummyOkResponse: ['^http.*/v2/$'],
} as const;

export type Opts = Record<string, unknown>;

function listOption(flags: string, description: string, defaults: readonly string[]): Option {
  const l = listFlag(defaults);
  return new Option(flags, `${description} (repeatable; the first use replaces the default)`).argParser(l.parse).default(l.defaults, defaults.join(', '));
}

/** Global flags; also accepted after the command name, as go-flags does. */
export function addGlobals(c: Command): Command {
  return c
    .option('-C, --chdir <dir>', 'Directory to change to before running.', '.')
    .option('-v, --verbose', 'Set for verbose output. Equivalent to setting LOG_LEVEL=debug (wins over LOG_LEVEL)')
    .option('-q, --quiet', '[htvend-ts] Print errors only: no summary, warnings or progress bars. Equivalent to LOG_LEVEL=error')
    .option('--github-output-path <file>', 'Append every htvend_* counter as name=value lines to this file on exit (e.g. $GITHUB_OUTPUT); a relative path is relative to -C');
}

export function addStoreFlags(c: Command, prefix = ''): Command {
  const p = prefix ? `${prefix}.` : '';
  return c
    .addOption(new Option(`--${p}blobs-backend <type>`, 'Type of blob store').choices(['filesystem', 'registry', 's3']).default('filesystem'))
    .option(`--${p}blobs-dir <dir>`, 'Common directory to store downloaded blobs in', DEFAULTS.blobsDir)
    .option(`--${p}blobs-registry <url>`, 'URL for registry to store / fetch blobs from (https://host/v2/<repo>/)')
    .option(`--${p}blobs-bucket <bucket>`, 'S3 bucket to use for blobs')
    .option(`--${p}blobs-prefix <prefix>`, 'Prefix to prepend keys before uploading to S3 bucket');
}

export function addManifestFlags(c: Command): Command {
  return addStoreFlags(c).option('-m, --manifest <file>', 'File to put manifest data in', DEFAULTS.manifest);
}

function addListenerFlags(c: Command): Command {
  return c
    .option('-l, --listen-addr <addr>', 'Listen address for proxy server (:0) will allocate a dynamic open port', DEFAULTS.listenAddr)
    .option('--tls-listen-addr <addr>', 'Listen address for an extra TLS (HTTPS-proxy) listener; none unless given')
    .option('-d, --daemon', 'Run as a daemon until terminated (prints export lines)')
    .option('--tls-cert-pem <file>', 'If set use this as the TLS cert. Must be a CA pem')
    .option('--tls-key-pem <file>', 'If set use this as the TLS key. Must match the cert')
    .option('--tls-generate-if-missing', 'If set, generate and save if files missing')
    .addOption(listOption('-t, --with-temp-dir <name>', 'Temporary directory to create for the sub-process; env var NAME points at it', []))
    .addOption(listOption('--set-env-var-ssl-cert-file <name>', 'Environment variable set to the CA certificate PEM file', DEFAULTS.sslCertFileVars))
    .addOption(listOption('--set-env-var-jks-keystore <name>', 'Environment variable set to the passwordless PKCS#12 truststore', DEFAULTS.jksKeystoreVars))
    .addOption(listOption('--set-env-var-http-proxy <name>', 'Environment variable set to the proxy URL', DEFAULTS.httpProxyVars))
    .addOption(listOption('--set-env-var-no-proxy <name>', 'Environment variable set blank', DEFAULTS.noProxyVars))
    .option('--no-java-tool-options', '[htvend-ts] Do not append proxy and truststore properties to JAVA_TOOL_OPTIONS')
    .option('--no-extra-ca-vars', '[htvend-ts] Only set the --set-env-var-ssl-cert-file variables, not the other known CA variables')
    .option('--client-header-timeout <seconds>', '[htvend-ts] Clients must send their request headers within this time (slow-loris guard)', '30')
    .argument('[command...]', 'Sub-process to run (after --). If not specified an interactive shell is opened');
}

export function storeConfig(o: Opts, env: NodeJS.ProcessEnv, prefix = ''): StoreConfig {
  const k = (n: string) => o[prefix ? `${prefix}.${n}` : n] as string | undefined;
  const backend = k('blobsBackend') as StoreConfig['backend'];
  const need = (n: string, flag: string) => {
    if (!k(n)) throw new HtvendError('USAGE', `--${prefix ? `${prefix}.` : ''}blobs-backend ${backend} needs --${prefix ? `${prefix}.` : ''}${flag}`);
  };
  if (backend === 'registry') need('blobsRegistry', 'blobs-registry');
  if (backend === 's3') need('blobsBucket', 'blobs-bucket');
  return { backend, dir: expandXdg(k('blobsDir') ?? DEFAULTS.blobsDir, env), registry: k('blobsRegistry'), bucket: k('blobsBucket'), prefix: k('blobsPrefix') };
}

function listenerOptions(o: Opts, command: string[]): ListenerOptions {
  const addr = (s: string, flag: string) => {
    const a = parseListenAddr(s, flag);
    return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
  };
  if (o['daemon'] && command.length) throw new HtvendError('USAGE', `-d/--daemon runs no command, but one was given: ${command.join(' ')}`);
  if (o['tlsGenerateIfMissing'] && !o['tlsCertPem']) {
    throw new HtvendError('USAGE', '--tls-generate-if-missing needs --tls-cert-pem (and --tls-key-pem): there is nowhere to save the CA', {
      hint: 'e.g. --tls-cert-pem ca.pem --tls-key-pem ca.key --tls-generate-if-missing',
    });
  }
  if (Boolean(o['tlsCertPem']) !== Boolean(o['tlsKeyPem']) && o['tlsGenerateIfMissing']) {
    throw new HtvendError('USAGE', '--tls-generate-if-missing needs both --tls-cert-pem and --tls-key-pem');
  }
  return {
    listenAddr: addr(o['listenAddr'] as string, '--listen-addr'),
    tlsListenAddr: o['tlsListenAddr'] ? addr(o['tlsListenAddr'] as string, '--tls-listen-addr') : undefined,
    tlsCertPem: o['tlsCertPem'] as string | undefined,
    tlsKeyPem: o['tlsKeyPem'] as string | undefined,
    tlsGenerateIfMissing: Boolean(o['tlsGenerateIfMissing']),
    daemon: Boolean(o['daemon']),
    withTempDir: o['withTempDir'] as string[],
    setEnvVarSslCertFile: o['setEnvVarSslCertFile'] as string[],
    setEnvVarJksKeystore: o['setEnvVarJksKeystore'] as string[],
    setEnvVarHttpProxy: o['setEnvVarHttpProxy'] as string[],
    setEnvVarNoProxy: o['setEnvVarNoProxy'] as string[],
    javaToolOptions: o['javaToolOptions'] !== false,
    extraCaVars: o['extraCaVars'] !== false,
    command,
    clientHeaderTimeoutMs: parseSeconds(o['clientHeaderTimeout'] as string, '--client-header-timeout'),
    ...(o['upstreamTimeout'] !== undefined ? { upstreamTimeoutMs: parseSeconds(o['upstreamTimeout'] as string, '--upstream-timeout') } : {}),
  };
}

export interface Run {
  /** Set by the action: what to do once parsing has finished. */
  action?: (log: Logger) => Promise<number>;
  globals: Opts;
  /** Whether a session already appended its counters to --github-output-path. */
  reported?: boolean;
  /** The command being run (for "run 'htvend build --help'" hints). */
  command?: string;
}

/**
 * What a subcommand registered from its own file (src/cli/<name>.ts, `registerX(kit)`) needs:
 * `add` attaches it to the program, `withGlobals` records the global flags given after the
 * command name, `counters` is the `--github-output-path` reporter.
 */
export interface CommandKit {
  env: NodeJS.ProcessEnv;
  run: Run;
  add(c: Command): void;
  withGlobals(c: Command, o: Opts): void;
  counters(): ((c: Record<string, number>) => Promise<void>) | undefined;
}

/** Builds the commander program; actions only record what to run (see `main`). */
export function program(env: NodeJS.ProcessEnv, run: Run): Command {
  const root = withVersion(addGlobals(new Command('htvend')))
    .description('Capture every HTTP(S) asset a build fetches into assets.json, and replay it offline.')
    .enablePositionalOptions()
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput(commanderOutput('htvend', 'htvend'))
    .addHelpText('after', examples(['htvend build -- npm ci', 'htvend offline -- npm ci', 'htvend verify --fetch'], 'Run `htvend COMMAND --help` for the flags of each command; docs/htvend-cli.md has the details.'));

  const withGlobals = (c: Command, o: Opts) => {
    const g = { ...root.opts(), ...Object.fromEntries(Object.entries(o).filter(([k]) => ['chdir', 'verbose', 'quiet', 'githubOutputPath'].includes(k))) };
    run.command = c.name();
    // A subcommand's -C default '.' must not hide a `-C dir` given before the command.
    if (c.getOptionValueSource('chdir') === 'default') g['chdir'] = root.opts()['chdir'];
    run.globals = g;
  };
  const counters = () =>
    run.globals['githubOutputPath']
      ? (c: Record<string, number>) => {
          run.reported = true;
          return writeGithubOutput(run.globals['githubOutputPath'] as string, c);
        }
      : undefined;

  const buildCmd = addListenerFlags(addManifestFlags(addGlobals(new Command('build'))))
    .description('Run command to create/update the manifest file')
    .addOption(listOption('--no-cache-response <regex>', 'Regex of URLs to never store in cache. Useful for token endpoints', DEFAULTS.noCacheResponse))
    .addOption(listOption('--cache-header <name>', 'Header for which we will cache the first value', DEFAULTS.cacheHeader))
    .option('--force-refresh', 'If set, always fetch from upstream')
    .option('--clean', 'If set, reset local blob list to empty before running')
    .option('--upstream-timeout <seconds>', '[htvend-ts] Idle timeout of upstream connections and bodies; also how long recordings still running when the child exits may take', '60')
    .passThroughOptions()
    .action((command: string[], o: Opts, c: Command) => {
      withGlobals(c, o);
      run.action = async (log) => {
        // Loaded on demand: --help and usage errors stay fast and independent of the proxy.
        const { build } = await import('../commands/build.js');
        const r = await build(
          {
            ...listenerOptions(o, command),
            manifest: o['manifest'] as string,
            store: storeConfig(o, env),
            // `--no-cache-response` is a negatable-looking name: commander stores it as `cacheResponse`.
            noCacheResponse: compileRegexes(o['cacheResponse'] as string[], '--no-cache-response'),
            cacheHeader: parseHeaderNames(o['cacheHeader'] as string[], '--cache-header'),
            forceRefresh: Boolean(o['forceRefresh']),
            clean: Boolean(o['clean']),
          },
          { env, log, reportCounters: counters() },
        );
        return r.exitCode;
      };
    });

  const offlineCmd = addListenerFlags(addManifestFlags(addGlobals(new Command('offline'))))
    .description("Serve assets to command, don't allow other outbound requests")
    .addOption(listOption('--dummy-ok-response <regex>', 'Regex of URLs that we return a dummy 200 OK reply to. Useful for some Docker clients', DEFAULTS.dummyOkResponse))
    .passThroughOptions()
    .action((command: string[], o: Opts, c: Command) => {
      withGlobals(c, o);
      run.action = async (log) => {
        const { offline } = await import('../commands/offline.js');
        const r = await offline(
          {
            ...listenerOptions(o, command),
            manifest: o['manifest'] as string,
            store: storeConfig(o, env),
            dummyOkResponse: compileRegexes(o['dummyOkResponse'] as string[], '--dummy-ok-response'),
          },
          { env, log, reportCounters: counters() },
        );
        return r.exitCode;
      };
    });

  const verifyCmd = addManifestFlags(addGlobals(new Command('verify')))
    .description('Verify and fetch any missing assets in the manifest file')
    .addOption(listOption('--no-cache-response <regex>', 'Regex of URLs to never store in cache. Useful for token endpoints', DEFAULTS.noCacheResponse))
    .addOption(listOption('--cache-header <name>', 'Header for which we will cache the first value', DEFAULTS.cacheHeader))
    .option('--fetch', 'If set, fetch missing assets')
    .option('--repair', 'If set, replace any missing assets with new versions currently found (implies fetch)')
    .option('--jobs <n>', '[htvend-ts] Blobs checked in parallel', '4')
    .action((o: Opts, c: Command) => {
      withGlobals(c, o);
      run.action = async (log) => verifyAction(o, env, log, counters());
    });

  const exportCmd = addStoreFlags(addManifestFlags(addGlobals(new Command('export'))), 'dest')
    .description('Export referenced assets to another blob store')
    .option('--jobs <n>', '[htvend-ts] Blobs copied in parallel', '4')
    .action((o: Opts, c: Command) => {
      withGlobals(c, o);
      // Without any --dest.* the destination would be the default store, i.e. the source.
      const given = c.options.some((opt) => opt.long?.startsWith('--dest.') && c.getOptionValueSource(opt.attributeName()) === 'cli');
      if (!given) {
        throw new HtvendError('USAGE', 'export needs a destination: no --dest.* flag given', {
          hint: 'e.g. htvend export --dest.blobs-dir DIR; run `htvend export --help` for the registry and s3 destinations',
        });
      }
      run.action = async (log) => exportAction(o, env, log, counters());
    });

  buildCmd.addHelpText(
    'after',
    examples([
      'htvend build -- curl -fsSLo x.tgz https://registry.npmjs.org/is-number/-/is-number-7.0.0.tgz',
      'htvend build -m assets.json --blobs-dir ./blobs -- npm ci',
      'htvend build -- build-img-with-proxy -t oci-archive:img.tar .',
    ]),
  );
  offlineCmd.addHelpText(
    'after',
    examples([
      "unshare -n sh -c 'ip link set lo up && htvend offline -- npm ci'",
      'htvend offline --github-output-path "$GITHUB_OUTPUT" -- make',
      'htvend offline -d -l 127.0.0.1:3128 > proxy.env   # serves until SIGTERM; `. ./proxy.env` in another shell',
    ]),
  );
  verifyCmd.addHelpText('after', examples(['htvend verify', 'htvend verify --fetch', 'htvend verify --repair -m assets.json']));
  exportCmd.addHelpText(
    'after',
    examples([
      'htvend export --dest.blobs-dir /mnt/usb/blobs',
      'htvend export --dest.blobs-backend registry --dest.blobs-registry https://registry.example/v2/team/blobs/',
      'htvend export --dest.blobs-backend s3 --dest.blobs-bucket my-bucket --dest.blobs-prefix htvend/',
    ]),
  );
  const supplyCmds = registerSupplyChain({ env, withManifestFlags: (c) => addManifestFlags(addGlobals(c)), storeConfig, setAction: (c, o, a) => (withGlobals(c, o), (run.action = a)) });
  const add = (c: Command) => {
    c.exitOverride().configureOutput(commanderOutput('htvend', `htvend ${c.name()}`));
    root.addCommand(c);
  };
  for (const c of [buildCmd, offlineCmd, verifyCmd, exportCmd, ...supplyCmds]) add(c);
  const kit: CommandKit = { env, run, add, withGlobals, counters };
  registerMirror(kit);
  registerDiff(kit);
  registerGc(kit);
  registerOutdated(kit);
  registerDoctor(root, env, run);
  return root;
}

function jobs(o: Opts): number {
  const n = Number(o['jobs']);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new HtvendError('USAGE', `--jobs ${JSON.stringify(o['jobs'])}: want an integer from 1 to 256`);
  return n;
}

async function verifyAction(o: Opts, env: NodeJS.ProcessEnv, log: Logger, report: Reporter): Promise<number> {
  const { verifyCommand } = await import('./verify-export.js');
  const r = await verifyCommand(
    {
      manifest: o['manifest'] as string,
      store: storeConfig(o, env),
      noCacheResponse: compileRegexes(o['cacheResponse'] as string[], '--no-cache-response'),
      cacheHeader: parseHeaderNames(o['cacheHeader'] as string[], '--cache-header'),
      fetch: Boolean(o['fetch']) || Boolean(o['repair']),
      repair: Boolean(o['repair']),
      jobs: jobs(o),
    },
    { env, log },
  );
  await report?.(r.counters);
  return r.exitCode;
}

async function exportAction(o: Opts, env: NodeJS.ProcessEnv, log: Logger, report: Reporter): Promise<number> {
  const { exportCommand } = await import('./verify-export.js');
  const r = await exportCommand({ manifest: o['manifest'] as string, store: storeConfig(o, env), dest: storeConfig(o, env, 'dest'), jobs: jobs(o) }, { env, log });
  await report?.(r.counters);
  return r.exitCode;
}

type Reporter = ((c: Record<string, number>) => Promise<void>) | undefined;

/** The "Examples:" block that ends a command's --help. */
function examples(lines: string[], footer?: string): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n${footer ? `\n${footer}\n` : ''}`;
}

/**
 * Parses `argv` (without node and script), runs the command, returns the exit code. Usage
 * errors exit 2, `--help` exits 0, failures print message + hint and exit with the error's
 * code; a child's exit status is passed through.
 */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // Snapshot htvend's own environment before anything could change it (SPEC §3).
  const envSnapshot: NodeJS.ProcessEnv = { ...env };
  const run: Run = { globals: {} };
  let log: Logger | undefined;
  try {
    const prog = program(envSnapshot, run);
    try {
      await prog.parseAsync(argv, { from: 'user' });
    } catch (e) {
      if (e instanceof CommanderError) {
        if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0) return 0;
        // commander already printed "htvend: error: unknown option '--x'" and the hint (commanderOutput).
        return 2;
      }
      throw e;
    }
    if (!run.action) {
      prog.outputHelp({ error: true });
      throw new HtvendError('USAGE', 'please specify one command of: build, diff, doctor, export, gc, mirror, offline, outdated, report, sbom or verify', { hint: "run 'htvend --help' for usage and examples" });
    }
    log = makeLogger(Boolean(run.globals['verbose']), envSnapshot, 'htvend', Boolean(run.globals['quiet']));
    const dir = run.globals['chdir'] as string | undefined;
    if (dir && dir !== '.') {
      try {
        process.chdir(dir);
      } catch (e) {
        throw new HtvendError('USAGE', `-C/--chdir ${dir}: ${describeError(e)}`);
      }
    }
    let code: number;
    try {
      code = await run.action(log);
    } catch (e) {
      code = reportError(e, log, writeStderr, { helpCommand: helpCommand(run) });
    }
    // Like the Go tool, every command that ran appends its counters on exit, also after most
    // failures; without a proxy session (verify, export, a failed start) that is the zero
    // missing-asset counter.
    const gh = run.globals['githubOutputPath'] as string | undefined;
    if (gh && !run.reported) await writeGithubOutput(gh, { htvend_missing_asset_total: 0 });
    return code;
  } catch (e) {
    return reportError(e, log, writeStderr, { helpCommand: helpCommand(run) });
  }
}

function helpCommand(run: Run): string {
  return run.command ? `htvend ${run.command}` : 'htvend';
}

runIfEntryPoint(import.meta.url, 'htvend', main);
