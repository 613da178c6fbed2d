import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../../src/util/digest.js';
import { sendBody, redirect } from '../helpers/https-upstream.js';
import { startBench, curl } from './harness.js';
import { run } from '../helpers/cli.js';

test('records an HTTPS GET through CONNECT and replays it offline without upstream', async (t) => {
  const b = await startBench(t);
  const data = randomBytes(300_000);
  b.up.route('/pkg.tgz', sendBody(data, { 'content-type': 'application/x-tar', 'x-checksum-sha1': 'abc', etag: '"e1"' }));
  const url = b.up.https + '/pkg.tgz';

  const first = await b.get(url);
  assert.equal(first.status, 200);
  assert.ok(first.body.equals(data));
  const entry = await b.entry(url);
  assert.deepEqual(entry, {
    Sha256: sha256Hex(data),
    // ETag is recorded whatever --cache-header says (for htvend outdated), but not replayed.
    Headers: { 'Content-Length': String(data.length), 'Content-Type': 'application/x-tar', Etag: '"e1"', 'X-Checksum-Sha1': 'abc' },
  });
  assert.ok(b.store.blobs.get(sha256Hex(data))!.equals(data));
  assert.equal(b.proxy.counters().htvend_recorded_total, 1);

  await b.up.close();
  await b.proxy.close();
  await b.restart({ mode: 'offline', upstream: undefined });
  const again = await b.get(url);
  assert.equal(again.status, 200);
  assert.ok(again.body.equals(data));
  assert.equal(again.headers['content-length'], String(data.length));
  assert.equal(again.headers['content-type'], 'application/x-tar');
  assert.equal(again.headers['etag'], undefined, 'only recorded headers are replayed, and never the validators');
  assert.equal(b.proxy.counters().htvend_replayed_total, 1);
});

test('records a plain HTTP absolute-form GET, then replays it in build mode without a second fetch', async (t) => {
  const b = await startBench(t);
  b.up.route('/dists/Release', sendBody('Origin: Debian\n', { 'content-type': 'text/plain' }, { chunked: true }));
  const url = b.up.http + '/dists/Release';
  const r1 = await b.get(url);
  assert.equal(r1.status, 200);
  assert.equal(r1.body.toString(), 'Origin: Debian\n');
  await b.entry(url);
  const r2 = await b.get(url);
  assert.equal(r2.body.toString(), 'Origin: Debian\n');
  assert.equal(r2.headers['content-length'], '15', 'replay sets Content-Length from the blob');
  assert.equal(b.up.hits('/dists/Release'), 1);
  assert.deepEqual(b.assets.puts, [url, url], 'reuse is reported to the manifest too');
});

test('curl through the proxy gets the recorded bytes over HTTPS with the proxy CA', async (t) => {
  const b = await startBench(t);
  b.up.route('/file.txt', sendBody('hello from upstream\n', { 'content-type': 'text/plain' }));
  const r = await curl(b, b.up.https + '/file.txt');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'hello from upstream\n');
  const again = await curl(b, b.up.https + '/file.txt');
  assert.equal(again.body, 'hello from upstream\n');
  assert.equal(again.headers['content-length'], '20');
  assert.equal(b.up.hits('/file.txt'), 1);
});

test('never records Authorization, Cookie or Set-Cookie, even when listed as cache headers', async (t) => {
  const b = await startBench(t, { cacheHeaders: ['content-type', 'Set-Cookie', 'authorization', 'x-checksum-sha1'] });
  b.up.route('/private', sendBody('secret data', { 'set-cookie': 'session=1', 'content-type': 'text/plain', 'X-Checksum-SHA1': 'f00' }));
  const r = await b.get(b.up.https + '/private', { headers: { authorization: 'Bearer abc', cookie: 'a=b' } });
  assert.equal(r.status, 200);
  assert.equal(b.up.lastHeaders('/private')?.authorization, 'Bearer abc', 'credentials still reach upstream');
  assert.deepEqual((await b.entry(b.up.https + '/private')).Headers, { 'Content-Type': 'text/plain', 'X-Checksum-Sha1': 'f00' });
});

test('follows redirects upstream: the client gets the final 200 and the entry is keyed by the requested URL', async (t) => {
  const b = await startBench(t);
  b.up.route('/download/latest', redirect('/cdn/signed?sig=xyz', 302));
  b.up.route('/cdn/signed', sendBody('artifact'));
  const url = b.up.https + '/download/latest';
  const r = await b.get(url);
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'artifact');
  await b.entry(url);
  assert.deepEqual([...b.assets.entries.keys()], [url]);
});

test('non-200 responses pass through unrecorded', async (t) => {
  const b = await startBench(t);
  b.up.route('/gone', sendBody('not here', { 'content-type': 'text/plain' }, { status: 404 }));
  const r = await b.get(b.up.https + '/gone');
  assert.equal(r.status, 404);
  assert.equal(r.body.toString(), 'not here');
  assert.equal(b.assets.entries.size, 0);
  assert.equal(b.store.puts, 0);
});

test('an entry whose blob is missing from the store is fetched again in build mode', async (t) => {
  const b = await startBench(t);
  b.up.route('/a', sendBody('AAAA'));
  const url = b.up.https + '/a';
  await b.get(url);
  await b.entry(url);
  b.store.blobs.clear();
  const r = await b.get(url);
  assert.equal(r.body.toString(), 'AAAA');
  assert.equal(b.up.hits('/a'), 2);
  assert.equal(b.store.blobs.size, 1);
});

test('--force-refresh re-fetches entries of the previous manifest but replays this run\'s', async (t) => {
  const b = await startBench(t);
  b.up.route('/v', sendBody('new'));
  const url = b.up.https + '/v';
  const old = await b.store.add('old');
  b.assets.entries.set(url, { Sha256: old, Headers: {} });
  await b.proxy.close();
  await b.restart({ forceRefresh: true });
  assert.equal((await b.get(url)).body.toString(), 'new');
  assert.equal((await b.get(url)).body.toString(), 'new');
  assert.equal(b.up.hits('/v'), 1);
});

test('other methods pass through upstream unrecorded in build mode', async (t) => {
  const b = await startBench(t);
  b.up.route('/api', (req, res) => {
    let body = '';
    req.on('data', (c) => (body += c)).on('end', () => res.writeHead(201, { 'content-type': 'text/plain' }).end(`got ${req.method} ${body}`));
  });
  const r = await b.get(b.up.https + '/api', { method: 'POST', body: 'payload', headers: { 'content-type': 'text/plain' } });
  assert.equal(r.status, 201);
  assert.equal(r.body.toString(), 'got POST payload');
  assert.equal(b.assets.entries.size, 0);
  const plain = await b.get(b.up.http + '/api', { method: 'PUT', body: 'x', headers: { 'content-length': '1' } });
  assert.equal(plain.body.toString(), 'got PUT x');
});

test('--no-cache-response URLs pass through and are never recorded nor looked up', async (t) => {
  const b = await startBench(t);
  let n = 0;
  b.up.route('/v2/', (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(`{"n":${++n}}`));
  const url = b.up.https + '/v2/';
  const stale = await b.store.add('stale');
  b.assets.entries.set(url, { Sha256: stale, Headers: {} });
  assert.equal((await b.get(url)).body.toString(), '{"n":1}');
  assert.equal((await b.get(url)).body.toString(), '{"n":2}');
  assert.deepEqual(b.assets.puts, []);
});

test('requests that are not proxy requests get a 400', async (t) => {
  const b = await startBench(t);
  const res = await fetch(b.proxy.url + '/hello');
  assert.equal(res.status, 400);
  assert.match(await res.text(), /is a proxy/);
});

test('keeps connections alive on both sides: one tunnel from curl, one upstream connection', async (t) => {
  const b = await startBench(t);
  for (const p of ['/k1', '/k2', '/k3']) b.up.route(p, sendBody(`body of ${p}`));
  const urls = ['/k1', '/k2', '/k3'].map((p) => b.up.https + p);
  const r = await run(['curl', '-sSv', '-x', b.proxy.url, '--cacert', b.caFile, ...urls], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'body of /k1body of /k2body of /k3');
  assert.equal((r.stderr.match(/^> CONNECT /gm) ?? []).length, 1, 'one CONNECT for three requests');
  assert.equal(b.up.connections(), 1, 'the upstream connection was reused');
});

test('a large chunked body is recorded and passed on byte-exact in 1 MiB batches (odd piece sizes, one piece over a batch)', async (t) => {
  const b = await startBench(t);
  const data = randomBytes(6 * 1024 * 1024 + 12345);
  b.up.route('/big.bin', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' }); // no length: chunked, so the batcher is used
    const sizes = [1, 16384, 1_500_000, 70_000, 3];
    let off = 0;
    for (let i = 0; off < data.length; i++) {
      const n = Math.min(sizes[i % sizes.length]!, data.length - off);
      res.write(data.subarray(off, off + n));
      off += n;
    }
    res.end();
  });
  const url = b.up.https + '/big.bin';
  const r = await b.get(url);
  assert.equal(r.status, 200);
  assert.ok(r.body.equals(data), 'the client got the upstream bytes');
  const entry = await b.entry(url);
  assert.equal(entry.Sha256, sha256Hex(data));
  assert.ok(b.store.blobs.get(sha256Hex(data))!.equals(data), 'the store got the same bytes');
});
