/**
 * The body loop of a recording: every upstream byte goes to the store's writer and, when the
 * first client is fed directly ("tee"), to the client, with at most a few MiB queued towards
 * either (memory stays flat, SPEC §3). Two sources:
 *
 * - `teeStream`: a Readable (undici's path, or a proxy of htvend's own): chunks forwarded as
 *   they come.
 * - `teeRawBody`: the direct path's RawBody, whose bytes are views of one shared read buffer.
 *   They are copied into 1 MiB batches, and each batch is written once to both sides. A batch
 *   is refilled only when every side that got it has called back *and* the store says it no
 *   longer holds chunks by then (`BlobWriter.releasesChunks`, the filesystem store); stores
 *   that keep chunks (S3 parts, memory) get fresh batches. 1,000 writes per GiB instead of
 *   60,000, and no per-read garbage (docs/proxy.md, "Recording, third round").
 */
import type { Writable } from 'node:stream';
import type { BlobWriter } from '../store/store.js';
import type { BodySink, RawBody } from '../upstream/direct/agent.js';
import { ALIGNED_SLOT_BYTES, acquireAlignedSlot, releaseAlignedSlot } from '../util/aligned.js';

/** Bytes a recording may queue towards the store or the client before it waits for them. */
export const TEE_QUEUE_BYTES = 4 * 1024 * 1024;
const BATCH_BYTES = ALIGNED_SLOT_BYTES;
/** Batches filled or in flight before the upstream is paused: TEE_QUEUE_BYTES in all. */
const MAX_BATCHES = TEE_QUEUE_BYTES / BATCH_BYTES;

/** Thrown once neither the store nor the client wants more bytes. */
export class BothSidesGone extends Error {}

/** The two destinations, shared with the recorder, which may drop either while the body flows. */
export interface TeeSides {
  /** The store side; `dropWriter` clears it. */
  writer: BlobWriter | undefined;
  /** The first client's response, when teed. */
  client: Writable | undefined;
  clientGone: boolean;
  /** Bytes received from the upstream so far (kept up to date on failure too). */
  received: number;
  /** The first error the store's stream reported. */
  storeError: unknown;
  /** Aborts the store upload after a store failure (logs it; sets `writer` undefined). */
  dropWriter(e: unknown): Promise<void>;
}

/** Resolves when `w` can take more data, or is gone (errors are observed elsewhere). */
function drained(w: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      w.off('drain', done).off('close', done).off('error', done);
      resolve();
    };
    w.on('drain', done).on('close', done).on('error', done);
  });
}

/** After each write: a store failure drops the store side; with no side left the transfer stops. */
async function checkSides(s: TeeSides): Promise<void> {
  if (s.storeError && s.writer) {
    // A store failure is htvend's (SPEC §11): the recording is dropped and the run will fail,
    // but a client already receiving the body gets the rest of it.
    await s.dropWriter(s.storeError);
  }
  if (s.clientGone && !s.writer) throw new BothSidesGone();
}

/** Feeds a Readable body to both sides; returns the number of bytes received. */
export async function teeStream(body: AsyncIterable<Buffer>, s: TeeSides): Promise<number> {
  for await (const chunk of body) {
    s.received += chunk.length;
    s.writer?.stream.write(chunk);
    if (!s.clientGone) s.client?.write(chunk);
    // Wait only once a side has TEE_QUEUE_BYTES queued, not whenever it is past its
    // highWaterMark: the upstream read, the file write and the client's TLS send then
    // overlap instead of taking turns (each waited ~1 MiB step cost ~2.7 ms per MiB).
    const w = s.writer?.stream;
    const storeFull = w !== undefined && w.writableLength > TEE_QUEUE_BYTES;
    const clientFull = !s.clientGone && s.client !== undefined && s.client.writableLength > TEE_QUEUE_BYTES;
    if (storeFull || clientFull) await Promise.all([storeFull && drained(w), clientFull && drained(s.client!)]);
    await checkSides(s);
  }
  return s.received;
}

interface Batch {
  buf: Buffer;
  len: number;
  /** Sides that have it and have not called back yet. */
  storeHeld: boolean;
  clientHeld: boolean;
  /** False once given to a store that may keep it. */
  reusable: boolean;
}

/** Feeds the direct path's body to both sides in 1 MiB batches; returns the bytes received. */
export async function teeRawBody(raw: RawBody, s: TeeSides): Promise<number> {
  const free: Batch[] = [];
  const ready: Batch[] = [];
  const inFlight = new Set<Batch>();
  let cur: Batch | undefined;
  let ended = false;
  let failure: Error | undefined;
  let paused = false;
  /** Set once the loop returned: batches that come free go back to the pool. */
  let done = false;
  // Batches a store releases are page-aligned pool slots, which the filesystem store writes
  // with O_DIRECT as they are (src/util/aligned.ts); the others are plain (the store keeps them).
  const pooled = s.writer?.releasesChunks === true;
  const newBuf = () => (pooled ? acquireAlignedSlot() : Buffer.allocUnsafeSlow(BATCH_BYTES));
  let wake: (() => void) | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  /** Batches that still hold memory for a side that is still there. */
  const busy = () => {
    let k = ready.length;
    for (const b of inFlight) if ((b.storeHeld && s.writer) || (b.clientHeld && !s.clientGone)) k++;
    return k;
  };
  const maybeResume = () => {
    if (paused && !ended && !failure && busy() < MAX_BATCHES) {
      paused = false;
      raw.resume();
    }
  };
  const settle = (b: Batch) => {
    if (b.storeHeld || b.clientHeld) return;
    inFlight.delete(b);
    if (b.reusable && pooled && done) releaseAlignedSlot(b.buf);
    else if (b.reusable) {
      b.len = 0;
      free.push(b);
    }
  };
  const sink: BodySink = {
    data(chunk) {
      s.received += chunk.length;
      for (let off = 0; off < chunk.length; ) {
        cur ??= free.pop() ?? { buf: newBuf(), len: 0, storeHeld: false, clientHeld: false, reusable: true };
        const k = chunk.copy(cur.buf, cur.len, off);
        cur.len += k;
        off += k;
        if (cur.len === BATCH_BYTES) {
          ready.push(cur);
          cur = undefined;
          poke();
        }
      }
      if (busy() < MAX_BATCHES) return true;
      paused = true;
      return false;
    },
    end() {
      if (cur && cur.len > 0) ready.push(cur);
      cur = undefined;
      ended = true;
      poke();
    },
    error(e) {
      failure = e;
      poke();
    },
  };
  // A vanished client may never call back: its batches stop counting, and the loop must look.
  s.client?.once('close', () => {
    maybeResume();
    poke();
  });
  raw.pipe(sink);
  try {
    for (;;) {
      while (ready.length === 0 && !ended && !failure && !(s.clientGone && !s.writer)) await new Promise<void>((r) => (wake = r));
      await checkSides(s);
      if (failure) throw failure;
      const b = ready.shift();
      if (!b) break; // ended and everything handed over
      const view = b.len === BATCH_BYTES ? b.buf : b.buf.subarray(0, b.len);
      inFlight.add(b);
      const w = s.writer;
      if (w) {
        b.storeHeld = true;
        if (!w.releasesChunks) b.reusable = false;
        w.stream.write(view, () => {
          b.storeHeld = false;
          settle(b);
          maybeResume();
        });
      }
      if (!s.clientGone && s.client) {
        b.clientHeld = true;
        s.client.write(view, () => {
          b.clientHeld = false;
          settle(b);
          maybeResume();
        });
      }
      settle(b);
      maybeResume();
      await checkSides(s);
    }
  } catch (e) {
    raw.destroy(e instanceof Error ? e : undefined);
    throw e;
  } finally {
    done = true;
    if (pooled) for (const b of free.splice(0)) releaseAlignedSlot(b.buf);
  }
  return s.received;
}
