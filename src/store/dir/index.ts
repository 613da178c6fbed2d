/**
 * The filesystem blob store (SPEC §6): flat `<dir>/<sha256 hex>` files, the layout of the Go
 * htvend, so one directory can be shared by both tools.
 *
 * Writes go to a temp file in the same directory (hashed on the way, fsynced), then are renamed
 * to their digest: a blob is either absent or complete. Concurrent puts of the same bytes are
 * safe: each writer has its own temp file and the renames are atomic; a complete existing blob
 * is kept. Files are created 0600 and directories 0755, as the Go tool does (blobs may come
 * from authenticated sources).
 */
import { createReadStream } from 'node:fs';
import { access, constants, lstat, mkdir, open, opendir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { Readable, Writable, addAbortSignal, pipeline } from 'node:stream';
import { HtvendError, describeError } from '../../util/errors.js';
import { DIRECT_ALIGN, acquireAlignedSlot, isDirectWritable, releaseAlignedSlot } from '../../util/aligned.js';
import { OffThreadHash, VerifyingStream, parseDigest, sha256Hex, writerSha256, type Digest, type Sha256 } from '../../util/digest.js';
import type { BlobStat, BlobStore, BlobWriter, IoOptions, ListableStore, ListedBlob, ListOptions, PutOptions, RangeReadableStore } from '../store.js';

const HEX64 = /^[0-9a-f]{64}$/;

/** Read chunk size: large chunks keep sha256 hashing, not syscalls, the bottleneck. */
const READ_HIGH_WATER_MARK = 1024 * 1024;
/**
 * Chunk size once READS_AT_FULL_CHUNK streams are open: each open read holds about four
 * chunks (read-ahead, the verifier's held-back chunk and readable side, the socket's queue),
 * so 200 concurrent replays of big blobs took 500+ MiB RSS at 1 MiB chunks. With many readers
 * the bottleneck is the clients, not syscalls (measured in bench/soak.sh). 16 KiB is one TLS
 * record: with 64 KiB chunks 200 concurrent 1 MiB replays peaked at 186–209 MiB on an idle
 * machine (test/faults/load.test.ts, limit 200), with 16 KiB at 140–170 MiB.
 */
const READ_SMALL_HIGH_WATER_MARK = 16 * 1024;
const READS_AT_FULL_CHUNK = 8;
/**
 * Blobs up to this size are read with one read() and verified before get() returns: no
 * stream pipeline per blob (most requests of a build are small: manifests, indexes, tokens).
 */
const SMALL_BLOB_BYTES = 64 * 1024;
/** Blobs from this size on are hashed on the worker thread when read or written: see OffThreadHash. */
const OFF_THREAD_HASH_BYTES = 4 * 1024 * 1024;
/**
 * Small blobs already verified are kept in memory (least recently used dropped first), up to
 * this many bytes: replaying them then costs no file I/O and no hashing. Bounded, and only
 * blobs of at most SMALL_BLOB_BYTES, so large blobs are never held in memory.
 */
const SMALL_CACHE_BYTES = 8 * 1024 * 1024;

/** Verified small blobs by digest; Map order is recency (re-inserted on each hit). */
class SmallBlobCache {
  private readonly blobs = new Map<Digest, Buffer>();
  private bytes = 0;

  get(d: Digest): Buffer | undefined {
    const b = this.blobs.get(d);
    if (b) {
      this.blobs.delete(d);
      this.blobs.set(d, b);
    }
    return b;
  }

  set(d: Digest, b: Buffer): void {
    if (b.length > SMALL_BLOB_BYTES || this.blobs.has(d)) return;
    this.blobs.set(d, b);
    this.bytes += b.length;
    for (const [old, ob] of this.blobs) {
      if (this.bytes <= SMALL_CACHE_BYTES) break;
      this.blobs.delete(old);
      this.bytes -= ob.length;
    }
  }

  delete(d: Digest): void {
    const b = this.blobs.get(d);
    if (b) this.bytes -= b.length;
    this.blobs.delete(d);
  }
}

/** A readable stream of `body`, or one failing with `error`; no I/O left to do. */
function bufferStream(body: Buffer, error?: Error): Readable {
  return new Readable({
    highWaterMark: Math.max(body.length, 1),
    read() {
      if (error) {
        this.destroy(error);
        return;
      }
      if (body.length > 0) this.push(body);
      this.push(null);
    },
  });
}
const WRITE_HIGH_WATER_MARK = 1024 * 1024;
/** Prefix of in-progress files; like the Go tool's `tmp*` names they never look like a digest. */
const TEMP_PREFIX = 'tmp-htvend-';

/**
 * `${XDG_DATA_HOME:-~/.local/share}/htvend/cache/blobs`, the Go tool's default. A `dir` starting
 * with the literal `${XDG_DATA_HOME}/` (the flag's documented default) is expanded the same way.
 */
export function resolveBlobsDir(dir: string | undefined, env: Readonly<Record<string, string | undefined>> = process.env): string {
  const xdg = env.XDG_DATA_HOME && isAbsolute(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : join(env.HOME || homedir(), '.local', 'share');
  if (dir === undefined || dir === '') return join(xdg, 'htvend', 'cache', 'blobs');
  if (dir.startsWith('${XDG_DATA_HOME}/')) return join(xdg, dir.slice('${XDG_DATA_HOME}/'.length));
  return resolve(dir);
}

/**
 * A Writable that hashes what it writes to an open file handle. Large (or unknown-size) blobs
 * are hashed on the worker thread (OffThreadHash), overlapping the file write and, in a
 * recording, the TLS work on the main thread: on a CPU without SHA extensions sha256 runs at
 * ~260 MB/s and was the main thread's largest cost (docs/proxy.md).
 *
 * Given `direct` (a second handle on the same file opened with O_DIRECT), the bytes bypass the
 * page cache: chunks already page-aligned (the recorder's batches, src/util/aligned.ts) are
 * written as they are, others are gathered in one aligned 1 MiB slot first. The last partial
 * block is written padded and the file truncated to its size. On this VM a buffered GiB cost
 * ~2.3 CPU-s of kernel time in page-cache allocation and copying, an O_DIRECT one ~0.2 s
 * (docs/proxy.md, "Recording, fifth round"). A filesystem refusing an O_DIRECT write (EINVAL)
 * switches the writer to the buffered handle for the rest.
 */
class HashingFileWriter extends Writable {
  private readonly hash: Sha256 | OffThreadHash;
  private result: Digest | undefined;
  size = 0;
  /** Bytes on disk so far (direct mode: excludes what waits in `staging`). */
  private position = 0;
  private staging: Buffer | undefined;
  private staged = 0;
  /** The last file operation; the staging slot is released only after it. */
  private lastIo: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly fh: FileHandle,
    opts: PutOptions,
    private direct?: FileHandle,
  ) {
    super({ highWaterMark: WRITE_HIGH_WATER_MARK });
    const large = opts.size === undefined || opts.size >= OFF_THREAD_HASH_BYTES;
    this.hash = large && !(opts.verifiedSource && opts.expected) ? new OffThreadHash() : writerSha256(opts);
  }

  /** The sha256 of everything written; valid once the stream has finished. */
  digest(): Digest {
    if (!this.result) throw new HtvendError('INTERNAL', 'blob digest read before the stream finished');
    return this.result;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this._writev([{ chunk }], cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    const bufs = chunks.map((c) => c.chunk);
    // Every write is positional (`position`): after an O_DIRECT fallback the buffered handle's
    // own file offset is still 0, and staged bytes must reach the file before later ones.
    const write = this.direct || this.staged > 0 ? this.writeDirect(bufs) : this.writeAt(bufs);
    this.lastIo = write.catch(() => {});
    Promise.all([write, this.hashAll(bufs)]).then(() => cb(), cb);
  }

  /** Writes `bufs` at the end of what is on disk, through the O_DIRECT handle where alignment allows. */
  private async writeDirect(bufs: Buffer[]): Promise<void> {
    let run: Buffer[] = [];
    for (const b of bufs) {
      if (this.staged === 0 && isDirectWritable(b)) {
        run.push(b);
        continue;
      }
      await this.writeAt(run);
      run = [];
      for (let off = 0; off < b.length; ) {
        this.staging ??= acquireAlignedSlot();
        const k = b.copy(this.staging, this.staged, off);
        this.staged += k;
        off += k;
        if (this.staged === this.staging.length) await this.flushStaging();
      }
    }
    await this.writeAt(run);
  }

  private async flushStaging(): Promise<void> {
    const n = this.staged;
    if (n === 0) return;
    const padded = Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN;
    await this.writeAt([this.staging!.subarray(0, padded)], n);
    this.staged = 0;
  }

  /** Writes `bufs` at `position`; `real` is their length without the last block's padding. */
  private async writeAt(bufs: Buffer[], real?: number): Promise<void> {
    if (bufs.length === 0) return;
    if (this.destroyed) throw new Error('blob writer destroyed');
    const len = bufs.reduce((a, b) => a + b.length, 0);
    const at = this.position;
    try {
      if (this.direct) await this.direct.writev(bufs, at);
      else await this.fh.writev(bufs, at);
    } catch (e) {
      if (!this.direct || (e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
      // This filesystem takes O_DIRECT opens but not these writes: buffered from here on.
      const d = this.direct;
      this.direct = undefined;
      await d.close().catch(() => {});
      await this.fh.writev(bufs, at);
    }
    this.position += real ?? len;
  }

  /** Hashes `bufs` in order, waiting whenever the worker has enough queued. */
  private async hashAll(bufs: Buffer[]): Promise<void> {
    const inPlace: Promise<void>[] = [];
    for (const b of bufs) {
      this.size += b.length;
      if (this.hash instanceof OffThreadHash) {
        // The recorder's pooled batches are hashed where they are; their write callback (ours)
        // waits for it, so they are not refilled before.
        const p = this.hash.updateInPlace(b);
        if (p) inPlace.push(p);
        else await this.hash.update(b);
      } else this.hash.update(b);
    }
    await Promise.all(inPlace);
  }

  override _final(cb: (err?: Error | null) => void): void {
    void (async () => {
      if (this.staging) {
        const padded = this.staged % DIRECT_ALIGN !== 0;
        await this.flushStaging();
        if (padded) await this.fh.truncate(this.position);
      }
      this.result = this.hash instanceof OffThreadHash ? await this.hash.digest() : parseDigest(this.hash.digest('hex'));
    })().then(() => {
      this.releaseIo();
      cb();
    }, cb);
  }

  /** Closes the O_DIRECT handle and returns the staging slot, once no write uses them. */
  private releaseIo(): void {
    const { staging, direct } = this;
    this.staging = undefined;
    this.direct = undefined;
    void this.lastIo.then(() => {
      if (staging) releaseAlignedSlot(staging);
      return direct?.close();
    }).catch(() => {});
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    if (this.hash instanceof OffThreadHash && !this.result) this.hash.cancel();
    this.releaseIo();
    cb(err);
  }
}

export interface DirStoreOptions extends IoOptions {
  /** Create the directory if missing (default true). */
  create?: boolean;
  /**
   * Write large blobs with O_DIRECT, bypassing the page cache (default true unless the
   * environment has HTVEND_DIRECT_IO=0): see HashingFileWriter.
   */
  directWrites?: boolean;
}

/** Filesystem BlobStore; open with `DirStore.open()`. */
export class DirStore implements BlobStore, RangeReadableStore, ListableStore {
  readonly description: string;
  private readonly small = new SmallBlobCache();
  /** Streaming reads open now (see READ_SMALL_HIGH_WATER_MARK). */
  private openReads = 0;

  private constructor(
    readonly dir: string,
    private readonly directWrites: boolean,
  ) {
    this.description = `filesystem store ${dir}`;
  }

  /** Opens (and by default creates) the blob directory; an unusable one is a STORE error naming it. */
  static async open(dir: string, opts: DirStoreOptions = {}): Promise<DirStore> {
    opts.signal?.throwIfAborted();
    try {
      if (opts.create ?? true) await mkdir(dir, { recursive: true, mode: 0o755 });
      const s = await stat(dir);
      if (!s.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      await access(dir, constants.R_OK | constants.X_OK);
    } catch (e) {
      throw new HtvendError('STORE', `blob directory ${dir} is not usable: ${describeError(e)}`, {
        hint: 'check --blobs-dir and its permissions',
        cause: e,
      });
    }
    return new DirStore(dir, opts.directWrites ?? process.env.HTVEND_DIRECT_IO !== '0');
  }

  /** Path of a blob's file. */
  pathOf(digest: Digest): string {
    return join(this.dir, digest);
  }

  async stat(digest: Digest, opts: IoOptions = {}): Promise<BlobStat | undefined> {
    opts.signal?.throwIfAborted();
    const cached = this.small.get(digest);
    if (cached) return { size: cached.length };
    try {
      const s = await stat(this.pathOf(digest));
      return s.isFile() ? { size: s.size } : undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw this.ioError(`cannot stat blob ${digest}`, e);
    }
  }

  async get(digest: Digest, opts: IoOptions = {}): Promise<Readable> {
    const cached = this.small.get(digest);
    if (cached) {
      opts.signal?.throwIfAborted();
      return bufferStream(cached);
    }
    const { fh, size } = await this.openBlob(digest, opts);
    if (size <= SMALL_BLOB_BYTES) return this.getSmall(digest, fh, size, opts);
    // `end` stops the stream at the size seen by fstat (no extra read to find EOF); a blob that
    // grew since is caught by the verifier either way.
    const chunk = this.openReads >= READS_AT_FULL_CHUNK ? READ_SMALL_HIGH_WATER_MARK : READ_HIGH_WATER_MARK;
    const raw = createReadStream('', { fd: fh, end: size - 1, highWaterMark: chunk });
    this.openReads++;
    raw.once('close', () => this.openReads--);
    const verified = new VerifyingStream(digest, `blob ${digest} in ${this.description}`, size, { offThread: size >= OFF_THREAD_HASH_BYTES && this.openReads <= READS_AT_FULL_CHUNK });
    // pipeline: a read error destroys `verified`; destroying `verified` closes the file.
    pipeline(raw, verified, () => {});
    if (opts.signal) addAbortSignal(opts.signal, verified);
    return verified;
  }

  /** One read into a buffer of exactly `size`, verified whole: the stream errors on a mismatch. */
  private async getSmall(digest: Digest, fh: FileHandle, size: number, opts: IoOptions): Promise<Readable> {
    let buf: Buffer;
    let bytesRead = 0;
    try {
      // One spare byte: a file that grew since fstat reads more than `size` and fails below.
      buf = Buffer.allocUnsafe(size + 1);
      for (;;) {
        const n = (await fh.read(buf, bytesRead, buf.length - bytesRead, bytesRead)).bytesRead;
        bytesRead += n;
        if (n === 0 || bytesRead === buf.length) break;
      }
    } catch (e) {
      throw this.ioError(`cannot read blob ${digest}`, e);
    } finally {
      await fh.close().catch(() => {});
    }
    opts.signal?.throwIfAborted();
    const what = `blob ${digest} in ${this.description}`;
    const got = bytesRead === size ? sha256Hex(buf.subarray(0, size)) : undefined;
    const error =
      got === digest
        ? undefined
        : new HtvendError('DIGEST_MISMATCH', `${what}: content does not match sha256 ${digest} (got ${got ? `sha256 ${got}` : `${bytesRead} bytes, expected ${size}`})`);
    // A copy of exactly `size` bytes for the cache: `buf` has a spare byte.
    const body = error ? buf : Buffer.from(buf.subarray(0, size));
    if (!error) this.small.set(digest, body);
    const out = bufferStream(body, error);
    if (opts.signal) addAbortSignal(opts.signal, out);
    return out;
  }

  async getRange(digest: Digest, start: number, end: number, opts: IoOptions = {}): Promise<Readable> {
    const { fh, size } = await this.openBlob(digest, opts);
    if (start < 0 || end < start || end >= size) {
      await fh.close();
      throw new HtvendError('INTERNAL', `range ${start}-${end} outside blob ${digest} of ${size} bytes`);
    }
    const raw = createReadStream('', { fd: fh, start, end, highWaterMark: READ_HIGH_WATER_MARK });
    if (opts.signal) addAbortSignal(opts.signal, raw);
    return raw;
  }

  async delete(digest: Digest, opts: IoOptions = {}): Promise<void> {
    opts.signal?.throwIfAborted();
    this.small.delete(digest);
    try {
      await rm(this.pathOf(digest), { force: true });
    } catch (e) {
      throw this.ioError(`cannot delete blob ${digest}`, e);
    }
  }

  /**
   * Every `<sha256 hex>` file, read with opendir (one directory block at a time, never the
   * whole name list), with its size and mtime. Temp files of uploads in progress are skipped.
   * The stats run 64 at a time (libuv's pool overlaps them): one by one, 100,000 take ~3x longer.
   */
  async *list(opts: ListOptions = {}): AsyncGenerator<ListedBlob> {
    const dir = await opendir(this.dir, { bufferSize: 256 });
    let names: string[] = [];
    const flush = async (): Promise<ListedBlob[]> => {
      const batch = names;
      names = [];
      const out = await Promise.all(
        batch.map(async (name): Promise<ListedBlob | undefined> => {
          if (opts.details && !opts.details(name as Digest)) return { digest: name as Digest, size: 0, since: 0 };
          try {
            const st = await lstat(join(this.dir, name));
            return st.isFile() ? { digest: name as Digest, size: st.size, since: st.mtimeMs } : undefined;
          } catch {
            return undefined; // deleted meanwhile
          }
        }),
      );
      return out.filter((b): b is ListedBlob => b !== undefined);
    };
    for await (const ent of dir) {
      opts.signal?.throwIfAborted();
      if (!HEX64.test(ent.name) || !(ent.isFile() || ent.isSymbolicLink())) continue;
      names.push(ent.name);
      if (names.length >= 64) yield* await flush();
    }
    yield* await flush();
  }

  async put(opts: PutOptions = {}): Promise<BlobWriter> {
    opts.signal?.throwIfAborted();
    const tmp = join(this.dir, TEMP_PREFIX + randomBytes(8).toString('hex'));
    let fh: FileHandle;
    try {
      fh = await open(tmp, 'wx', 0o600);
    } catch (e) {
      throw this.ioError('cannot create a blob', e);
    }
    // Large (or unknown-size) blobs bypass the page cache (see HashingFileWriter); small ones
    // are replayed soon and often, and cost little.
    let direct: FileHandle | undefined;
    if (this.directWrites && (opts.size === undefined || opts.size >= OFF_THREAD_HASH_BYTES)) {
      direct = await open(tmp, constants.O_WRONLY | constants.O_DIRECT).catch(() => undefined);
    }
    const stream = new HashingFileWriter(fh, opts, direct);
    let state: 'open' | 'committed' | 'aborted' = 'open';
    const cleanup = async () => {
      stream.destroy();
      await fh.close().catch(() => {});
      await rm(tmp, { force: true }).catch(() => {});
    };
    const onAbort = () => void writer.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const writer: BlobWriter = {
      stream,
      // HashingFileWriter calls back only once fh.write()/writev() has returned (the bytes are
      // in the page cache) and the hash has taken them (Sha256.update, or OffThreadHash.update
      // which copies into its own pieces), so a chunk is free again by its write callback.
      releasesChunks: true,
      commit: async () => {
        opts.signal?.removeEventListener('abort', onAbort);
        if (state !== 'open') throw new HtvendError('INTERNAL', `commit of a blob writer that was already ${state}`);
        try {
          if (!stream.writableFinished) {
            throw new HtvendError('INTERNAL', 'commit() called before the blob stream was ended');
          }
          const digest = stream.digest();
          if (opts.expected && digest !== opts.expected) {
            throw new HtvendError('DIGEST_MISMATCH', `upload to ${this.description}: content has sha256 ${digest}, expected ${opts.expected}`);
          }
          if (opts.size !== undefined && stream.size !== opts.size) {
            throw new HtvendError('DIGEST_MISMATCH', `upload to ${this.description}: ${stream.size} bytes, expected ${opts.size}`);
          }
          await fh.datasync();
          await fh.close();
          const target = this.pathOf(digest);
          const existing = await stat(target).catch(() => undefined);
          if (existing?.isFile() && existing.size === stream.size) {
            await rm(tmp, { force: true }); // another writer got there first: same bytes, keep theirs
          } else {
            await rename(tmp, target);
          }
          state = 'committed';
          return digest;
        } catch (e) {
          state = 'aborted';
          await cleanup();
          if (e instanceof HtvendError) throw e;
          throw this.ioError('cannot store a blob', e);
        }
      },
      abort: async () => {
        opts.signal?.removeEventListener('abort', onAbort);
        if (state !== 'open') return;
        state = 'aborted';
        await cleanup();
      },
    };
    return writer;
  }

  private async openBlob(digest: Digest, opts: IoOptions): Promise<{ fh: FileHandle; size: number }> {
    opts.signal?.throwIfAborted();
    let fh: FileHandle;
    try {
      fh = await open(this.pathOf(digest), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new HtvendError('NOT_FOUND', `blob ${digest} is not in ${this.description}`);
      }
      throw this.ioError(`cannot read blob ${digest}`, e);
    }
    try {
      return { fh, size: (await fh.stat()).size };
    } catch (e) {
      await fh.close();
      throw this.ioError(`cannot read blob ${digest}`, e);
    }
  }

  private ioError(what: string, e: unknown): HtvendError {
    return new HtvendError('STORE', `${what} in ${this.description}: ${describeError(e)}`, { cause: e });
  }
}

/** Opens the filesystem store for `--blobs-dir` (undefined = the XDG default). */
export async function openDirStore(dir: string | undefined, opts: { env?: Readonly<Record<string, string | undefined>>; signal?: AbortSignal | undefined } = {}): Promise<DirStore> {
  return DirStore.open(resolveBlobsDir(dir, opts.env), { signal: opts.signal });
}
