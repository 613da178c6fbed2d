/**
 * The proxy + child session shared by `build` and `offline` (SPEC §3, §4): open the store,
 * make the CA, start the proxy, write the child's files into a private temp dir, run the
 * child (or a shell, or serve as a daemon), then close everything in reverse order, print
 * the offline summary and append the counters to `--github-output-path`.
 *
 * The upstream client is built from htvend's own environment snapshot, taken by the caller
 * before anything is changed for the child (SPEC §3 "Upstream connections").
 */
import { constants as osConstants } from 'node:os';
import { HtvendError, describeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { AssetLookup } from '../manifest/types.js';
import type { BlobStore } from '../store/store.js';
import type { ProxyOptions, RunningProxy } from '../proxy/types.js';
import { startProxy } from '../proxy/server.js';
import { createUpstreamClient, type UpstreamClient } from '../upstream/client.js';
import { loadOrCreateCa } from '../tls/ca.js';
import { childEnvOverrides, childEnvironment, exportLines, proxyUrl } from '../child/env.js';
import { makePrivateDir, writeChildFiles } from '../child/private-dir.js';
import { interactiveShell, runChild, untilSignalled, type Mode } from '../child/run.js';

/** Flags common to build and offline (the Go tool's ListenerOptions). */
export interface ListenerOptions {
  /** `-l/--listen-addr`, `host:port` (validated by the CLI), default `127.0.0.1:0`. */
  listenAddr: string;
  /** `--tls-listen-addr`: an extra listener where the proxy speaks TLS itself (optional). */
  tlsListenAddr?: string | undefined;
  tlsCertPem?: string | undefined;
  tlsKeyPem?: string | undefined;
  tlsGenerateIfMissing: boolean;
  /** `-d/--daemon`: print `export` lines, serve until SIGINT/SIGTERM. */
  daemon: boolean;
  /** `-t/--with-temp-dir` names. */
  withTempDir: string[];
  setEnvVarSslCertFile: string[];
  setEnvVarJksKeystore: string[];
  setEnvVarHttpProxy: string[];
  setEnvVarNoProxy: string[];
  /** Our addition: append proxy/truststore properties to JAVA_TOOL_OPTIONS (default true). */
  javaToolOptions: boolean;
  /** Our addition: point every other known CA variable at the PEM (default true). */
  extraCaVars: boolean;
  /** The child command; empty = interactive shell. */
  command: string[];
}

export interface SessionContext {
  mode: Mode;
  /** htvend's own environment, snapshotted at startup (never the child's). */
  env: Readonly<Record<string, string | undefined>>;
  log: Logger;
  assets: AssetLookup;
  store: BlobStore;
  /** Mode-specific proxy options (rules lists, force-refresh). */
  proxy: Pick<ProxyOptions, 'noCacheResponse' | 'dummyOkResponse' | 'cacheHeaders' | 'forceRefresh'>;
  signal?: AbortSignal | undefined;
  /** Called once at the end with the proxy's counters, also after most failures (`--github-output-path`). */
  reportCounters?: ((counters: Record<string, number>) => Promise<void>) | undefined;
}

export interface SessionResult {
  /** The child's exit status (0 for a daemon stopped by a signal). */
  exitCode: number;
  counters: Record<string, number>;
  missing: string[];
}

const SESSION_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function listenError(e: unknown, addr: string, flag: string): HtvendError {
  const code = (e as NodeJS.ErrnoException)?.code ?? (e as { cause?: NodeJS.ErrnoException })?.cause?.code;
  if (e instanceof HtvendError && code === undefined) return e;
  const why = code === 'EADDRINUSE' ? 'address already in use' : code === 'EADDRNOTAVAIL' ? 'address not available on this machine' : describeError(e);
  return new HtvendError('IO', `${flag} ${addr}: cannot listen (${why})`, {
    cause: e,
    hint: code === 'EADDRINUSE' ? `another process is using ${addr}; pick another port or use ${flag} 127.0.0.1:0` : undefined,
  });
}

/**
 * Runs one session. Resolves with the child's exit status; throws HtvendError for failures
 * of htvend itself (after cleaning up). SIGINT/SIGTERM before the child starts abort the
 * start-up; while it runs they are forwarded to it.
 */
export async function runSession(o: ListenerOptions, ctx: SessionContext): Promise<SessionResult> {
  const { log, mode } = ctx;
  if (o.daemon && o.command.length) {
    throw new HtvendError('USAGE', `--daemon runs no command, but one was given: ${o.command.join(' ')}`);
  }

  const dir = await makePrivateDir();
  const ac = new AbortController();
  const outer = ctx.signal;
  const onOuterAbort = () => ac.abort(outer?.reason);
  outer?.addEventListener('abort', onOuterAbort, { once: true });
  let childRunning = false;
  // Until the child (or daemon wait) takes over, a signal means "stop starting up"; a second
  // one means "stop now": a start-up step may be stuck where no AbortSignal reaches (a
  // blocking open() in libuv's thread pool, which also makes process.exit() wait), so remove
  // the private dir synchronously and die of the signal itself.
  const onSignal = (sig: NodeJS.Signals) => {
    if (childRunning) return;
    const status = 128 + (osConstants.signals[sig] ?? 2);
    if (ac.signal.aborted) {
      log.warn(`${sig} again: exiting now`);
      dir.removeSync();
      process.removeAllListeners(sig);
      process.kill(process.pid, sig);
      return;
    }
    ac.abort(new HtvendError('ABORTED', `interrupted by ${sig} while starting`, { exitCode: status }));
  };
  for (const s of SESSION_SIGNALS) process.on(s, onSignal);

  let upstream: UpstreamClient | undefined;
  let proxy: RunningProxy | undefined;
  let result: SessionResult | undefined;
  try {
    const ca = await loadOrCreateCa({
      certPemPath: o.tlsCertPem,
      keyPemPath: o.tlsKeyPem,
      generateIfMissing: o.tlsGenerateIfMissing,
      signal: ac.signal,
    });
    if (mode === 'build') upstream = await createUpstreamClient({ env: ctx.env, log, signal: ac.signal });
    try {
      proxy = await startProxy({
        mode,
        assets: ctx.assets,
        store: ctx.store,
        ca,
        upstream,
        listenAddr: o.listenAddr,
        tlsListenAddr: o.tlsListenAddr,
        ...ctx.proxy,
        log,
        signal: ac.signal,
      });
    } catch (e) {
      const failed = o.tlsListenAddr && describeError(e).includes('--tls-listen-addr') ? ['--tls-listen-addr', o.tlsListenAddr] : ['--listen-addr', o.listenAddr];
      throw listenError(e, failed[1]!, failed[0]!);
    }
    const [proxyHost, proxyPortText] = splitHostPort(proxy.hostPort);
    const childProxyHost = proxyHost === '0.0.0.0' || proxyHost === '::' ? '127.0.0.1' : proxyHost;

    const wantTruststore = o.setEnvVarJksKeystore.length > 0 || o.javaToolOptions;
    const files = await writeChildFiles(dir.path, {
      caPem: ca.certPem,
      truststore: wantTruststore,
      tempDirNames: o.withTempDir,
      toolConfigs: o.extraCaVars ? { parentEnv: ctx.env, proxyUrl: proxyUrl(childProxyHost, Number(proxyPortText)) } : undefined,
      signal: ac.signal,
    });
    const overrides = childEnvOverrides(ctx.env, {
      proxyHost: childProxyHost,
      proxyPort: Number(proxyPortText),
      caPemPath: files.caPemPath,
      truststorePath: files.truststorePath,
      toolConfigs: files.toolConfigs,
      httpProxyVars: o.setEnvVarHttpProxy,
      noProxyVars: o.setEnvVarNoProxy,
      certFileVars: o.setEnvVarSslCertFile,
      jksKeystoreVars: o.setEnvVarJksKeystore,
      tempDirs: files.tempDirs,
      extraCaVars: o.extraCaVars,
      javaToolOptions: o.javaToolOptions,
    });
    for (const [k, v] of overrides) log.debug(`export ${k}=${v}`);
    ac.signal.throwIfAborted();

    let exitCode: number;
    childRunning = true;
    if (o.daemon) {
      process.stdout.write(exportLines(overrides));
      log.info(`${mode} daemon serving on ${proxy.url}; stop with SIGINT/SIGTERM`);
      await untilSignalled(ac.signal);
      exitCode = 0;
    } else {
      let argv = o.command;
      let env = childEnvironment(ctx.env, overrides);
      if (!argv.length) {
        const sh = interactiveShell(ctx.env, mode);
        argv = sh.argv;
        env = { ...env, ...sh.env };
        log.info(`entering ${argv[0]} with the environment set to use the htvend ${mode} proxy; type exit or Ctrl-D to leave`);
      }
      exitCode = await runChild({ argv, env, log });
    }
    childRunning = false;
    await proxy.close();
    const closed = proxy;
    proxy = undefined;
    result = { exitCode, counters: closed.counters(), missing: closed.missing() };
    return result;
  } catch (e) {
    if (ac.signal.aborted && ac.signal.reason instanceof HtvendError) throw ac.signal.reason;
    throw e;
  } finally {
    for (const s of SESSION_SIGNALS) process.removeListener(s, onSignal);
    outer?.removeEventListener('abort', onOuterAbort);
    const counters = result?.counters ?? proxy?.counters();
    if (proxy) await proxy.close().catch((e) => log.warn(`closing the proxy: ${describeError(e)}`));
    await upstream?.close().catch((e) => log.debug(`closing the upstream client: ${describeError(e)}`));
    await dir.remove().catch((e) => log.warn(`removing ${dir.path}: ${describeError(e)}`));
    if (mode === 'offline' && result) summarizeOffline(result, log);
    if (ctx.reportCounters && counters) await ctx.reportCounters({ htvend_missing_asset_total: 0, ...counters });
  }
}

/** Offline exit summary (SPEC §3): every missing URL as a warning line, then the count. */
function summarizeOffline(r: SessionResult, log: Logger): void {
  log.info(`offline: ${r.counters['htvend_replayed_total'] ?? 0} response(s) replayed, ${r.missing.length} URL(s) missing`);
  if (!r.missing.length) return;
  for (const url of r.missing) log.warn(`missing asset: ${url}`);
  log.warn(`${r.missing.length} requested URL(s) not in assets.json (htvend_missing_asset_total=${r.counters['htvend_missing_asset_total'] ?? r.missing.length})`);
}

function splitHostPort(hp: string): [string, string] {
  const i = hp.lastIndexOf(':');
  return [hp.slice(0, i).replace(/^\[(.*)\]$/, '$1'), hp.slice(i + 1)];
}
