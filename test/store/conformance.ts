/**
 * The one conformance suite every BlobStore backend passes (SPEC §6). A backend's test file
 * calls `runConformance('registry', (t) => makeStore(t), { corrupt })`.
 *
 * Environment knobs:
 *   HTVEND_TEST_BIG=1                 large-blob test uses 1 GiB (default 64 MiB)
 *   HTVEND_TEST_LARGE_BLOB_BYTES=N    exact size of the large blob (overrides the above)
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DirStore } from '../../src/store/dir/index.js';
import type { BlobStore } from '../../src/store/store.js';
import { tempDir } from '../helpers/tmp.js';
import { EMPTY_DIGEST, sha256Hex, type Digest } from '../../src/util/digest.js';
import { HtvendError } from '../../src/util/errors.js';
import { putBytes, readAll } from '../helpers/store.js';
import { gcConformance } from './gc-conformance.js';

export interface ConformanceOptions {
  /**
   * Replaces the stored bytes of `digest` with `bytes` (same length, different content) behind
   * the store's back, e.g. by writing the backend's storage directly. Without it the
   * corrupt-blob test is skipped.
   */
  corrupt?: (store: BlobStore, digest: Digest, bytes: Buffer) => Promise<void>;
  /** How much heap + buffer memory the large-blob round trip may grow by (default 48 MiB). */
  memoryBudgetBytes?: number;
}

const MiB = 1024 * 1024;

/** Size of the large-blob test. */
export function largeBlobBytes(): number {
  const exact = Number(process.env.HTVEND_TEST_LARGE_BLOB_BYTES);
  if (Number.isFinite(exact) && exact > 0) return exact;
  return process.env.HTVEND_TEST_BIG === '1' ? 1024 * MiB : 64 * MiB;
}

/** Deterministic pseudo-random bytes (so a failing run can be reproduced), 1 MiB chunks. */
export function patternStream(size: number, seed = 1, onChunk?: (sent: number) => void): Readable {
  const block = Buffer.alloc(MiB);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < block.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    block.writeUInt32LE(x >>> 0, i);
  }
  let sent = 0;
  let n = 0;
  return new Readable({
    read() {
      if (sent >= size) return void this.push(null);
      const len = Math.min(block.length, size - sent);
      const chunk = Buffer.from(block.subarray(0, len)); // fresh buffer: the consumer may keep it
      if (len >= 4) chunk.writeUInt32LE(n++, 0); // not purely periodic
      sent += len;
      onChunk?.(sent);
      this.push(chunk);
    },
  });
}

/** Hashes a stream without keeping it; returns digest, size and bytes seen before an error. */
async function drain(r: Readable): Promise<{ digest: string; size: number; error?: unknown }> {
  const h = createHash('sha256');
  let size = 0;
  try {
    for await (const c of r) {
      h.update(c as Buffer);
      size += (c as Buffer).length;
    }
  } catch (error) {
    return { digest: '', size, error };
  }
  return { digest: h.digest('hex'), size };
}

function isCode(code: string) {
  return (e: unknown) => e instanceof HtvendError && e.code === code;
}

let gcFn: (() => void) | undefined;
function gc(): void {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
}
const usedMemory = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

/** Registers the conformance tests for one backend. */
export function runConformance(name: string, makeStore: (t: TestContext) => Promise<BlobStore>, opts: ConformanceOptions = {}): void {
  describe(`${name} blob store conformance`, () => {
    test('put returns the sha256; stat gives the size; get gives the bytes back', async (t) => {
      const store = await makeStore(t);
      const data = Buffer.from('hello, blob store\n');
      const d = await putBytes(store, data);
      assert.equal(d, sha256Hex(data));
      assert.deepEqual(await store.stat(d), { size: data.length });
      assert.deepEqual(await readAll(await store.get(d)), data);
    });

    test('a 0-byte blob is stored and read back', async (t) => {
      const store = await makeStore(t);
      const d = await putBytes(store, Buffer.alloc(0));
      assert.equal(d, EMPTY_DIGEST);
      assert.deepEqual(await store.stat(d), { size: 0 });
      assert.equal((await readAll(await store.get(d))).length, 0);
    });

    test('a missing blob: stat is undefined, get is NOT_FOUND', async (t) => {
      const store = await makeStore(t);
      const d = sha256Hex('never stored');
      assert.equal(await store.stat(d), undefined);
      await assert.rejects(store.get(d), isCode('NOT_FOUND'));
    });

    test(`a large blob (${largeBlobBytes() / MiB} MiB) streams in and out with flat memory`, async (t) => {
      const store = await makeStore(t);
      const size = largeBlobBytes();
      const budget = opts.memoryBudgetBytes ?? 48 * MiB;
      gc();
      const base = usedMemory();
      let peak = 0;
      let nextSample = 0;
      const sample = (sent: number) => {
        if (sent < nextSample) return;
        nextSample = sent + Math.max(8 * MiB, size / 16);
        gc();
        peak = Math.max(peak, usedMemory() - base);
      };
      const expected = await drain(patternStream(size, 7));
      const d = await putBytes(store, patternStream(size, 7, sample), { size });
      assert.equal(d, expected.digest);
      assert.deepEqual(await store.stat(d), { size });
      let read = 0;
      const counted = (await store.get(d)).on('data', (c: Buffer) => {
        read += c.length;
        sample(read);
      });
      const back = await drain(counted);
      assert.equal(back.error, undefined);
      assert.equal(back.digest, expected.digest);
      assert.equal(back.size, size);
      assert.ok(peak < budget, `memory grew by ${Math.round(peak / MiB)} MiB moving a ${size / MiB} MiB blob (budget ${budget / MiB} MiB)`);
    });

    test('concurrent puts of the same blob all succeed and leave one good copy', async (t) => {
      const store = await makeStore(t);
      const size = 3 * MiB + 17;
      const ds = await Promise.all([1, 2, 3, 4].map(() => putBytes(store, patternStream(size, 3))));
      assert.equal(new Set(ds).size, 1);
      const back = await drain(await store.get(ds[0]!));
      assert.equal(back.digest, ds[0]);
      assert.equal(back.size, size);
    });

    test('a put whose bytes do not match the expected digest is rejected and leaves nothing visible', async (t) => {
      const store = await makeStore(t);
      const data = Buffer.from('the real bytes');
      const claimed = sha256Hex('the claimed bytes');
      await assert.rejects(putBytes(store, data, { expected: claimed }), isCode('DIGEST_MISMATCH'));
      assert.equal(await store.stat(claimed), undefined);
      assert.equal(await store.stat(sha256Hex(data)), undefined);
    });

    test('an aborted put leaves nothing visible', async (t) => {
      const store = await makeStore(t);
      const data = Buffer.alloc(2 * MiB, 0x61);
      const w = await store.put();
      await new Promise<void>((resolve, reject) => w.stream.write(data.subarray(0, MiB), (e) => (e ? reject(e) : resolve())));
      await w.abort(new Error('client went away'));
      await w.abort(); // idempotent
      assert.equal(await store.stat(sha256Hex(data)), undefined);
      assert.equal(await store.stat(sha256Hex(data.subarray(0, MiB))), undefined);
    });

    test('a stored blob whose bytes went bad fails verification before the end of the stream', { skip: opts.corrupt ? false : 'no corrupt hook for this backend' }, async (t) => {
      const store = await makeStore(t);
      const size = 4 * MiB;
      const d = await putBytes(store, patternStream(size, 11));
      const bad = await readAll(patternStream(size, 12));
      await opts.corrupt!(store, d, bad);
      const seen = await drain(await store.get(d));
      assert.ok(seen.error instanceof HtvendError && seen.error.code === 'DIGEST_MISMATCH', `expected DIGEST_MISMATCH, got ${String(seen.error)}`);
      assert.match((seen.error as Error).message, new RegExp(d));
      assert.ok(seen.size < size, `consumer saw all ${seen.size} bytes of a corrupt blob`);
    });

    test('a copy from a verified get() (export: verifiedSource) is stored as is; a corrupt source leaves nothing', async (t) => {
      const store = await makeStore(t);
      const source = await DirStore.open(join(await tempDir(t), 'source'));
      // A small blob (one request) and one past the registry's chunk and S3's part size (streamed).
      for (const size of [100 * 1024, 9 * MiB + 5]) {
        const good = await putBytes(source, patternStream(size, 21));
        assert.equal(await putBytes(store, await source.get(good), { expected: good, size, verifiedSource: true }), good);
        assert.equal((await drain(await store.get(good))).digest, good);

        const bad = await putBytes(source, patternStream(size, 22));
        await writeFile(source.pathOf(bad), await readAll(patternStream(size, 23)));
        await assert.rejects(putBytes(store, await source.get(bad), { expected: bad, size, verifiedSource: true }), isCode('DIGEST_MISMATCH'));
        assert.equal(await store.stat(bad), undefined, `a corrupt ${size}-byte source left blob ${bad} in ${store.description}`);
      }
    });

    test('get honours an AbortSignal mid-stream', async (t) => {
      const store = await makeStore(t);
      const d = await putBytes(store, patternStream(8 * MiB, 5));
      const ac = new AbortController();
      const r = await store.get(d, { signal: ac.signal });
      let n = 0;
      const sink = new Writable({
        write(c: Buffer, _e, cb) {
          n += c.length;
          if (n >= MiB) ac.abort();
          cb();
        },
      });
      await assert.rejects(pipeline(r, sink), (e: unknown) => e instanceof Error && e.name === 'AbortError');
      assert.ok(n < 8 * MiB);
    });

    gcConformance(makeStore);
  });
}
