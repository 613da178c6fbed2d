/**
 * The local store's temp files (src/builder/cache/store.ts): every write goes through v1/tmp/
 * and a failed write leaves nothing there. The failure is injected with the real filesystem:
 * a blob's stamp path (`<digest>.ok`) made a non-empty directory, so the stamp's rename fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CacheStore, type CacheEntry } from '../../../src/builder/cache/store.js';
import { createLogger } from '../../../src/util/log.js';
import type { Digest } from '../../../src/util/digest.js';
import { tempDir } from '../../helpers/tmp.js';

async function fixture(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t, 'htvend-store-');
  const logs: string[] = [];
  const store = new CacheStore(join(dir, 'cache'), createLogger('debug', 'test', (l) => void logs.push(l)), 1 << 30);
  const bytes = randomBytes(4096);
  const layerPath = join(dir, 'layer.tar.gz');
  await writeFile(layerPath, bytes);
  const digest = createHash('sha256').update(bytes).digest('hex') as Digest;
  const key = createHash('sha256').update('a step').digest('hex');
  const entry: CacheEntry = {
    version: 1, key, kind: 'RUN', text: 'RUN true', created: new Date(0).toISOString(), assets: [], other: [],
    layer: { digest, diffId: digest, size: bytes.length, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' },
  };
  const tmpFiles = () => readdir(join(dir, 'cache', 'v1', 'tmp')).catch(() => [] as string[]);
  const stamp = store.blobPath(digest) + '.ok';
  /** Makes the stamp path a non-empty directory: renaming a file onto it fails (EISDIR). */
  const blockStamp = async () => {
    await mkdir(join(stamp, 'blocker'), { recursive: true });
  };
  return { dir, store, entry, layerPath, digest, key, tmpFiles, stamp, blockStamp, logs };
}

test('a stamp that cannot be written leaves no temp file, and the entry is still stored and served', async (t) => {
  const f = await fixture(t);
  await f.blockStamp();
  assert.equal(await f.store.put(f.entry, f.layerPath), true, f.logs.join('\n'));
  assert.deepEqual(await f.tmpFiles(), [], 'the stamp\'s temp file was removed');
  assert.match(f.logs.join('\n'), /no stamp for blob sha256:[0-9a-f]{12} .*it is hashed on its first use/);
  // Used without a stamp: the blob is hashed, the stamp fails again, still nothing left in tmp/.
  const hit = await f.store.get(f.key, f.dir);
  assert.ok(hit?.layer, 'served from the cache');
  assert.deepEqual(await readFile(hit.layer.path), await readFile(f.layerPath));
  assert.deepEqual(await f.tmpFiles(), []);
  // Once the stamp can be written, it is.
  await rm(f.stamp, { recursive: true });
  assert.ok(await f.store.get(f.key, f.dir));
  assert.deepEqual(Object.keys(JSON.parse(await readFile(f.stamp, 'utf8'))).sort(), ['ino', 'mtimeNs', 'size']);
  assert.deepEqual(await f.tmpFiles(), []);
});

test('an entry that cannot be written leaves no temp file and no entry', async (t) => {
  const f = await fixture(t);
  // The entry path a non-empty directory: the entry's rename fails after its temp file was written.
  await mkdir(join(f.dir, 'cache', 'v1', 'entries', `${f.key}.json`, 'blocker'), { recursive: true });
  assert.equal(await f.store.put(f.entry, f.layerPath), false);
  assert.match(f.logs.join('\n'), /could not store the step/);
  assert.deepEqual(await f.tmpFiles(), []);
  assert.equal(await f.store.get(f.key, f.dir), undefined);
});
