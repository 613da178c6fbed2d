/**
 * `htvend gc`: mark and sweep over a blob store shared by many lockfiles.
 *
 * Mark: every kept lockfile is read first (keep.ts); one missing or malformed stops gc before
 * anything is listed or deleted. Sweep: the store's blobs are streamed (ListableStore.list);
 * a blob no kept lockfile references and older than --min-age is deleted (in batches: S3
 * DeleteObjects of 1,000; otherwise a few deletes at a time). Young blobs stay: a build in
 * progress has not written its lockfile yet. The registry store then lists what remains in a
 * fresh artifact manifest (store/registry/listing.ts).
 */
import { HtvendError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { Digest } from '../util/digest.js';
import { mapPool } from '../util/pool.js';
import { canList, type BlobStore, type ListableStore, type ListedBlob } from '../store/store.js';
import { loadKept, type KeptSet } from './keep.js';
import { formatBytes } from './format.js';

export interface GcOptions {
  store: BlobStore;
  /** --keep arguments: files or globs. */
  keep: readonly string[];
  /** The kept set already loaded from `keep` (loadKept), if the caller has it. */
  kept?: KeptSet | undefined;
  minAgeMs: number;
  dryRun: boolean;
  log: Logger;
  /** One line per deleted blob (stdout). */
  write?: ((line: string) => void) | undefined;
  signal?: AbortSignal | undefined;
  /** The clock (tests). */
  now?: number | undefined;
}

export interface GcResult {
  lockfiles: number;
  /** Distinct blobs the kept lockfiles reference. */
  referenced: number;
  /** Blobs the store listed. */
  listed: number;
  kept: number;
  young: number;
  /** Deleted (or, with dryRun, would be). */
  deleted: number;
  bytesFreed: number;
  /** Referenced blobs the store does not have (the lockfile would not verify). */
  missing: number;
}

const BATCH = 1000;
const PARALLEL_DELETES = 8;

async function deleteBatch(store: ListableStore, batch: Digest[], signal: AbortSignal | undefined): Promise<void> {
  if (!batch.length) return;
  if (store.deleteMany) await store.deleteMany(batch, { signal });
  else await mapPool(batch, PARALLEL_DELETES, (d, _i, s) => store.delete(d, { signal: s }), { signal });
}

export async function gc(o: GcOptions): Promise<GcResult> {
  const { store, log } = o;
  const write = o.write ?? ((l: string) => void process.stdout.write(l + '\n'));
  if (!canList(store)) throw new HtvendError('USAGE', `${store.description} cannot list its blobs, so gc cannot run on it`);
  const kept = o.kept ?? (await loadKept(o.keep, { signal: o.signal }));
  log.info(`gc: ${kept.files.length} kept lockfile(s), ${kept.entries} entries, ${kept.digests.size} distinct blob(s) referenced`);
  const now = o.now ?? Date.now();
  const r: GcResult = { lockfiles: kept.files.length, referenced: kept.digests.size, listed: 0, kept: 0, young: 0, deleted: 0, bytesFreed: 0, missing: 0 };
  // Only the registry needs the survivors (to list them again); others keep no array.
  const remaining: ListedBlob[] | undefined = store.finishGc ? [] : undefined;
  const seen = new Set<string>();
  let batch: Digest[] = [];
  const verb = o.dryRun ? 'would delete' : 'deleted';
  // Referenced blobs stay whatever their size and age: the store need not look them up.
  const details = remaining ? undefined : (d: Digest) => !kept.digests.has(d);
  for await (const b of store.list({ signal: o.signal, details })) {
    r.listed++;
    if (kept.digests.has(b.digest)) {
      r.kept++;
      seen.add(b.digest);
      remaining?.push(b);
      continue;
    }
    if (o.minAgeMs > 0 && now - b.since < o.minAgeMs) {
      r.young++;
      remaining?.push(b);
      continue;
    }
    r.deleted++;
    r.bytesFreed += b.size;
    write(`${verb} sha256:${b.digest} ${b.size}`);
    if (o.dryRun) continue;
    batch.push(b.digest);
    if (batch.length >= BATCH) {
      await deleteBatch(store, batch, o.signal);
      batch = [];
    }
  }
  if (!o.dryRun) await deleteBatch(store, batch, o.signal);
  r.missing = r.referenced - seen.size;
  if (!o.dryRun && store.finishGc && remaining) {
    const done = await store.finishGc(remaining, { signal: o.signal });
    if (done) log.info(`gc: ${done}`);
  }
  log.info(
    `gc: ${r.listed} blob(s) in ${store.description}: ${r.kept} referenced, ${r.young} younger than --min-age, ${r.deleted} ${verb} (${formatBytes(r.bytesFreed)} ${o.dryRun ? 'would be ' : ''}freed)`,
  );
  if (r.missing) log.warn(`gc: ${r.missing} referenced blob(s) are not in the store (htvend verify --fetch can download them)`);
  return r;
}
