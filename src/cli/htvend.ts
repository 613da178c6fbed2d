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
import { compileRegexes, expandXdg, listFlag, makeLogger, parseListenAddr, reportError, runIfEntryPoint, writeGithubOutput } from './common.js';

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
    .option('-v, --verbose', 'Set for verbose output. Equivalent to setting LOG_LEVEL=debug')
    .option('--github-output-path <file>', 'Append htvend_* counters as name=value lines to this file on exit (e.g. $GITHUB_OUTPUT).');
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
  };
}

export interface Run {
  /** Set by the action: what to do once parsing has finished. */
  action?: (log: Logger) => Promise<number>;
  globals: Opts;
  /** Whether a session already appended its counters to --github-output-path. */
  reported?: boolean;
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
    .configureOutput({ writeErr: (s) => process.stderr.write(s.startsWith('error:') ? `htvend: ${s}` : s) });

  const withGlobals = (c: Command, o: Opts) => {
    const g = { ...root.opts(), ...Object.fromEntries(Object.entries(o).filter(([k]) => ['chdir', 'verbose', 'githubOutputPath'].includes(k))) };
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
            cacheHeader: o['cacheHeader'] as string[],
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
      run.action = async (log) => verifyAction(o, env, log);
    });

  const exportCmd = addStoreFlags(addManifestFlags(addGlobals(new Command('export'))), 'dest')
    .description('Export referenced assets to another blob store')
    .option('--jobs <n>', '[htvend-ts] Blobs copied in parallel', '4')
    .action((o: Opts, c: Command) => {
      withGlobals(c, o);
      run.action = async (log) => exportAction(o, env, log);
    });

  const supplyCmds = registerSupplyChain({ env, withManifestFlags: (c) => addManifestFlags(addGlobals(c)), storeConfig, setAction: (c, o, a) => (withGlobals(c, o), (run.action = a)) });
  const add = (c: Command) => {
    c.exitOverride().configureOutput({ writeErr: (s) => process.stderr.write(s.startsWith('error:') ? `htvend ${c.name()}: ${s}` : s) });
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

async function verifyAction(o: Opts, env: NodeJS.ProcessEnv, log: Logger): Promise<number> {
  const { verifyCommand } = await import('./verify-export.js');
  return verifyCommand(
    {
      manifest: o['manifest'] as string,
      store: storeConfig(o, env),
      noCacheResponse: compileRegexes(o['cacheResponse'] as string[], '--no-cache-response'),
      cacheHeader: o['cacheHeader'] as string[],
      fetch: Boolean(o['fetch']) || Boolean(o['repair']),
      repair: Boolean(o['repair']),
      jobs: jobs(o),
    },
    { env, log },
  );
}

async function exportAction(o: Opts, env: NodeJS.ProcessEnv, log: Logger): Promise<number> {
  const { exportCommand } = await import('./verify-export.js');
  return exportCommand({ manifest: o['manifest'] as string, store: storeConfig(o, env), dest: storeConfig(o, env, 'dest'), jobs: jobs(o) }, { env, log });
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
        // commander already printed "error: unknown option '--x'" (or the help, for no command).
        return 2;
      }
      throw e;
    }
    if (!run.action) {
      prog.outputHelp({ error: true });
      throw new HtvendError('USAGE', 'please specify one command of: build, export, offline, report, sbom or verify');
    }
    log = makeLogger(Boolean(run.globals['verbose']), envSnapshot);
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
      code = reportError(e, log);
    }
    // Like the Go tool, every command that ran appends its counters on exit, also after most
    // failures; without a proxy session (verify, export, a failed start) that is the zero
    // missing-asset counter.
    const gh = run.globals['githubOutputPath'] as string | undefined;
    if (gh && !run.reported) await writeGithubOutput(gh, { htvend_missing_asset_total: 0 });
    return code;
  } catch (e) {
    return reportError(e, log);
  }
}

runIfEntryPoint(import.meta.url, 'htvend', main);
