/**
 * Adapters from the CLI's parsed flags to the verify/export library functions
 * (src/commands/verify.ts, export.ts), which print their own summaries. Loaded on demand by
 * the CLI so build/offline never load them.
 */
import { resolve } from 'node:path';
import type { Logger } from '../util/log.js';
import type { StoreConfig } from '../store/store.js';
import { openStore } from '../store/open.js';
import { verify } from '../commands/verify.js';
import { exportBlobs } from '../commands/export.js';
import { HtvendError } from '../util/errors.js';
import { writeStderr } from '../util/stdio.js';

/** What a command hands back to the CLI: its exit code and its `--github-output-path` counters. */
export interface CommandOutcome {
  exitCode: number;
  counters: Record<string, number>;
}

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
export async function verifyCommand(o: VerifyCliOptions, ctx: Ctx): Promise<CommandOutcome> {
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
    if (r.exitCode !== 0) {
      const kinds = new Set(r.problems.map((p) => p.kind));
      const hint =
        kinds.has('changed')
          ? 'upstream now serves different bytes: run `htvend verify --repair` to accept them, or rebuild with `htvend build`'
          : o.fetch
            ? 'the blobs could not be downloaded again: check the network and the URLs, or rebuild with `htvend build`'
            : 'run `htvend verify --fetch` to download missing or corrupt blobs again (`--repair` also accepts changed upstream content)';
      writeStderr(`htvend: hint: ${hint}\n`);
    }
    return {
      exitCode: r.exitCode,
      counters: {
        htvend_blobs_total: r.blobs,
        htvend_blobs_ok_total: r.ok,
        htvend_blobs_missing_total: r.missing,
        htvend_blobs_corrupt_total: r.corrupt,
        htvend_blobs_fetched_total: r.fetched,
        htvend_assets_repaired_total: r.repaired,
        htvend_problems_total: r.problems.length,
      },
    };
  } finally {
    await store.close?.();
  }
}

/** True when both configs name the same store (export would copy it onto itself). */
function sameStore(a: StoreConfig, b: StoreConfig): boolean {
  if (a.backend !== b.backend) return false;
  if (a.backend === 'filesystem') return resolve(a.dir ?? '') === resolve(b.dir ?? '');
  if (a.backend === 'registry') return a.registry === b.registry;
  return a.bucket === b.bucket && (a.prefix ?? '') === (b.prefix ?? '');
}

/** `htvend export --dest.…`: copy every blob the manifest references. */
export async function exportCommand(o: ExportCliOptions, ctx: Ctx): Promise<CommandOutcome> {
  if (sameStore(o.store, o.dest)) {
    const where = o.dest.backend === 'filesystem' ? resolve(o.dest.dir ?? '') : (o.dest.registry ?? `s3://${o.dest.bucket ?? ''}/${o.dest.prefix ?? ''}`);
    throw new HtvendError('USAGE', `export: the destination is the source store itself (${o.dest.backend} ${where})`, {
      hint: 'give the destination with --dest.blobs-dir DIR, or --dest.blobs-backend registry|s3 with --dest.blobs-registry / --dest.blobs-bucket',
    });
  }
  const from = await openStore(o.store, ctx);
  try {
    const to = await openStore(o.dest, ctx, '--dest.');
    try {
      const r = await exportBlobs({ manifestPath: o.manifest, from, to, jobs: o.jobs, log: ctx.log, signal: ctx.signal });
      return {
        exitCode: r.exitCode,
        counters: { htvend_blobs_total: r.blobs, htvend_blobs_copied_total: r.copied, htvend_blobs_skipped_total: r.skipped, htvend_problems_total: r.failures.length },
      };
    } finally {
      await to.close?.();
    }
  } finally {
    await from.close?.();
  }
}
