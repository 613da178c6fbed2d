/**
 * The registry store when the registry misbehaves: a fault proxy in front of a real
 * docker-registry answers chosen requests with 401/500 or cuts the connection mid-upload.
 * Every failure must name the store and the blob, leave no blob visible under its digest,
 * and close the upload session.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openUploads, startRegistry, startFaultProxy } from '../helpers/registry-server.js';
import { tempDir } from '../helpers/tmp.js';
import { openRegistryStore } from '../../src/store/registry/index.js';
import { DirStore } from '../../src/store/dir/index.js';
import { exportBlobs } from '../../src/commands/export.js';
import type { BlobStore } from '../../src/store/store.js';
import { sha256Hex, type Digest } from '../../src/util/digest.js';
import { HtvendError } from '../../src/util/errors.js';
import { bigBody } from './registry-cli-helpers.js';
import { putBytes } from '../helpers/store.js';

async function setup(t: TestContext) {
  const reg = await startRegistry(t, {});
  const proxy = await startFaultProxy(t, reg.url);
  const store = await openRegistryStore(`http://${proxy.host}/v2/team/blobs/`, { env: {} });
  t.after(() => store.close());
  const direct = await openRegistryStore(`http://${reg.host}/v2/team/blobs/`, { env: {} });
  t.after(() => direct.close());
  return { reg, proxy, store, direct };
}

test('a 500 on HEAD is a STORE error naming the registry and the blob', async (t) => {
  const { proxy, store } = await setup(t);
  proxy.add({ method: 'HEAD', path: /\/blobs\/sha256:/, status: 500 });
  const d = sha256Hex('x');
  await assert.rejects(store.stat(d), (e: HtvendError) => e.code === 'STORE' && e.message.includes(`registry ${proxy.host} repository team/blobs`) && e.message.includes(`sha256:${d}`) && e.message.includes('HTTP 500'));
});

test('a connection cut mid-PATCH fails the put naming the blob, shows nothing, and deletes the session', async (t) => {
  const { proxy, store, direct } = await setup(t);
  const data = bigBody(20 * 1024 * 1024);
  const d = sha256Hex(data);
  proxy.add({ method: 'PATCH', path: /\/blobs\/uploads\//, dropAfterBytes: 3 * 1024 * 1024, times: 1 });
  await assert.rejects(putBytes(store, data, { expected: d, size: data.length }), (e: HtvendError) => {
    assert.equal(e.code, 'STORE');
    assert.match(e.message, new RegExp(`team/blobs.*blob sha256:${d}`));
    return true;
  });
  assert.equal(await direct.stat(d), undefined);
  // The session is DELETEd. (distribution 2.8 then answers 404 BLOB_UPLOAD_INVALID and keeps
  // the partial data: its signed _state no longer matches the bytes it got before the cut, so
  // only its upload purger removes it. Newer registries delete by session id.)
  assert.ok(proxy.requests.some((r) => r.startsWith('DELETE /v2/team/blobs/blobs/uploads/')), proxy.requests.join('\n'));
  // The store is still usable afterwards.
  assert.equal(await putBytes(store, data, { expected: d, size: data.length }), d);
});

test('a 500 on the closing PUT fails the commit, shows nothing, and deletes the session', async (t) => {
  const { reg, proxy, store, direct } = await setup(t);
  const data = bigBody(9 * 1024 * 1024);
  const d = sha256Hex(data);
  proxy.add({ method: 'PUT', path: /\/blobs\/uploads\/.*digest=/, status: 500 });
  await assert.rejects(putBytes(store, data, { size: data.length }), (e: HtvendError) => e.code === 'STORE' && e.message.includes(`sha256:${d}`) && e.message.includes('HTTP 500'));
  assert.equal(await direct.stat(d), undefined);
  assert.deepEqual(await openUploads(reg, 'team/blobs'), []);
});

test('a 401 without a challenge is an authentication error naming the registry', async (t) => {
  const { proxy, store } = await setup(t);
  proxy.add({ path: /./, status: 401 });
  await assert.rejects(store.stat(sha256Hex('y')), (e: HtvendError) => e.code === 'STORE' && e.message.includes(proxy.host) && e.message.includes('authentication required'));
});

test('export retries a blob whose upload hit transient 500s and then completes', async (t) => {
  const { proxy, store, direct } = await setup(t);
  const dir = await tempDir(t);
  const source = await DirStore.open(join(dir, 'blobs'));
  const blobs = [Buffer.from('one'), Buffer.from('two'), bigBody(100_000)];
  const assets: Record<string, { Sha256: string; Headers: Record<string, string> }> = {};
  for (const [i, b] of blobs.entries()) assets[`https://example.test/${i}`] = { Sha256: await putBytes(source, b, { size: b.length }), Headers: {} };
  await writeFile(join(dir, 'assets.json'), JSON.stringify(assets));
  proxy.add({ method: 'PUT', path: /\/blobs\/uploads\//, status: 500, times: 2 });
  const r = await exportBlobs({ manifestPath: join(dir, 'assets.json'), from: source, to: store, jobs: 1, retry: { attempts: 4, baseDelayMs: 5 } });
  assert.equal(r.exitCode, 0, JSON.stringify(r.failures));
  assert.equal(r.copied, 3);
  for (const b of blobs) assert.ok(await direct.stat(sha256Hex(b)));
});

test('first contact with a body learns the auth challenge from GET /v2/ first: the upload is sent once, with its token', async (t) => {
  const reg = await startRegistry(t, { auth: 'token' });
  const proxy = await startFaultProxy(t, reg.url);
  const [user, pass] = Object.entries(reg.users)[0]!;
  const store = await openRegistryStore(`http://${user}:${pass}@${proxy.host}/v2/team/blobs/`, { env: {} });
  t.after(() => store.close());
  // Four concurrent first uploads: a 401 to a body may reach the client as a reset connection.
  const blobs = [1, 2, 3, 4].map((i) => Buffer.alloc(3 * 1024 * 1024, i));
  const ds = await Promise.all(blobs.map((b) => putBytes(store, b)));
  assert.deepEqual(ds, blobs.map((b) => sha256Hex(b)));
  assert.equal(proxy.requests[0], 'GET /v2/', proxy.requests.join('\n'));
  assert.equal(proxy.requests.filter((r) => r === 'GET /v2/').length, 1, 'one probe for concurrent first requests');
  assert.equal(proxy.requests.filter((r) => r.startsWith('POST /v2/team/blobs/blobs/uploads/')).length, 4, `each upload sent once:\n${proxy.requests.join('\n')}`);
});
