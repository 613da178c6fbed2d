/**
 * `export` between every kind of store: filesystem → registry → S3 → filesystem, with the
 * bytes checked at the end, the registry's listing manifest pushed, and a re-run copying
 * nothing. (Library level: commands/export.ts's exportBlobs with real backends.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry } from '../helpers/registry-server.js';
import { startS3Server, s3Env } from '../helpers/s3-server.js';
import { tempDir } from '../helpers/tmp.js';
import { DirStore } from '../../src/store/dir/index.js';
import { openRegistryStore } from '../../src/store/registry/index.js';
import { openS3Store } from '../../src/store/s3/index.js';
import { exportBlobs } from '../../src/commands/export.js';
import { RegistryClient } from '../../src/registry/index.js';
import { sha256Hex, type Digest } from '../../src/util/digest.js';
import type { BlobStore } from '../../src/store/store.js';
import { bigBody } from './registry-cli-helpers.js';
import { putBytes } from '../helpers/store.js';

test('export copies every blob filesystem → registry → s3 → filesystem and re-runs copy nothing', async (t) => {
  const dir = await tempDir(t);
  const source = await DirStore.open(join(dir, 'blobs'));
  const blobs = [...Array.from({ length: 24 }, (_, i) => Buffer.from(`asset number ${i}\n`.repeat(i * 50 + 1))), bigBody(11 * 1024 * 1024)];
  const assets: Record<string, { Sha256: string; Headers: Record<string, string> }> = {};
  for (const [i, b] of blobs.entries()) assets[`https://example.test/asset/${String(i).padStart(2, '0')}`] = { Sha256: await putBytes(source, b), Headers: {} };
  const manifestPath = join(dir, 'assets.json');
  await writeFile(manifestPath, JSON.stringify(assets, null, 2));

  const reg = await startRegistry(t, { auth: 'basic' });
  const registry = await openRegistryStore(`http://alice:${reg.users.alice}@${reg.host}/v2/fleet/blobs/`, { env: {} });
  t.after(() => registry.close());
  const s3 = await startS3Server(t, ['fleet']);
  const bucket = await openS3Store({ bucket: 'fleet', prefix: 'blobs/' }, { env: s3Env(s3) });
  t.after(() => bucket.close());
  const back = await DirStore.open(join(dir, 'back'));

  const retry = { attempts: 2, baseDelayMs: 10 };
  for (const [from, to] of [[source, registry], [registry, bucket], [bucket, back]] as [BlobStore, BlobStore][]) {
    const r = await exportBlobs({ manifestPath, from, to, jobs: 4, retry });
    assert.equal(r.exitCode, 0, JSON.stringify(r.failures));
    assert.equal(r.copied, blobs.length, `${from.description} → ${to.description}`);
  }
  for (const b of blobs) assert.deepEqual(await readFile(back.pathOf(sha256Hex(b))), b);

  const again = await exportBlobs({ manifestPath, from: source, to: registry, jobs: 4, retry });
  assert.equal(again.copied, 0);
  assert.equal(again.skipped, blobs.length);
  // The registry holds a tagged listing of the blobs, so its garbage collector keeps them.
  const client = await RegistryClient.open(reg.host, 'fleet/blobs', { env: {}, scheme: 'http', credentials: { username: 'alice', password: reg.users.alice! } });
  t.after(() => client.close());
  const digests = [...new Set(Object.values(assets).map((a) => a.Sha256))].sort();
  const listing = JSON.parse((await client.getManifest(`htvend-${sha256Hex(digests.join('\n')).slice(0, 24)}`)).body.toString()) as { layers: { digest: string }[] };
  assert.deepEqual(listing.layers.map((l) => l.digest.slice(7)), digests);
});

test('the CLI exports filesystem → registry → s3 → filesystem and verifies each store', async (t) => {
  const { runCli } = await import('../helpers/cli.js');
  const { NO_STDIN } = await import('./registry-cli-helpers.js');
  const dir = await tempDir(t);
  const source = await DirStore.open(join(dir, 'blobs'));
  const blobs = [Buffer.from('first asset\n'), bigBody(9 * 1024 * 1024 + 1)];
  const assets: Record<string, { Sha256: string; Headers: Record<string, string> }> = {};
  for (const [i, b] of blobs.entries()) assets[`https://example.test/${i}`] = { Sha256: await putBytes(source, b), Headers: {} };
  await writeFile(join(dir, 'assets.json'), JSON.stringify(assets, null, 2));
  const reg = await startRegistry(t, {});
  const s3 = await startS3Server(t, ['cli-bucket']);
  const env = { ...process.env, ...s3Env(s3) };
  const fsFlags = (p: string, d: string) => [`--${p}blobs-backend`, 'filesystem', `--${p}blobs-dir`, join(dir, d)];
  const regFlags = (p: string) => [`--${p}blobs-backend`, 'registry', `--${p}blobs-registry`, `http://${reg.host}/v2/cli/blobs/`];
  const s3Flags = (p: string) => [`--${p}blobs-backend`, 's3', `--${p}blobs-bucket`, 'cli-bucket', `--${p}blobs-prefix`, 'x/'];
  const htvend = async (...args: string[]) => {
    const r = await runCli('htvend', ['-C', dir, ...args], { env, stdio: NO_STDIN });
    assert.equal(r.code, 0, `htvend ${args.join(' ')}: ${r.stderr}`);
    return r.stderr;
  };
  assert.match(await htvend('export', ...fsFlags('', 'blobs'), ...regFlags('dest.'), '--jobs', '2'), /listed in OCI artifact/);
  await htvend('export', ...regFlags(''), ...s3Flags('dest.'));
  await htvend('export', ...s3Flags(''), ...fsFlags('dest.', 'back'));
  for (const flags of [regFlags(''), s3Flags(''), fsFlags('', 'back')]) assert.match(await htvend('verify', ...flags), /2 ok, 0 missing, 0 corrupt/);
  for (const b of blobs) assert.deepEqual(await readFile(join(dir, 'back', sha256Hex(b))), b);
});
