import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Puller } from '../../../src/builder/pull/pull.js';
import { HtvendError } from '../../../src/util/errors.js';
import { silentLogger } from '../../../src/util/log.js';
import { startBusyboxRegistry } from '../../helpers/busybox-image.js';
import { startFaultProxy } from '../../helpers/registry-server.js';
import { tempDir } from '../../helpers/tmp.js';

test('stages sharing a base image share one pull: one manifest request, each blob once; a failed pull is retried', async (t) => {
  const bb = await startBusyboxRegistry(t);
  const proxy = await startFaultProxy(t, bb.registry.url);
  const blobDir = join(await tempDir(t), 'blobs');
  const puller = new Puller({ env: {}, tlsVerify: false, blobDir, log: silentLogger });
  t.after(() => puller.close());
  const ref = `${proxy.host}/busybox:latest`;
  const amd64 = { os: 'linux', architecture: 'amd64' };

  // Two stages at once and a third later, as a multi-stage Dockerfile does.
  const [a, b] = await Promise.all([puller.pull(ref, amd64, 'Dockerfile:1'), puller.pull(ref, amd64, 'Dockerfile:3')]);
  const c = await puller.pull(ref, amd64, 'Dockerfile:5');
  assert.equal(a, b);
  assert.equal(a, c);
  assert.ok(a.layers.length > 0);
  const manifestGets = proxy.requests.filter((r) => /^GET \/v2\/busybox\/manifests\//.test(r));
  assert.deepEqual(manifestGets, ['GET /v2/busybox/manifests/latest']);
  const blobGets = proxy.requests.filter((r) => /^GET \/v2\/busybox\/blobs\//.test(r));
  assert.equal(blobGets.length, new Set(blobGets).size, `a blob was fetched twice: ${blobGets.join(', ')}`);
  assert.equal(blobGets.length, a.layers.length + 1, 'config + layers');
  assert.deepEqual((await readdir(blobDir)).sort(), [...a.layers.map((l) => l.digest), ...blobGets.map((r) => r.split('sha256:')[1]!)].filter((v, i, all) => all.indexOf(v) === i).sort());

  // A pull that failed is not remembered: the next stage asks again.
  const other = `${proxy.host}/busybox:other`;
  proxy.add({ method: 'GET', path: /\/manifests\/other$/, status: 500, times: 1 });
  await assert.rejects(puller.pull(other, amd64, 'Dockerfile:7'), /Dockerfile:7: pulling/);
  await assert.rejects(puller.pull(other, amd64, 'Dockerfile:9'), /Dockerfile:9: pulling/);
  assert.equal(proxy.requests.filter((r) => r.startsWith('GET /v2/busybox/manifests/other')).length, 2);
});

test('issue 9: a base image without a manifest for the target platform is refused, naming the image and what it offers', async (t) => {
  const bb = await startBusyboxRegistry(t); // one linux/amd64 manifest, no index
  const puller = new Puller({ env: {}, tlsVerify: false, blobDir: join(await tempDir(t), 'blobs'), log: silentLogger });
  t.after(() => puller.close());
  await assert.rejects(puller.pull(bb.ref, { os: 'linux', architecture: 'arm64' }, 'Dockerfile:1'), (e: unknown) => {
    assert.ok(e instanceof HtvendError, String(e));
    assert.equal(e.message, `Dockerfile:1: pulling ${bb.ref}: no manifest for platform linux/arm64: the image is linux/amd64 only (a single-platform manifest, not an index)`);
    assert.match(e.hint ?? '', /--platform linux\/amd64/);
    return true;
  });
  assert.ok((await puller.pull(bb.ref, { os: 'linux', architecture: 'amd64' }, 'Dockerfile:1')).layers.length > 0);
});
