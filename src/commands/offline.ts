/**
 * `htvend offline` (SPEC §2, §3): serve only what assets.json lists; everything else is a
 * 404 and is listed in the exit summary. The manifest and the blob store are read-only.
 */
import type { StoreConfig } from '../store/store.js';
import { openStore } from '../store/open.js';
import { Manifest } from '../manifest/manifest.js';
import { runSession, type ListenerOptions, type SessionResult } from './listen.js';
import type { CommandContext } from './build.js';

export interface OfflineOptions extends ListenerOptions {
  /** `-m/--manifest` */
  manifest: string;
  store: StoreConfig;
  /** `--dummy-ok-response` */
  dummyOkResponse: RegExp[];
}

/** Runs `htvend offline`; resolves with the child's exit status, counters and missing URLs. */
export async function offline(o: OfflineOptions, ctx: CommandContext): Promise<SessionResult> {
  const { log, env, signal } = ctx;
  const manifest = await Manifest.open(o.manifest, { mode: 'offline', log, signal });
  try {
    const store = await openStore(o.store, { env, log, signal });
    try {
      const r = await runSession(o, {
        mode: 'offline',
        env,
        log,
        assets: manifest,
        store,
        proxy: { noCacheResponse: [], dummyOkResponse: o.dummyOkResponse, cacheHeaders: [], forceRefresh: false },
        signal,
        reportCounters: ctx.reportCounters,
      });
      await ctx.reportCounters?.({ ...r.counters, htvend_child_exit_code: r.exitCode });
      return r;
    } finally {
      await store.close?.();
    }
  } finally {
    await manifest.close();
  }
}
