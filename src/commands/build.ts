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
import type { AssetEntry } from '../manifest/types.js';
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

/** What a build did to assets.json, for the end-of-run summary and `--github-output-path`. */
export interface BuildSummary {
  childExitCode: number;
  /** Entries in the file that was loaded (before `--clean`). */
  before: number;
  /** Entries in the file as written. */
  after: number;
  /** Requested by this run and new or changed (downloaded and stored). */
  recorded: number;
  /** Requested by this run and the same as in the loaded file. */
  reused: number;
  /** In the loaded file, not in the written one. */
  dropped: number;
  /** Entries of the loaded file kept although not requested (the child failed). */
  kept: number;
}

/** Pure: compares the loaded file, this run's requests and whether the file is pruned. */
export function summarizeBuild(
  loaded: ReadonlyMap<string, AssetEntry>,
  requested: ReadonlyMap<string, AssetEntry>,
  o: { childExitCode: number; clean: boolean },
): BuildSummary {
  const prune = o.childExitCode === 0;
  let reused = 0;
  for (const [k, e] of requested) if (loaded.get(k)?.Sha256 === e.Sha256) reused++;
  const keptKeys = prune || o.clean ? [] : [...loaded.keys()].filter((k) => !requested.has(k));
  const after = requested.size + keptKeys.length;
  let dropped = 0;
  for (const k of loaded.keys()) if (!requested.has(k) && (prune || o.clean)) dropped++;
  return { childExitCode: o.childExitCode, before: loaded.size, after, recorded: requested.size - reused, reused, dropped, kept: keptKeys.length };
}

/** The summary as counters (all of them, zeros included) for `--github-output-path`. */
export function buildCounters(s: BuildSummary): Record<string, number> {
  return {
    htvend_child_exit_code: s.childExitCode,
    htvend_assets_total: s.after,
    htvend_assets_recorded_total: s.recorded,
    htvend_assets_reused_total: s.reused,
    htvend_assets_dropped_total: s.dropped,
    htvend_assets_kept_total: s.kept,
  };
}

function logSummary(s: BuildSummary, path: string, log: Logger): void {
  const counts = `${s.recorded} recorded, ${s.reused} reused, ${s.dropped} dropped${s.kept ? `, ${s.kept} kept from the previous file` : ''}`;
  log.info(`build: child exited ${s.childExitCode}; ${path}: ${s.after} asset(s) (${counts})`);
  if (s.childExitCode !== 0 && s.kept) {
    log.warn(`the command failed: the ${s.kept} previous entr${s.kept === 1 ? 'y' : 'ies'} it did not request were kept in ${path}, so a broken build does not shrink it`);
  }
  if (s.before > 0 && s.after * 2 < s.before) {
    log.warn(`${path} shrank by more than half, from ${s.before} to ${s.after} asset(s): this run requested only ${s.after - s.kept} of them`);
    log.hint(`if the command did not run the whole build, restore ${path} (e.g. git checkout -- ${path}) and run it again`);
  }
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
  const summary = summarizeBuild(manifest.loaded, manifest.requested(), { childExitCode: result.exitCode, clean: o.clean });
  logSummary(summary, o.manifest, log);
  await ctx.reportCounters?.({ ...result.counters, ...buildCounters(summary) });
  if (result.storeFailures.length) throw storeFailureError(result.storeFailures, result.exitCode);
  return result;
}
