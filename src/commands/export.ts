/**
 * `htvend export --dest.blobs-…` (SPEC §2, §6): copy every blob assets.json names from one
 * store to another, streaming, with bounded parallelism.
 *
 * Re-runnable: blobs the destination already has are skipped (one `stat`), and a blob is only
 * visible in the destination once its upload committed with the expected digest, so an
 * interrupted export leaves nothing half-copied. Transient failures (network, 5xx from a
 * remote store) are retried with exponential backoff; a blob missing from the source or with
 * the wrong bytes is reported, not retried.
 */
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { canFinalizeExport, type BlobStore } from '../store/store.js';
import { Manifest } from '../manifest/manifest.js';
import type { Digest } from '../util/digest.js';
import { describeError, isAbortError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { redactUrl } from '../util/redact.js';
import { mapPool, withRetry, type RetryOptions } from '../util/pool.js';
import { createProgress, type Progress } from '../util/progress.js';

// The optional destination ability (ExportFinalizingStore) lives with the store contract.
export { canFinalizeExport, type ExportFinalizingStore } from '../store/store.js';

export interface ExportOptions {
  /** `-m/--manifest`: which blobs to copy. */
  manifestPath: string;
  /** The `--blobs-*` store. */
  from: BlobStore;
  /** The `--dest.blobs-*` store. */
  to: BlobStore;
  /** Blobs copied in parallel (default 4). */
  jobs?: number | undefined;
  log?: Logger | undefined;
  signal?: AbortSignal | undefined;
  /** Progress bar on stderr: default only when stderr is a terminal. */
  progress?: boolean | undefined;
  /** Retry policy per blob (tests shorten the delays). */
  retry?: Omit<RetryOptions, 'signal'> | undefined;
}

export interface ExportFailure {
  digest: Digest;
  /** assets.json keys using the blob. */
  urls: string[];
  message: string;
}

export interface ExportResult {
  blobs: number;
  copied: number;
  /** Already in the destination. */
  skipped: number;
  bytes: number;
  failures: ExportFailure[];
  /** Whether the destination's finalizeExport ran (only when every blob is in place). */
  finalized: boolean;
  /** 0 when nothing failed, else 1. */
  exitCode: number;
}

/** Copies one blob unless the destination has it; resolves with its size and whether it was copied. */
async function copyBlob(d: Digest, o: ExportOptions, bar: Progress, signal: AbortSignal): Promise<{ copied: boolean; size: number }> {
  const there = await o.to.stat(d, { signal });
  if (there) return { copied: false, size: there.size };
  const size = (await o.from.stat(d, { signal }))?.size;
  const src = await o.from.get(d, { signal });
  // `src` is verified against `d` as it streams: the destination need not hash it again.
  const w = await o.to.put({ expected: d, size, signal, verifiedSource: true });
  let n = 0;
  const count = new Transform({
    transform(chunk: Buffer, _e, cb) {
      n += chunk.length;
      bar.addBytes(chunk.length);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(src, count, w.stream, { signal });
  } catch (e) {
    src.destroy();
    await w.abort(e);
    throw e;
  }
  await w.commit();
  return { copied: true, size: n };
}

/** Copies every blob of the manifest from `o.from` to `o.to`. */
export async function exportBlobs(o: ExportOptions): Promise<ExportResult> {
  const log = o.log ?? silentLogger;
  const manifest = await Manifest.open(o.manifestPath, { mode: 'read', log, signal: o.signal });
  const urlsByDigest = new Map<Digest, string[]>();
  for (const [url, e] of manifest.entries()) {
    const list = urlsByDigest.get(e.Sha256);
    if (list) list.push(url);
    else urlsByDigest.set(e.Sha256, [url]);
  }
  await manifest.close();
  const digests = [...urlsByDigest.keys()];
  const result: ExportResult = { blobs: digests.length, copied: 0, skipped: 0, bytes: 0, failures: [], finalized: false, exitCode: 0 };
  log.info(`export: ${digests.length} blob(s) from ${o.from.description} to ${o.to.description}`);

  const sizes = new Map<Digest, number>();
  const bar = createProgress({ label: 'export', total: digests.length, enabled: o.progress, level: log.level });
  try {
    await mapPool(
      digests,
      o.jobs ?? 4,
      async (d, _i, signal) => {
        try {
          const { copied, size } = await withRetry(() => copyBlob(d, o, bar, signal), {
            ...o.retry,
            signal,
            onRetry: (e, attempt, ms) => log.warn(`export of blob ${d}: ${describeError(e)}; retry ${attempt} in ${ms} ms`),
          });
          sizes.set(d, size);
          if (copied) {
            result.copied++;
            result.bytes += size;
          } else {
            result.skipped++;
          }
          log.debug(`export: ${d} ${copied ? `copied (${size} bytes)` : 'already present'}`);
        } catch (e) {
          if (isAbortError(e)) throw e;
          result.failures.push({ digest: d, urls: urlsByDigest.get(d)!, message: describeError(e) });
        } finally {
          bar.itemDone();
        }
      },
      { signal: o.signal },
    );
  } finally {
    bar.stop();
  }

  if (result.failures.length === 0 && canFinalizeExport(o.to)) {
    const what = await o.to.finalizeExport(
      digests.map((digest) => ({ digest, size: sizes.get(digest) })),
      { log, signal: o.signal },
    );
    result.finalized = true;
    if (what) log.debug(`export: finalized ${what}`);
  }
  result.exitCode = result.failures.length > 0 ? 1 : 0;
  for (const line of exportSummary(result)) (result.exitCode ? log.error : log.info)(line);
  return result;
}

/** One line per failed blob (with the URLs that use it), then the counts. */
export function exportSummary(r: ExportResult): string[] {
  const lines: string[] = [];
  for (const f of r.failures) {
    lines.push(`failed: blob ${f.digest}: ${f.message}`);
    for (const u of f.urls) lines.push(`  used by ${redactUrl(u)}`);
  }
  lines.push(`export: ${r.blobs} blob(s), ${r.copied} copied, ${r.skipped} already present` + (r.failures.length ? `, ${r.failures.length} failed` : ''));
  return lines;
}
