import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync, brotliCompressSync, deflateSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../../src/util/digest.js';
import { sendBody, sendGzip, bearerProtected, tokenEndpoint } from '../helpers/https-upstream.js';
import { startBench, curl } from './harness.js';

test('an unrecorded HEAD is recorded with a GET and answered with headers only', async (t) => {
  const b = await startBench(t);
  b.up.route('/h', sendBody('0123456789', { 'content-type': 'text/plain' }));
  const url = b.up.https + '/h';
  const r = await b.get(url, { method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.equal(r.body.length, 0);
  assert.equal(r.headers['content-length'], '10');
  assert.equal(r.headers['content-type'], 'text/plain');
  assert.equal(b.assets.get(url)!.Sha256, sha256Hex('0123456789'), 'the GET body was recorded, not an empty one');
  assert.equal(b.up.hits('/h'), 1);
  // HEAD of a recorded URL is answered from the GET entry, offline too.
  await b.proxy.close();
  await b.restart({ mode: 'offline', upstream: undefined });
  const h = await curl(b, url, ['-I']);
  assert.equal(h.status, 200);
  assert.equal(h.headers['content-length'], '10');
  assert.equal(h.body, '');
});

test('a Range request while recording fetches the whole body and serves a 206 slice', async (t) => {
  const b = await startBench(t);
  const data = Buffer.from('abcdefghijklmnopqrstuvwxyz');
  b.up.route('/r', sendBody(data));
  const url = b.up.https + '/r';
  const r = await b.get(url, { headers: { range: 'bytes=2-5' } });
  assert.equal(r.status, 206);
  assert.equal(r.body.toString(), 'cdef');
  assert.equal(r.headers['content-range'], 'bytes 2-5/26');
  assert.equal(b.up.lastHeaders('/r')?.range, undefined, 'Range is not forwarded');
  assert.equal((await b.entry(url)).Sha256, sha256Hex(data));
  // If-Range naming a validator the recording does not carry: the whole body, as RFC 9110 says.
  const full = await b.get(url, { headers: { range: 'bytes=2-5', 'if-range': '"other"' } });
  assert.equal(full.status, 200);
  assert.ok(full.body.equals(data));
  b.up.route('/r2', sendBody(data));
  await b.get(b.up.https + '/r2', { headers: { range: 'bytes=0-0', 'if-range': '"x"' } });
  assert.equal(b.up.lastHeaders('/r2')?.['if-range'], undefined, 'If-Range is not forwarded');
  assert.equal(b.up.lastHeaders('/r2')?.range, undefined);
});

for (const rangeReads of [false, true]) {
  test(`replay serves 206 slices, suffix ranges and 416 (store ${rangeReads ? 'with' : 'without'} getRange)`, async (t) => {
    const b = await startBench(t, { mode: 'offline', upstream: undefined }, { rangeReads });
    const data = randomBytes(100_000);
    const url = 'https://example.test/big.bin';
    b.assets.entries.set(url, { Sha256: await b.store.add(data), Headers: { 'Content-Type': 'application/octet-stream' } });
    const mid = await b.get(url, { headers: { range: 'bytes=40000-60000' } });
    assert.equal(mid.status, 206);
    assert.equal(mid.headers['content-range'], 'bytes 40000-60000/100000');
    assert.ok(mid.body.equals(data.subarray(40000, 60001)));
    const suffix = await curl(b, url, ['-r', '-10', '-o', '/dev/null', '-w', '%{size_download}']);
    assert.equal(suffix.status, 206);
    assert.equal(suffix.headers['content-range'], 'bytes 99990-99999/100000');
    const open = await b.get(url, { headers: { range: 'bytes=99999-' } });
    assert.ok(open.body.equals(data.subarray(99999)));
    const bad = await b.get(url, { headers: { range: 'bytes=100000-' } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers['content-range'], 'bytes */100000');
    const multi = await b.get(url, { headers: { range: 'bytes=0-1,5-6' } });
    assert.equal(multi.status, 200, 'multi-range requests get the whole body');
    assert.equal(multi.body.length, 100000);
  });
}

test('conditional headers are not forwarded for a URL that is not yet recorded', async (t) => {
  const b = await startBench(t);
  b.up.route('/c', (req, res) => {
    if (req.headers['if-none-match'] || req.headers['if-modified-since']) return void res.writeHead(304).end();
    res.writeHead(200, { 'content-length': '4', etag: '"v1"' }).end('full');
  });
  const url = b.up.https + '/c';
  const r = await b.get(url, { headers: { 'if-none-match': '"v1"', 'if-modified-since': new Date().toUTCString() } });
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'full');
  assert.equal((await b.entry(url)).Sha256, sha256Hex('full'));
});

test('stores gzip bytes as on the wire and decodes on replay only for clients that refuse gzip', async (t) => {
  const b = await startBench(t);
  const text = 'line of text\n'.repeat(1000);
  b.up.route('/g', sendGzip(text));
  const url = b.up.https + '/g';
  const rec = await b.get(url, { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(rec.headers['content-encoding'], 'gzip');
  const wire = gzipSync(Buffer.from(text));
  assert.ok(rec.body.equals(wire), 'the recording client got the wire bytes');
  assert.deepEqual(await b.entry(url), { Sha256: sha256Hex(wire), Headers: { 'Content-Length': String(wire.length), 'Content-Encoding': 'gzip', 'Content-Type': 'text/plain' } });

  const accepting = await b.get(url, { headers: { 'accept-encoding': 'br, gzip;q=0.5' } });
  assert.equal(accepting.headers['content-encoding'], 'gzip');
  assert.ok(accepting.body.equals(wire));
  for (const ae of [undefined, 'identity', 'gzip;q=0, br']) {
    const refusing = await b.get(url, { headers: ae ? { 'accept-encoding': ae } : {} });
    assert.equal(refusing.status, 200);
    assert.equal(refusing.headers['content-encoding'], undefined, `Accept-Encoding: ${ae}`);
    assert.equal(refusing.headers['content-length'], undefined);
    assert.equal(refusing.body.toString(), text);
  }
  // curl without --compressed sends no Accept-Encoding: it gets plain text.
  assert.equal((await curl(b, url)).body, text);
});

test('a first client refusing the recorded coding gets it decoded, yet the wire bytes are stored', async (t) => {
  const b = await startBench(t);
  const text = 'brotli text '.repeat(100);
  b.up.route('/br', sendBody(brotliCompressSync(Buffer.from(text)), { 'content-encoding': 'br' }));
  b.up.route('/df', sendBody(deflateSync(Buffer.from(text)), { 'content-encoding': 'deflate' }));
  for (const p of ['/br', '/df']) {
    const r = await b.get(b.up.https + p, { headers: { 'accept-encoding': 'identity' } });
    assert.equal(r.body.toString(), text, p);
    assert.equal((await b.entry(b.up.https + p)).Headers['Content-Encoding'], p === '/br' ? 'br' : 'deflate');
  }
});

test('the proxy answers a registry Bearer challenge itself and records the blob', async (t) => {
  const b = await startBench(t);
  b.up.route('/v2/lib/x/blobs/sha256:aa', bearerProtected(() => b.up.https, '/token', 'T0K', sendBody('layer bytes')));
  b.up.route('/token', tokenEndpoint('T0K'));
  const url = b.up.https + '/v2/lib/x/blobs/sha256:aa';
  const r = await b.get(url);
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'layer bytes');
  await b.entry(url);
  assert.deepEqual([...b.assets.entries.keys()], [url], 'the token URL is not recorded');
});
