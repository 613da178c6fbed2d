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
import { SESSION_SECRET_VAR, sessionOverrides } from '../proxy/attribution/env.js';
import { writeStdout } from '../util/stdio.js';

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
  /** `--client-header-timeout` in ms: clients must send their request headers within it (slow-loris). */
  clientHeaderTimeoutMs?: number | undefined;
  /**
   * build `--upstream-timeout` in ms: idle timeout of upstream connections and bodies, and the
   * time recordings still running when the child exits are given before they are dropped.
   */
  upstreamTimeoutMs?: number | undefined;
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
  /**
   * Called with the proxy's counters when the session fails after the proxy started
   * (`--github-output-path`); after a successful session the caller reports them with its own.
   */
  reportCounters?: ((counters: Record<string, number>) => Promise<void>) | undefined;
}

export interface SessionResult {
  /** The child's exit status (0 for a daemon stopped by a signal). */
  exitCode: number;
  counters: Record<string, number>;
  /** Offline: keys not in assets.json. */
  missing: string[];
  /** Offline: keys in assets.json whose blob is not in the store. */
  missingBlobs: string[];
  /** Keys whose replay was cut because the blob is corrupt. */
  corrupt: string[];
  /** The store's description, for the summary. */
  storeDescription: string;
  /** Store failures while recording (build): each names the store, URL and cause. */
  storeFailures: string[];
}

const SESSION_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** The errno name (EADDRINUSE, …) of `e` or of the first cause that has one. */
function errnoOf(e: unknown): string | undefined {
  for (let x = e, depth = 0; x && depth < 5; x = (x as { cause?: unknown }).cause, depth++) {
    const code = (x as NodeJS.ErrnoException).code;
    if (!(x instanceof HtvendError) && typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  }
  return undefined;
}

function listenError(e: unknown, addr: string, flag: string): HtvendError {
  const code = errnoOf(e);
  if (e instanceof HtvendError && code === undefined) return e;
  const why = code === 'EADDRINUSE' ? 'address already in use' : code === 'EADDRNOTAVAIL' ? 'address not available on this machine' : code === 'EACCES' ? 'permission denied' : describeError(e);
  const hint =
    code === 'EADDRINUSE'
      ? `another process is using ${addr}; pick another port, or ${flag} 127.0.0.1:0 for a free one`
      : code === 'EADDRNOTAVAIL'
        ? `use an address of this machine, e.g. ${flag} 127.0.0.1:0`
        : code === 'EACCES'
          ? `ports below 1024 need privileges; use a higher one, or ${flag} 127.0.0.1:0`
          : undefined;
  return new HtvendError('IO', `${flag} ${addr}: cannot listen (${why})`, { cause: e, ...(hint ? { hint } : {}) });
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
  // A signal while the child runs: the user wants out, so recordings still running when the
  // child has gone are dropped at once instead of being given the usual grace.
  let signalledWhileRunning = false;
  // Until the child (or daemon wait) takes over, a signal means "stop starting up"; a second
  // one means "stop now": a start-up step may be stuck where no AbortSignal reaches (a
  // blocking open() in libuv's thread pool, which also makes process.exit() wait), so remove
  // the private dir synchronously and die of the signal itself.
  const onSignal = (sig: NodeJS.Signals) => {
    if (childRunning) {
      signalledWhileRunning = true;
      return;
    }
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
    if (mode === 'build') upstream = await createUpstreamClient({ env: ctx.env, log, idleTimeoutMs: o.upstreamTimeoutMs, signal: ac.signal });
    try {
      proxy = await startProxy({
        mode,
        assets: ctx.assets,
        store: ctx.store,
        ca,
        upstream,
        listenAddr: o.listenAddr,
        tlsListenAddr: o.tlsListenAddr,
        headersTimeoutMs: o.clientHeaderTimeoutMs,
        exitGraceMs: o.upstreamTimeoutMs,
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
      mode,
    });
    // The builder's channel to per-step attribution (docs/build-cache.md); never logged.
    overrides.push(...sessionOverrides(proxy.session));
    for (const [k, v] of overrides) if (k !== SESSION_SECRET_VAR) log.debug(`export ${k}=${v}`);
    ac.signal.throwIfAborted();

    let exitCode: number;
    childRunning = true;
    if (o.daemon) {
      writeStdout(exportLines(overrides));
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
    await proxy.close(signalledWhileRunning ? { graceMs: 0 } : {});
    const closed = proxy;
    proxy = undefined;
    result = { exitCode, counters: closed.counters(), missing: closed.missing(), missingBlobs: closed.missingBlobs(), corrupt: closed.corrupt(), storeDescription: ctx.store.description, storeFailures: closed.storeFailures() };
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
    if (ctx.reportCounters && counters && !result) await ctx.reportCounters({ htvend_missing_asset_total: 0, ...counters });
  }
}

/**
 * Offline exit summary (SPEC §3): one warning line per URL that could not be served, told apart
 * by why (not recorded / blob missing from the store / blob corrupt), then the counts, each with
 * what to do about it.
 */
export function summarizeOffline(r: SessionResult, log: Logger): void {
  const n = (k: string) => r.counters[k] ?? 0;
  log.info(
    `offline: child exited ${r.exitCode}; ${n('htvend_replayed_total')} response(s) replayed, ${r.missing.length} URL(s) not in assets.json, ` +
      `${r.missingBlobs.length} with their blob missing, ${r.corrupt.length} with a corrupt blob`,
  );
  for (const url of r.missing) log.warn(`not in assets.json: ${url}`);
  if (r.missing.length) {
    log.warn(`${r.missing.length} requested URL(s) not in assets.json (htvend_missing_asset_total=${n('htvend_missing_asset_total')})`);
    log.hint('record them with `htvend build`');
  }
  for (const url of r.missingBlobs) log.warn(`blob missing from ${r.storeDescription}: ${url}`);
  if (r.missingBlobs.length) {
    log.warn(`${r.missingBlobs.length} URL(s) in assets.json whose blob is missing from ${r.storeDescription}`);
    log.hint('run `htvend verify --fetch` where the network is reachable, or point --blobs-dir at the store that has them');
  }
  for (const url of r.corrupt) log.warn(`corrupt blob in ${r.storeDescription}: ${url}`);
  if (r.corrupt.length) {
    log.warn(`${r.corrupt.length} URL(s) whose blob is corrupt in ${r.storeDescription}`);
    log.hint('run `htvend verify --fetch` to download them again');
  }
}

function splitHostPort(hp: string): [string, string] {
  const i = hp.lastIndexOf(':');
  return [hp.slice(0, i).replace(/^\[(.*)\]$/, '$1'), hp.slice(i + 1)];
}
