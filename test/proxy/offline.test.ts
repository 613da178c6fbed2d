import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ProxyAgent, request } from 'undici';
import { writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DirStore } from '../../src/store/dir/index.js';
import { tempDir } from '../helpers/tmp.js';
import { startBench, curl } from './harness.js';

const offline = { mode: 'offline' as const, upstream: undefined };

test('offline: --dummy-ok-response URLs get an empty 200', async (t) => {
  const b = await startBench(t, offline);
  const r = await b.get('https://registry.test/v2/');
  assert.equal(r.status, 200);
  assert.equal(r.body.length, 0);
  assert.equal(r.headers['content-length'], '0');
  assert.equal(b.proxy.counters().htvend_dummy_ok_total, 1);
});

test('offline: an unrecorded URL is a 404 with a warning naming it, counted and listed once', async (t) => {
  const b = await startBench(t, offline);
  const present = await b.store.add('ok');
  b.assets.entries.set('https://mirror.test/blob-gone', { Sha256: 'f'.repeat(64) as typeof present, Headers: {} });
  for (const u of ['https://mirror.test/z', 'http://mirror.test/a?x=1', 'https://mirror.test/z', 'https://mirror.test/blob-gone']) {
    const r = await b.get(u);
    assert.equal(r.status, 404, u);
    assert.match(r.body.toString(), u.endsWith('blob-gone') ? /recorded, but its blob is missing from the store/ : /not recorded/);
  }
  assert.equal(b.proxy.counters().htvend_missing_asset_total, 4);
  assert.equal(b.proxy.counters().htvend_missing_blob_total, 1, 'the listed URL whose blob is gone is counted apart');
  assert.deepEqual(b.proxy.missing(), ['http://mirror.test/a?x=1', 'https://mirror.test/z']);
  assert.deepEqual(b.proxy.missingBlobs(), ['https://mirror.test/blob-gone']);
  assert.ok(b.logs.includes('htvend: warning: missing asset for URL: https://mirror.test/z\n'), b.logs.join(''));
  assert.ok(
    b.logs.includes(`htvend: warning: missing blob for URL: https://mirror.test/blob-gone (blob ${'f'.repeat(64)} is listed in assets.json but not in memory store)\n`),
    b.logs.join(''),
  );
});

test('offline: other methods get a clear 405', async (t) => {
  const b = await startBench(t, offline);
  const r = await b.get('https://api.test/upload', { method: 'POST', body: 'x' });
  assert.equal(r.status, 405);
  assert.equal(r.headers['allow'], 'GET, HEAD');
  assert.match(r.body.toString(), /POST is not replayed/);
});

test('offline: a blob that does not match its digest is cut off, and the log names the blob', async (t) => {
  const b = await startBench(t, offline);
  const data = randomBytes(200_000);
  const digest = await b.store.add(data);
  b.store.corrupt(digest);
  b.assets.entries.set('https://cdn.test/x.bin', { Sha256: digest, Headers: {} });
  await assert.rejects(b.get('https://cdn.test/x.bin'), /closed|terminated|socket|mismatch|length/i);
  const c = await curl(b, 'https://cdn.test/x.bin', ['-o', '/dev/null']);
  assert.notEqual(c.code, 0, 'curl sees an incomplete transfer');
  assert.ok(b.logs.some((l) => l.startsWith('htvend: error: replay of https://cdn.test/x.bin cut off, the blob is corrupt: ') && l.includes(digest)), b.logs.join(''));
  assert.equal(b.proxy.counters().htvend_integrity_failed_total, 2);
  assert.equal(b.proxy.counters().htvend_replayed_total, 0, 'a corrupt blob is not counted as replayed');
  assert.deepEqual(b.proxy.corrupt(), ['https://cdn.test/x.bin']);
});

test('offline: CONNECT to an IP address is intercepted with an IP certificate', async (t) => {
  const b = await startBench(t, offline);
  b.assets.entries.set('https://127.0.0.1:9/ip.txt', { Sha256: await b.store.add('by ip'), Headers: { 'Content-Type': 'text/plain' } });
  const r = await curl(b, 'https://127.0.0.1:9/ip.txt');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.body, 'by ip');
});

test('the optional TLS listener is an HTTPS proxy for both CONNECT and absolute-form requests', async (t) => {
  const b = await startBench(t, { ...offline, tlsListenAddr: '127.0.0.1:0' });
  assert.match(b.proxy.tlsUrl!, /^https:\/\/127\.0\.0\.1:\d+$/);
  b.assets.entries.set('https://s.test/a', { Sha256: await b.store.add('secure'), Headers: {} });
  b.assets.entries.set('http://p.test/b', { Sha256: await b.store.add('plain'), Headers: {} });
  const agent = new ProxyAgent({ uri: b.proxy.tlsUrl!, proxyTls: { ca: b.caPem }, requestTls: { ca: b.caPem } });
  t.after(() => agent.close());
  const r = await request('https://s.test/a', { dispatcher: agent });
  assert.equal(await r.body.text(), 'secure');
  const c = await curl(b, 'http://p.test/b', ['--proxy-cacert', b.caFile, '-x', b.proxy.tlsUrl!]);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(c.body, 'plain');
});

test('offline from the filesystem store: large and small blobs replay intact; corrupt ones are cut off before their end', async (t) => {
  const store = await DirStore.open(await tempDir(t));
  const add = async (data: Buffer) => {
    const w = await store.put();
    await pipeline(Readable.from([data]), w.stream);
    return w.commit();
  };
  const b = await startBench(t, { ...offline, store });
  const big = randomBytes(6 * 1024 * 1024 + 3); // verified on the worker thread
  const small = randomBytes(10 * 1024); // read whole, sent with its headers
  for (const [name, data] of [['big', big], ['small', small]] as const) {
    const d = await add(data);
    b.assets.entries.set(`https://files.test/${name}`, { Sha256: d, Headers: {} });
    b.assets.entries.set(`https://files.test/${name}-bad`, { Sha256: d, Headers: {} });
  }
  for (const [name, data] of [['big', big], ['small', small]] as const) {
    const r = await b.get(`https://files.test/${name}`);
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(data), `${name} body intact`);
  }
  // Corrupt the big blob on disk (same size): the reply is cut, never complete.
  const bigDigest = b.assets.entries.get('https://files.test/big')!.Sha256;
  const bad = Buffer.from(big);
  bad[bad.length - 10] = bad[bad.length - 10]! ^ 1;
  await writeFile(store.pathOf(bigDigest), bad);
  await assert.rejects(b.get('https://files.test/big-bad'), /closed|terminated|socket|other side/i);
  assert.equal(b.proxy.counters().htvend_integrity_failed_total, 1);
  assert.ok(b.logs.some((l) => l.includes('the blob is corrupt: ') && l.includes(`blob ${bigDigest} in filesystem store`)), b.logs.join(''));
});
