/**
 * Registry back-pressure (SPEC §11): a faulting front to a real docker-registry answers 429
 * and 503 with Retry-After (delay-seconds and HTTP-date); pulls and pushes wait and retry,
 * a bounded number of times, and a limit that lasts too long fails at once with a clear
 * message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFaultProxy, startRegistry } from '../helpers/registry-server.js';
import { RegistryClient, MEDIA_TYPES, EMPTY_JSON } from '../../src/registry/index.js';
import { retryDelayMs } from '../../src/registry/backoff.js';
import { sha256Hex } from '../../src/util/digest.js';
import { HtvendError } from '../../src/util/errors.js';
import { createLogger } from '../../src/util/log.js';

async function front(t: Parameters<typeof startRegistry>[0]) {
  const reg = await startRegistry(t);
  const proxy = await startFaultProxy(t, reg.url);
  const warnings: string[] = [];
  const log = { ...createLogger('warn', 'test'), warn: (m: string) => void warnings.push(m) };
  const client = await RegistryClient.open(proxy.host, 'lib/app', { env: {}, scheme: 'http', log });
  t.after(() => client.close());
  return { proxy, client, warnings };
}

test('Retry-After is read as delay-seconds or an HTTP-date, and a too-long wait is refused', () => {
  const now = Date.parse('Tue, 01 Dec 2026 10:00:00 GMT');
  assert.equal(retryDelayMs('3', 1, now), 3000);
  assert.equal(retryDelayMs('Tue, 01 Dec 2026 10:00:02 GMT', 1, now), 2000);
  assert.equal(retryDelayMs('Tue, 01 Dec 2026 09:00:00 GMT', 1, now), 0);
  assert.equal(retryDelayMs(undefined, 3, now), 4000, 'no header: exponential from 1 s');
  assert.equal(retryDelayMs('garbage', 1, now), 1000);
  assert.equal(retryDelayMs('21600', 1, now), undefined, "Docker Hub's six hours are not waited for");
});

test('a pull retries 429 honouring Retry-After (seconds), then succeeds', async (t) => {
  const { proxy, client, warnings } = await front(t);
  const config = Buffer.from(EMPTY_JSON.bytes);
  await client.putBlob(config);
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: { mediaType: MEDIA_TYPES.ociConfig, digest: `sha256:${sha256Hex(config)}`, size: config.length }, layers: [] });
  await client.putManifest('v1', manifest, MEDIA_TYPES.ociManifest);
  proxy.add({ method: 'GET', path: /\/manifests\/v1$/, status: 429, headers: { 'retry-after': '1' }, times: 2 });
  const t0 = Date.now();
  const got = await client.getManifest('v1');
  assert.ok(Date.now() - t0 >= 1900, `waited ${Date.now() - t0} ms`);
  assert.equal(got.body.toString(), manifest);
  assert.equal(proxy.requests.filter((r) => r === 'GET /v2/lib/app/manifests/v1').length, 3);
  assert.equal(warnings.length, 2);
  assert.match(warnings[0]!, /GET http:\/\/127\.0\.0\.1:\d+\/v2\/lib\/app\/manifests\/v1: HTTP 429 \(too many requests\), retrying in 1\.0s \(attempt 2 of 5\)/);
});

test('a push retries 503 honouring Retry-After (HTTP-date), then succeeds', async (t) => {
  const { proxy, client, warnings } = await front(t);
  proxy.add({ method: 'POST', path: /\/blobs\/uploads\//, status: 503, headers: () => ({ 'retry-after': new Date(Date.now() + 1500).toUTCString() }), times: 1 });
  const data = Buffer.from('pushed after a 503');
  const r = await client.putBlob(data);
  assert.equal(r.digest, sha256Hex(data));
  assert.deepEqual(await client.statBlob(r.digest), { size: data.length });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /HTTP 503 \(service unavailable\), retrying in/);
});

test('retries are bounded, and a Retry-After of hours fails at once, both with a clear message', async (t) => {
  const { proxy, client } = await front(t);
  proxy.add({ method: 'GET', path: /\/manifests\/busy$/, status: 503, headers: { 'retry-after': '0' } });
  await assert.rejects(client.getManifest('busy'), (e: HtvendError) => {
    assert.match(e.message, /GET http:\/\/127\.0\.0\.1:\d+\/v2\/lib\/app\/manifests\/busy: HTTP 503 \(service unavailable\): gave up after 5 attempt\(s\)/);
    return true;
  });
  assert.equal(proxy.requests.filter((r) => r.endsWith('/manifests/busy')).length, 5);
  proxy.add({ method: 'GET', path: /\/manifests\/limited$/, status: 429, headers: { 'retry-after': '21600' } });
  const t0 = Date.now();
  await assert.rejects(client.getManifest('limited'), (e: HtvendError) => {
    assert.match(e.message, /HTTP 429 \(too many requests\): the registry asks to wait longer than 60s \(Retry-After: 21600\)/);
    assert.match(e.hint ?? '', /rate-limits/);
    return true;
  });
  assert.ok(Date.now() - t0 < 5000);
});
