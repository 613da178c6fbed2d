/**
 * sha256 digests as a checked type. A `Digest` is only made by `parseDigest()` or by hashing,
 * so any value of this type is known to be well-formed (64 lowercase hex chars).
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { HtvendError } from './errors.js';
import { alignedLocation, watchAlignedMemories } from './aligned.js';

declare const digestBrand: unique symbol;
/** Lowercase 64-char sha256 hex, no algorithm prefix (the assets.json / blob-dir form). */
export type Digest = string & { readonly [digestBrand]: true };

const HEX64 = /^[0-9a-f]{64}$/;

/** Accepts `abc…` or `sha256:abc…`; anything else is an INPUT error naming `where`. */
export function parseDigest(s: string, where = 'digest'): Digest {
  const hex = s.startsWith('sha256:') ? s.slice(7) : s;
  if (!HEX64.test(hex)) {
    throw new HtvendError('INPUT', `${where}: invalid sha256 ${JSON.stringify(s)} (want 64 lowercase hex characters)`);
  }
  return hex as Digest;
}

export function isDigest(s: string): s is Digest {
  return HEX64.test(s);
}

/** `sha256:<hex>`, the OCI form. */
export function ociDigest(d: Digest): string {
  return `sha256:${d}`;
}

export function sha256Hex(data: string | Uint8Array): Digest {
  return createHash('sha256').update(data).digest('hex') as Digest;
}

/** The digest of the empty blob. */
export const EMPTY_DIGEST = sha256Hex('');

/** What the store writers need of a sha256: node:crypto's `Hash`, or the stand-in below. */
export interface Sha256 {
  update(data: Uint8Array): unknown;
  digest(encoding: 'hex'): string;
}

/**
 * The sha256 a blob writer keeps. With `verifiedSource` and `expected` (PutOptions) the bytes
 * come from a `BlobStore.get()` stream, which fails before its last chunk unless they hash to
 * `expected`, so hashing them again would only cost CPU (a second pass over every exported
 * byte: ~4 s per GiB on a CPU without SHA extensions); the stand-in answers `expected`.
 */
export function writerSha256(opts: { expected?: Digest | undefined; verifiedSource?: boolean | undefined }): Sha256 {
  const known = opts.verifiedSource ? opts.expected : undefined;
  if (known) return { update: () => undefined, digest: () => known };
  return createHash('sha256');
}

/**
 * Pass-through stream that hashes and counts what flows through it.
 * `digest()` is valid after 'end'/'finish'.
 */
export class HashingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private result: Digest | undefined;
  size = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.result = this.hash.digest('hex') as Digest;
    cb();
  }

  digest(): Digest {
    if (!this.result) throw new HtvendError('INTERNAL', 'digest() read before the stream ended');
    return this.result;
  }
}

/**
 * Pass-through stream that fails *before* emitting the last chunk if the bytes do not hash to
 * `expected` (and, if given, do not have `expectedSize` bytes). Because the final chunk is held
 * back until verified, a consumer never sees a complete wrong body.
 */
export class VerifyingStream extends Transform {
  private readonly hash: Hash | OffThreadHash;
  private pending: Buffer | undefined;
  private size = 0;

  /**
   * `opts.offThread`: hash on a worker thread (worth it for blobs of megabytes, where
   * hashing would otherwise share the main thread with TLS); `opts.highWaterMark` of the
   * readable side, so a fast consumer finds data already read and verified.
   */
  constructor(
    private readonly expected: Digest,
    private readonly what: string,
    private readonly expectedSize?: number,
    opts: { offThread?: boolean; highWaterMark?: number } = {},
  ) {
    super(opts.highWaterMark === undefined ? {} : { readableHighWaterMark: opts.highWaterMark });
    this.hash = opts.offThread ? new OffThreadHash() : createHash('sha256');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let wait: Promise<void> | undefined;
    try {
      wait = this.hash instanceof OffThreadHash ? this.hash.update(chunk) : void this.hash.update(chunk);
    } catch (e) {
      cb(e as Error);
      return;
    }
    this.size += chunk.length;
    if (this.expectedSize !== undefined && this.size > this.expectedSize) {
      cb(this.mismatch(`more than ${this.expectedSize} bytes`));
      return;
    }
    const prev = this.pending;
    this.pending = chunk;
    if (wait) {
      if (prev) this.push(prev);
      wait.then(() => cb(), cb);
    } else {
      cb(null, prev);
    }
  }

  override _flush(cb: TransformCallback): void {
    if (this.hash instanceof OffThreadHash) {
      this.hash.digest().then((got) => this.finish(got, cb), cb);
    } else {
      this.finish(this.hash.digest('hex'), cb);
    }
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    // After a normal end the job is already closed; this frees it when cut short.
    if (this.hash instanceof OffThreadHash && (err || !this.readableEnded)) this.hash.cancel();
    cb(err);
  }

  private finish(got: string, cb: TransformCallback): void {
    if (got !== this.expected) return cb(this.mismatch(`sha256 ${got}`));
    if (this.expectedSize !== undefined && this.size !== this.expectedSize) {
      return cb(this.mismatch(`${this.size} bytes, expected ${this.expectedSize}`));
    }
    if (this.pending) this.push(this.pending);
    cb();
  }

  private mismatch(detail: string): HtvendError {
    return new HtvendError('DIGEST_MISMATCH', `${this.what}: content does not match sha256 ${this.expected} (got ${detail})`);
  }
}

/**
 * The worker's code (plain CommonJS, evaluated: no file to locate from src/ or dist/). A
 * worker serves many jobs: `{id, buf, len}` is hashed and the buffer sent back for reuse,
 * `{id, end}` answers the hex digest, `{id, cancel}` drops the job.
 */
const HASH_WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const jobs = new Map();
let slots = [];
const mems = new Map();
parentPort.on('message', (m) => {
  if (m.slots) { slots = m.slots.map((s) => new Uint8Array(s)); return; }
  if (m.addMem !== undefined) { mems.set(m.addMem, m.mem); return; }
  if (m.dropMem !== undefined) { mems.delete(m.dropMem); return; }
  if (m.inMem !== undefined) {
    let j = jobs.get(m.id);
    if (!j) { j = createHash('sha256'); jobs.set(m.id, j); }
    j.update(new Uint8Array(mems.get(m.inMem), m.off, m.len));
    parentPort.postMessage({ id: m.id, inPlace: true });
    return;
  }
  if (m.cancel) { jobs.delete(m.id); return; }
  let h = jobs.get(m.id);
  if (!h) { h = createHash('sha256'); jobs.set(m.id, h); }
  if (m.slot !== undefined) { h.update(slots[m.slot].subarray(0, m.len)); parentPort.postMessage({ id: m.id, slot: m.slot }); }
  if (m.buf) { h.update(new Uint8Array(m.buf, 0, m.len)); parentPort.postMessage({ id: m.id, buf: m.buf }, [m.buf]); }
  if (m.end) { jobs.delete(m.id); parentPort.postMessage({ id: m.id, hex: h.digest('hex') }); }
});`;

/** Bytes per message to the worker: small chunks are gathered, large ones split. */
const HASH_PIECE_BYTES = 1024 * 1024;
/** Pieces one job may have at the worker before update() asks its caller to wait. */
const HASH_MAX_IN_FLIGHT = 4;
/** Pieces kept for reuse once the worker gives them back (freed buffers would wait for GC). */
const HASH_MAX_FREE = 4;
/**
 * Shared pieces per worker, handed to it once at start: a message then names a slot instead of
 * transferring a buffer. Each transferred ArrayBuffer is new external memory to V8 on both
 * sides, and a recording of 1 GiB triggered ~25 extra full GCs that way (docs/proxy.md).
 * When every slot is taken (several jobs on one worker), update() falls back to transfers.
 */
const HASH_SHARED_SLOTS = 5;

interface HashJob {
  onPieceDone(): void;
  onInPlaceDone(): void;
  onDigest(hex: string): void;
  onError(e: Error): void;
}

interface HashWorkerState {
  worker: Worker;
  jobs: Map<number, HashJob>;
  nextId: number;
  free: ArrayBuffer[];
  /** Shared pieces (the worker has them too) and the indexes of those not in use. */
  slots: Uint8Array[];
  freeSlots: number[];
}

/**
 * Hash workers, started on demand up to one per core (at most 4): concurrent jobs (`verify --jobs`,
 * `export`, parallel downloads) hash on separate cores, while a single job never starts a
 * second worker (each costs ~10 MiB of RSS). One sha256 stream cannot be split, so a job
 * stays on the worker it started on.
 */
const hashWorkers: HashWorkerState[] = [];
/** At most 4: four cores hash faster than a disk or a link delivers, and each worker costs RSS. */
const MAX_HASH_WORKERS = Math.max(1, Math.min(4, availableParallelism()));

/** Hash workers running now (diagnostics and tests). */
export function hashWorkerCount(): number {
  return hashWorkers.length;
}

/** The worker for a new job: an idle one, else a new one while under the cap, else the least busy. */
function hashWorkerForNewJob(): HashWorkerState {
  let best: HashWorkerState | undefined;
  for (const w of hashWorkers) if (!best || w.jobs.size < best.jobs.size) best = w;
  if (best && (best.jobs.size === 0 || hashWorkers.length >= MAX_HASH_WORKERS)) return best;
  return startHashWorker();
}

/** Starts a hashing worker; it keeps the process alive only while a job is open. */
function startHashWorker(): HashWorkerState {
  const worker = new Worker(HASH_WORKER_SOURCE, { eval: true });
  const shared = Array.from({ length: HASH_SHARED_SLOTS }, () => new SharedArrayBuffer(HASH_PIECE_BYTES));
  const state: HashWorkerState = {
    worker,
    jobs: new Map(),
    nextId: 1,
    free: [],
    slots: shared.map((b) => new Uint8Array(b)),
    freeSlots: shared.map((_, i) => i),
  };
  worker.postMessage({ slots: shared });
  // Shared aligned memories (the recorder's batches): hashed where they are, see updateInPlace().
  const unwatch = watchAlignedMemories({
    added: (id, mem) => worker.postMessage({ addMem: id, mem }),
    dropped: (id) => worker.postMessage({ dropMem: id }),
  });
  worker.unref();
  worker.on('message', (m: { id: number; buf?: ArrayBuffer; slot?: number; hex?: string; inPlace?: boolean }) => {
    if (m.buf && state.free.length < HASH_MAX_FREE) state.free.push(m.buf);
    if (m.slot !== undefined) state.freeSlots.push(m.slot);
    const job = state.jobs.get(m.id);
    if (!job) return;
    if (m.inPlace) job.onInPlaceDone();
    if (m.buf || m.slot !== undefined) job.onPieceDone();
    if (m.hex !== undefined) job.onDigest(m.hex);
  });
  const fail = (e: Error) => {
    unwatch();
    const i = hashWorkers.indexOf(state);
    if (i >= 0) hashWorkers.splice(i, 1);
    for (const job of state.jobs.values()) job.onError(new HtvendError('INTERNAL', `sha256 worker failed: ${e.message}`, { cause: e }));
    state.jobs.clear();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
  hashWorkers.push(state);
  return state;
}

/**
 * A sha256 computed on a worker thread, so hashing a large blob does not compete with TLS on
 * the main thread. update() copies the bytes into 1 MiB pieces (the caller keeps its buffer;
 * the pieces come back for reuse) and, with HASH_MAX_IN_FLIGHT pieces unhashed, returns a
 * promise to wait on, so memory stays bounded. digest() resolves once every byte is hashed.
 */
export class OffThreadHash {
  private readonly w = hashWorkerForNewJob();
  private readonly id = this.w.nextId++;
  private piece: Uint8Array | undefined;
  /** The shared slot `piece` is, or undefined for a transferable buffer of its own. */
  private pieceSlot: number | undefined;
  private pieceLen = 0;
  private inFlight = 0;
  private wake: (() => void) | undefined;
  private error: Error | undefined;
  private result: Promise<Digest> | undefined;
  private settleDigest: ((hex: string) => void) | undefined;
  /** Callers of updateInPlace() waiting for the worker, in order. */
  private readonly inPlace: { resolve(): void; reject(e: Error): void }[] = [];
  private failDigest: ((e: Error) => void) | undefined;

  constructor() {
    if (this.w.jobs.size === 0) this.w.worker.ref();
    this.w.jobs.set(this.id, {
      onPieceDone: () => {
        this.inFlight--;
        this.release();
      },
      onInPlaceDone: () => this.inPlace.shift()?.resolve(),
      onDigest: (hex) => {
        this.close();
        this.settleDigest?.(hex);
      },
      onError: (e) => {
        this.error = e;
        for (const w of this.inPlace.splice(0)) w.reject(e);
        this.close();
        this.release();
        this.failDigest?.(e);
      },
    });
  }

  /** Queues `chunk` for hashing; a returned promise means: wait for it before the next update. */
  update(chunk: Uint8Array): Promise<void> | undefined {
    if (this.error) throw this.error;
    for (let off = 0; off < chunk.length; ) {
      if (!this.piece) {
        this.pieceSlot = this.w.freeSlots.pop();
        this.piece = this.pieceSlot !== undefined ? this.w.slots[this.pieceSlot]! : new Uint8Array(this.w.free.pop() ?? new ArrayBuffer(HASH_PIECE_BYTES));
      }
      const n = Math.min(chunk.length - off, HASH_PIECE_BYTES - this.pieceLen);
      this.piece.set(chunk.subarray(off, off + n), this.pieceLen);
      this.pieceLen += n;
      off += n;
      if (this.pieceLen === HASH_PIECE_BYTES) this.send();
    }
    if (this.inFlight < HASH_MAX_IN_FLIGHT) return undefined;
    return new Promise((resolve) => (this.wake = resolve));
  }

  /**
   * Hashes `chunk` where it is, when it lies in a shared aligned memory (src/util/aligned.ts:
   * the recorder's batches), saving update()'s copy; returns undefined otherwise (use update()).
   * The caller must leave the bytes unchanged until the promise resolves.
   */
  updateInPlace(chunk: Uint8Array): Promise<void> | undefined {
    if (this.error) throw this.error;
    const at = alignedLocation(chunk);
    if (!at || chunk.length === 0) return undefined;
    if (this.pieceLen > 0) this.send(); // bytes before this chunk go first (one port: in order)
    this.w.worker.postMessage({ id: this.id, inMem: at.mem, off: at.offset, len: chunk.length });
    return new Promise((resolve, reject) => this.inPlace.push({ resolve, reject }));
  }

  /** The hex sha256 of everything passed to update(). */
  digest(): Promise<Digest> {
    this.result ??= new Promise<Digest>((resolve, reject) => {
      if (this.error) return reject(this.error);
      this.settleDigest = (hex) => resolve(hex as Digest);
      this.failDigest = reject;
      if (this.pieceLen > 0) this.send();
      this.w.worker.postMessage({ id: this.id, end: true });
    });
    return this.result;
  }

  /** Drops the job (e.g. the stream was destroyed); digest() will not resolve after this. */
  cancel(): void {
    if (!this.w.jobs.has(this.id)) return;
    this.w.worker.postMessage({ id: this.id, cancel: true });
    for (const w of this.inPlace.splice(0)) w.resolve(); // the digest is dropped: nobody needs them hashed
    // An unsent shared piece goes back to the worker's pool (sent ones come back on their own).
    if (this.pieceSlot !== undefined) this.w.freeSlots.push(this.pieceSlot);
    this.piece = undefined;
    this.pieceSlot = undefined;
    this.pieceLen = 0;
    this.close();
  }

  private send(): void {
    if (this.pieceSlot !== undefined) {
      this.w.worker.postMessage({ id: this.id, slot: this.pieceSlot, len: this.pieceLen });
    } else {
      const buf = this.piece!.buffer as ArrayBuffer;
      this.w.worker.postMessage({ id: this.id, buf, len: this.pieceLen }, [buf]);
    }
    this.inFlight++;
    this.piece = undefined;
    this.pieceSlot = undefined;
    this.pieceLen = 0;
  }

  private release(): void {
    if (this.inFlight >= HASH_MAX_IN_FLIGHT && !this.error) return;
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private close(): void {
    this.w.jobs.delete(this.id);
    if (this.w.jobs.size === 0) this.w.worker.unref();
  }
}
