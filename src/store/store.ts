/**
 * The blob store contract (SPEC §6). Types only: backends live beside this file
 * (`dir/`, `registry/`, `s3/`) and are each checked against `BlobStore` with `satisfies`
 * or `implements`. One conformance suite (test/store/conformance.ts) runs against all of them.
 *
 * Blobs are addressed by the sha256 of their bytes. Nothing here ever holds a whole blob in
 * memory: reads and writes are streams.
 */
import type { Readable, Writable } from 'node:stream';
import type { Digest } from '../util/digest.js';

export interface IoOptions {
  signal?: AbortSignal | undefined;
}

export interface PutOptions extends IoOptions {
  /** If known, the digest the bytes must have; `commit()` fails (and nothing is kept) otherwise. */
  expected?: Digest | undefined;
  /** If known, the exact size; lets backends pick monolithic vs chunked/multipart uploads. */
  size?: number | undefined;
  /**
   * The bytes are piped from `get(expected)` of a BlobStore, whose stream fails before its last
   * chunk unless they hash to `expected` (an interrupted copy is aborted, never committed), so
   * the writer does not hash them again (`export`). Ignored without `expected`.
   */
  verifiedSource?: boolean | undefined;
}

/**
 * An in-progress upload. Write the bytes to `stream` (pipe or pipeline into it), then call
 * `commit()` once the stream has been ended. Until `commit()` resolves nothing is visible
 * under the digest; `abort()` discards everything written (idempotent, never throws).
 */
export interface BlobWriter {
  readonly stream: Writable;
  /**
   * True when the stream holds no reference to a chunk once that chunk's write callback has
   * run (it copied or wrote it by then), so the caller may refill the buffer. Backends that keep
   * chunks longer (S3 part buffers, the registry's upload pieces, memory) leave it unset; the
   * recorder then gives them fresh buffers.
   */
  readonly releasesChunks?: boolean;
  /** Waits for the written bytes to be durable, makes the blob visible, returns its digest. */
  commit(): Promise<Digest>;
  abort(reason?: unknown): Promise<void>;
}

export interface BlobStat {
  size: number;
}

export interface BlobStore {
  /** Human-readable, credential-free name used in messages, e.g. `filesystem store /x/blobs`. */
  readonly description: string;
  /** Size of a stored blob, or `undefined` if the store does not have it. */
  stat(digest: Digest, opts?: IoOptions): Promise<BlobStat | undefined>;
  /**
   * A read stream of the blob that is verified as it is read: on a digest mismatch the stream
   * errors (DIGEST_MISMATCH) before emitting its last chunk. Throws NOT_FOUND if absent.
   */
  get(digest: Digest, opts?: IoOptions): Promise<Readable>;
  /** Starts an upload. Concurrent puts of the same bytes are safe and idempotent. */
  put(opts?: PutOptions): Promise<BlobWriter>;
  /** Releases connections / handles. */
  close?(): Promise<void>;
}

/**
 * Optional ability: read a byte range `[start, end]` (inclusive) without verification.
 * Used for HTTP Range replay where hashing the slice is impossible; callers that need
 * integrity read the whole blob with `get()`.
 */
export interface RangeReadableStore extends BlobStore {
  getRange(digest: Digest, start: number, end: number, opts?: IoOptions): Promise<Readable>;
}

export function canReadRange(s: BlobStore): s is RangeReadableStore {
  return typeof (s as Partial<RangeReadableStore>).getRange === 'function';
}

/** Optional ability: remove a blob (used by `verify --repair` to drop a corrupt copy). */
export interface DeletableStore extends BlobStore {
  delete(digest: Digest, opts?: IoOptions): Promise<void>;
}

export function canDelete(s: BlobStore): s is DeletableStore {
  return typeof (s as Partial<DeletableStore>).delete === 'function';
}

/** How a store is chosen on the command line (SPEC §2 flags), backend-agnostic. */
export interface StoreConfig {
  backend: 'filesystem' | 'registry' | 's3';
  /** filesystem: directory of `<sha256 hex>` files. */
  dir?: string | undefined;
  /** registry: `https://host/v2/<repo>/` */
  registry?: string | undefined;
  /** s3 */
  bucket?: string | undefined;
  prefix?: string | undefined;
}

/**
 * Optional ability: called by `export` once every blob is in the destination, so the store can
 * record the set (the registry store pushes a tagged OCI artifact manifest listing the blobs,
 * which keeps registry garbage collection from deleting them). Returns a description of what
 * was recorded, for the log.
 */
export interface ExportFinalizingStore extends BlobStore {
  /** `blobs`: digests, or digests with sizes (saves the store a `stat` each). */
  finalizeExport(
    blobs: readonly (Digest | { digest: Digest; size?: number | undefined })[],
    opts?: IoOptions & { tag?: string | undefined; log?: import('../util/log.js').Logger | undefined },
  ): Promise<string | void>;
}

export function canFinalizeExport(s: BlobStore): s is ExportFinalizingStore {
  return typeof (s as Partial<ExportFinalizingStore>).finalizeExport === 'function';
}

/** One blob as a listing store reports it (`htvend gc`). */
export interface ListedBlob {
  digest: Digest;
  size: number;
  /**
   * Milliseconds since the epoch: when the blob was written (filesystem mtime, S3
   * LastModified), or, where the store keeps no time (registry), when gc first saw it.
   */
  since: number;
}

/**
 * Optional ability (`htvend gc`): enumerate every blob, streamed (a filesystem store of
 * 100,000 blobs is never held as one array of names), and delete them.
 */
export interface ListOptions extends IoOptions {
  /**
   * Which blobs need `size` and `since`: for the others a backend may skip the per-blob
   * lookup (filesystem: one stat each) and report 0 for both. Default: all.
   */
  details?: ((digest: Digest) => boolean) | undefined;
}

export interface ListableStore extends DeletableStore {
  list(opts?: ListOptions): AsyncIterable<ListedBlob>;
  /** Deletes many blobs in as few requests as the backend allows (S3: 1,000 per request). */
  deleteMany?(digests: readonly Digest[], opts?: IoOptions): Promise<void>;
  /**
   * After a sweep, with every listed blob that was not deleted (registry: push a fresh listing
   * manifest of what remains and drop the old ones). Returns a description for the log.
   */
  finishGc?(remaining: readonly ListedBlob[], opts?: IoOptions): Promise<string | void>;
}

export function canList(s: BlobStore): s is ListableStore {
  return canDelete(s) && typeof (s as Partial<ListableStore>).list === 'function';
}
