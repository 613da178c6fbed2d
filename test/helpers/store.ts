/** Small helpers for tests that drive a BlobStore directly. */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobStore, PutOptions } from '../../src/store/store.js';
import type { Digest } from '../../src/util/digest.js';

/** Puts `data` through the streaming writer (aborting it on a write error) and commits it. */
export async function putBytes(store: BlobStore, data: Buffer | Readable, opts: PutOptions = {}): Promise<Digest> {
  const w = await store.put(opts);
  try {
    await pipeline(Buffer.isBuffer(data) ? Readable.from([data]) : data, w.stream);
  } catch (e) {
    await w.abort(e);
    throw e;
  }
  return w.commit();
}

/** Reads a whole (small, test-sized) stream into memory. */
export async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}
