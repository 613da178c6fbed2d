/**
 * Adapters from the CLI's parsed flags to the verify/export library functions
 * (src/commands/verify.ts, export.ts), which print their own summaries. Loaded on demand by
 * the CLI so build/offline never load them.
 */
import type { Logger } from '../util/log.js';
import type { StoreConfig } from '../store/store.js';
import { openStore } from '../store/open.js';
import { verify } from '../commands/verify.js';
import { exportBlobs } from '../commands/export.js';

export interface VerifyCliOptions {
  manifest: string;
  store: StoreConfig;
  noCacheResponse: RegExp[];
  cacheHeader: string[];
  fetch: boolean;
  repair: boolean;
  jobs: number;
}

export interface ExportCliOptions {
  manifest: string;
  store: StoreConfig;
  dest: StoreConfig;
  jobs: number;
}

interface Ctx {
  env: Readonly<Record<string, string | undefined>>;
  log: Logger;
  signal?: AbortSignal | undefined;
}

/** `htvend verify [--fetch|--repair]`: exit 0 when every blob is present and correct. */
export async function verifyCommand(o: VerifyCliOptions, ctx: Ctx): Promise<number> {
  const store = await openStore(o.store, ctx);
  try {
    const r = await verify({
      manifestPath: o.manifest,
      store,
      fetch: o.fetch,
      repair: o.repair,
      env: ctx.env,
      cacheHeaders: o.cacheHeader,
      noCacheResponse: o.noCacheResponse,
      jobs: o.jobs,
      log: ctx.log,
      signal: ctx.signal,
    });
    return r.exitCode;
  } finally {
    await store.close?.();
  }
}

/** `htvend export --dest.…`: copy every blob the manifest references. */
export async function exportCommand(o: ExportCliOptions, ctx: Ctx): Promise<number> {
  const from = await openStore(o.store, ctx);
  try {
    const to = await openStore(o.dest, ctx, '--dest.');
    try {
      const r = await exportBlobs({ manifestPath: o.manifest, from, to, jobs: o.jobs, log: ctx.log, signal: ctx.signal });
      return r.exitCode;
    } finally {
      await to.close?.();
    }
  } finally {
    await from.close?.();
  }
}
