import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { openStore } from '../../src/store/open.js';
import { DirStore } from '../../src/store/dir/index.js';
import { exportBlobs } from '../../src/commands/export.js';
import { verify } from '../../src/commands/verify.js';
import { encodeAssets } from '../../src/manifest/codec.js';
import { sha256Hex } from '../../src/util/digest.js';
import { HtvendError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/log.js';
import type { AssetEntry } from '../../src/manifest/types.js';
import { startRegistry } from '../helpers/registry-server.js';
import { startS3Server, s3Env } from '../helpers/s3-server.js';
import { tempDir } from '../helpers/tmp.js';

const usage = (re: RegExp) => (e: unknown) => e instanceof HtvendError && e.code === 'USAGE' && re.test(e.message);

test('filesystem: --blobs-dir is used, and without it the XDG default directory is created', async (t) => {
  const dir = await tempDir(t);
  const explicit = await openStore({ backend: 'filesystem', dir: join(dir, 'mine') });
  assert.ok(explicit instanceof DirStore && explicit.dir === join(dir, 'mine'));
  const byDefault = await openStore({ backend: 'filesystem' }, { env: { XDG_DATA_HOME: join(dir, 'xdg') } });
  assert.equal((byDefault as DirStore).dir, join(dir, 'xdg', 'htvend', 'cache', 'blobs'));
  assert.deepEqual(await readdir(join(dir, 'xdg', 'htvend', 'cache')), ['blobs']);
});

test('missing backend settings are USAGE errors naming the flag', async () => {
  await assert.rejects(openStore({ backend: 'registry' }), usage(/--blobs-registry is required/));
  await assert.rejects(openStore({ backend: 's3' }, {}, '--dest.'), usage(/--dest\.blobs-bucket is required/));
  await assert.rejects(openStore({ backend: 'ftp' as never }), usage(/--blobs-backend "ftp"/));
});

async function manifestWithBlobs(dir: string, bodies: string[]) {
  const src = await DirStore.open(join(dir, 'blobs'));
  const entries = new Map<string, AssetEntry>();
  for (const [i, b] of bodies.entries()) {
    const w = await src.put();
    await pipeline(Readable.from([Buffer.from(b)]), w.stream);
    entries.set(`https://x/${i}`, { Sha256: await w.commit(), Headers: {} });
  }
  const manifestPath = join(dir, 'assets.json');
  await writeFile(manifestPath, encodeAssets(entries));
  return { src, manifestPath };
}

test('export to a registry opened from flags, then verify against it', async (t) => {
  const dir = await tempDir(t);
  const { src, manifestPath } = await manifestWithBlobs(dir, ['one', 'two', '']);
  const reg = await startRegistry(t, {});
  const to = await openStore({ backend: 'registry', registry: `http://${reg.host}/v2/htvend/blobs/` }, { env: {}, log: silentLogger });
  t.after(() => to.close?.());
  const r = await exportBlobs({ manifestPath, from: src, to, log: silentLogger, progress: false });
  assert.equal(r.exitCode, 0);
  assert.equal(r.copied, 3);
  assert.equal(r.finalized, true, 'the registry store pins the exported blobs with an artifact manifest');
  const v = await verify({ manifestPath, store: to, log: silentLogger, progress: false });
  assert.deepEqual([v.exitCode, v.ok], [0, 3]);
});

test('export to S3 opened from flags, then verify against it', async (t) => {
  const dir = await tempDir(t);
  const { src, manifestPath } = await manifestWithBlobs(dir, ['alpha', 'beta']);
  const server = await startS3Server(t, ['exports']);
  const to = await openStore({ backend: 's3', bucket: 'exports', prefix: 'b/' }, { env: s3Env(server), log: silentLogger });
  server.beforeStop(async () => to.close?.());
  const r = await exportBlobs({ manifestPath, from: src, to, log: silentLogger, progress: false });
  assert.deepEqual([r.exitCode, r.copied], [0, 2]);
  const again = await exportBlobs({ manifestPath, from: src, to, log: silentLogger, progress: false });
  assert.deepEqual([again.copied, again.skipped], [0, 2]);
  const v = await verify({ manifestPath, store: to, log: silentLogger, progress: false });
  assert.deepEqual([v.exitCode, v.ok], [0, 2]);
  assert.equal(await to.stat(sha256Hex('alpha')).then((s) => s?.size), 5);
});
