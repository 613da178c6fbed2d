/**
 * `htvend build` (SPEC §2, §5): record every asset the child fetches. The manifest is
 * opened writable (exclusive lock, incremental atomic saves); entries of the previous file
 * are reused when requested again unless `--force-refresh`; at the end the file holds
 * exactly what this run requested — unless the child failed, when previous entries are
 * kept too, so a broken build never shrinks a good lockfile.
 */
import { stat, rm } from 'node:fs/promises';
import type { Logger } from '../util/log.js';
import { HtvendError } from '../util/errors.js';
import type { StoreConfig } from '../store/store.js';
import { openStore } from '../store/open.js';
import { Manifest } from '../manifest/manifest.js';
import { runSession, type ListenerOptions, type SessionResult } from './listen.js';

export interface BuildOptions extends ListenerOptions {
  /** `-m/--manifest` */
  manifest: string;
  store: StoreConfig;
  /** `--no-cache-response` */
  noCacheResponse: RegExp[];
  /** `--cache-header` */
  cacheHeader: string[];
  forceRefresh: boolean;
  clean: boolean;
}

export interface CommandContext {
  /** htvend's own environment, snapshotted before the child's is made. */
  env: Readonly<Record<string, string | undefined>>;
  log: Logger;
  signal?: AbortSignal | undefined;
  reportCounters?: ((counters: Record<string, number>) => Promise<void>) | undefined;
}

/** Exit status of a build whose blob store failed (sysexits' EX_IOERR), whatever the child's. */
export const STORE_FAILURE_EXIT_CODE = 74;

function storeFailureError(failures: readonly string[], childExit: number): HtvendError {
  const more = failures.length > 1 ? ` (and ${failures.length - 1} more, see the log)` : '';
  return new HtvendError('STORE', `the blob store failed, assets.json lacks what could not be stored: ${failures[0]}${more}; the child exited with ${childExit}`, {
    exitCode: STORE_FAILURE_EXIT_CODE,
    hint: 'free space or fix the permissions of the blob store, then run the build again',
  });
}

/** Runs `htvend build`; resolves with the child's exit status and the proxy's counters. */
export async function build(o: BuildOptions, ctx: CommandContext): Promise<SessionResult> {
  const { log, env, signal } = ctx;
  const existed = await stat(o.manifest).then(
    () => true,
    () => false,
  );
  const manifest = await Manifest.open(o.manifest, { mode: 'build', forceRefresh: o.forceRefresh, clean: o.clean, log, signal });
  let result: SessionResult | undefined;
  try {
    const store = await openStore(o.store, { env, log, signal });
    try {
      result = await runSession(o, {
        mode: 'build',
        env,
        log,
        assets: manifest,
        store,
        proxy: { noCacheResponse: o.noCacheResponse, dummyOkResponse: [], cacheHeaders: o.cacheHeader, forceRefresh: o.forceRefresh },
        signal,
        reportCounters: ctx.reportCounters,
      });
    } finally {
      await store.close?.();
    }
  } finally {
    // prune only after a successful child: see the file comment. A store failure keeps the
    // previous entries too: the run did not record everything it requested.
    await manifest.close({ prune: result?.exitCode === 0 && result.storeFailures.length === 0 });
    // A run that failed before recording anything (bad flag value, port in use…) leaves no
    // trace: close() wrote an empty `{}` where there was no file, so take it away again.
    if (!result && !existed && manifest.requested().size === 0) await rm(o.manifest, { force: true });
  }
  log.info(`build: ${manifest.requested().size} asset(s) requested, written to ${o.manifest}`);
  if (result.storeFailures.length) throw storeFailureError(result.storeFailures, result.exitCode);
  return result;
}
