import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirStore, resolveBlobsDir } from '../../src/store/dir/index.js';
import { canDelete, canReadRange } from '../../src/store/store.js';
import { sha256Hex } from '../../src/util/digest.js';
import { HtvendError } from '../../src/util/errors.js';
import { tempDir } from '../helpers/tmp.js';
import { runConformance } from './conformance.js';
import { putBytes, readAll } from '../helpers/store.js';

runConformance(
  'filesystem',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'htvend-test-'));
    const store = await DirStore.open(join(dir, 'blobs'));
    // After every test: no temp file left behind, only digest-named files.
    t.after(async () => {
      try {
        for (const name of await readdir(join(dir, 'blobs'))) assert.match(name, /^[0-9a-f]{64}$/, `left-over file ${name}`);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
    return store;
  },
  { corrupt: async (store, digest, bytes) => writeFile((store as DirStore).pathOf(digest), bytes) },
);

test('blobs are flat <dir>/<sha256 hex> files with the raw bytes, private like the Go tool makes them', async (t) => {
  const dir = await tempDir(t);
  const store = await DirStore.open(dir);
  const d = await putBytes(store, Buffer.from('abc'));
  assert.deepEqual(await readdir(dir), [d]);
  assert.equal(await readFile(join(dir, d), 'utf8'), 'abc');
  assert.equal((await stat(join(dir, d))).mode & 0o777, 0o600);
});

test('a blob written by the Go tool into the shared directory is served and verified', async (t) => {
  const dir = await tempDir(t);
  const data = Buffer.from('written by go');
  await writeFile(join(dir, sha256Hex(data)), data, { mode: 0o600 });
  const store = await DirStore.open(dir);
  const chunks: Buffer[] = [];
  for await (const c of await store.get(sha256Hex(data))) chunks.push(c as Buffer);
  assert.deepEqual(Buffer.concat(chunks), data);
});

test('a put over a truncated copy replaces it; a complete copy is kept', async (t) => {
  const dir = await tempDir(t);
  const store = await DirStore.open(dir);
  const data = Buffer.from('complete content');
  const d = sha256Hex(data);
  await writeFile(join(dir, d), 'compl');
  await putBytes(store, data);
  assert.equal(await readFile(join(dir, d), 'utf8'), 'complete content');
  const before = await stat(join(dir, d));
  await putBytes(store, data);
  assert.equal((await stat(join(dir, d))).ino, before.ino);
});

test('getRange reads an inclusive slice; delete removes the blob', async (t) => {
  const dir = await tempDir(t);
  const store = await DirStore.open(dir);
  assert.ok(canReadRange(store) && canDelete(store));
  const d = await putBytes(store, Buffer.from('0123456789'));
  const chunks: Buffer[] = [];
  for await (const c of await store.getRange(d, 2, 5)) chunks.push(c as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), '2345');
  await store.delete(d);
  assert.equal(await store.stat(d), undefined);
  await store.delete(d); // deleting a missing blob is fine
});

test('an unusable blob directory is a STORE error naming it', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'not-a-dir');
  await writeFile(file, '');
  await assert.rejects(DirStore.open(file), (e: unknown) => e instanceof HtvendError && e.code === 'STORE' && e.message.includes(file));
  await assert.rejects(DirStore.open(join(file, 'sub')), (e: unknown) => e instanceof HtvendError && e.code === 'STORE' && e.message.includes(join(file, 'sub')));
  await assert.rejects(DirStore.open(join(dir, 'missing'), { create: false }), (e: unknown) => e instanceof HtvendError && e.code === 'STORE');
});

test('the default blob directory follows XDG_DATA_HOME like the Go tool', () => {
  assert.equal(resolveBlobsDir(undefined, { XDG_DATA_HOME: '/x/data', HOME: '/home/u' }), '/x/data/htvend/cache/blobs');
  assert.equal(resolveBlobsDir(undefined, { HOME: '/home/u' }), '/home/u/.local/share/htvend/cache/blobs');
  assert.equal(resolveBlobsDir('${XDG_DATA_HOME}/htvend/cache/blobs', { HOME: '/home/u' }), '/home/u/.local/share/htvend/cache/blobs');
  assert.equal(resolveBlobsDir('/abs/blobs', {}), '/abs/blobs');
});

test('a small blob is verified once, then served from memory; a corrupt one is refused and not kept; delete() forgets it', async (t) => {
  const dir = await tempDir(t);
  const store = await DirStore.open(dir);
  const good = Buffer.from('small and verified');
  const d = await putBytes(store, good);
  assert.deepEqual(await readAll(await store.get(d)), good);
  // The verified copy answers without the file (no I/O per request for small blobs)...
  await rm(join(dir, d));
  assert.deepEqual(await store.stat(d), { size: good.length });
  assert.deepEqual(await readAll(await store.get(d)), good);
  // ...until delete() (verify --repair) drops it.
  await store.delete(d);
  assert.equal(await store.stat(d), undefined);
  await assert.rejects(store.get(d), (e: unknown) => e instanceof HtvendError && e.code === 'NOT_FOUND');

  // A corrupt small blob fails with no byte delivered, and is never cached.
  const other = Buffer.from('the real small bytes');
  const od = sha256Hex(other);
  await writeFile(join(dir, od), 'the fake small bytes', { mode: 0o600 });
  const seen: Buffer[] = [];
  await assert.rejects(
    (async () => {
      for await (const c of await store.get(od)) seen.push(c as Buffer);
    })(),
    (e: unknown) => e instanceof HtvendError && e.code === 'DIGEST_MISMATCH' && e.message.includes(od),
  );
  assert.equal(seen.length, 0);
  await writeFile(join(dir, od), other);
  assert.deepEqual(await readAll(await store.get(od)), other);
});

test('writes hash on the main thread (small, known size) or the worker (large or unknown size): same digests, mismatches caught, aborts leave nothing', async (t) => {
  const store = await DirStore.open(join(await tempDir(t), 'blobs'));
  const MiB = 1024 * 1024;
  const big = Buffer.alloc(5 * MiB + 3, 0x5a);
  const small = Buffer.from('a few bytes');
  // Known size below the threshold (main thread), unknown size (worker), known large size (worker).
  assert.equal(await putBytes(store, small, { size: small.length }), sha256Hex(small));
  assert.equal(await putBytes(store, small), sha256Hex(small));
  assert.equal(await putBytes(store, big, { size: big.length }), sha256Hex(big));
  // Many small writes through the worker, in writev batches.
  const w = await store.put();
  for (let i = 0; i < big.length; i += 4096) w.stream.write(big.subarray(i, i + 4096));
  await new Promise<void>((resolve, reject) => w.stream.end((e?: Error | null) => (e ? reject(e) : resolve())));
  assert.equal(await w.commit(), sha256Hex(big));
  const claimed = sha256Hex('something else');
  await assert.rejects(putBytes(store, big, { size: big.length, expected: claimed }), (e: unknown) => e instanceof HtvendError && e.code === 'DIGEST_MISMATCH');
  const cut = await store.put({ size: big.length });
  cut.stream.write(big.subarray(0, 2 * MiB));
  await cut.abort(new Error('client went away'));
  assert.deepEqual((await readdir(store.dir)).sort(), [sha256Hex(big), sha256Hex(small)].sort());
});
