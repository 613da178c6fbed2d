import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { resetMidBody, slowBody } from '../helpers/https-upstream.js';
import { startBench } from './harness.js';

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

/** Opens a CONNECT tunnel through the proxy, sends a GET, resolves once `n` body-ish bytes arrived, then destroys the connection. */
async function readSomeThenAbort(proxyHostPort: string, caPem: string, url: URL, n: number): Promise<void> {
  const [host, port] = proxyHostPort.split(':');
  const raw = connect(Number(port), host);
  await new Promise<void>((resolve, reject) => {
    raw.once('error', reject);
    raw.write(`CONNECT ${url.host} HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
    raw.once('data', () => resolve());
  });
  const s = tlsConnect({ socket: raw, ca: caPem, servername: url.hostname });
  s.write(`GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
  let got = 0;
  await new Promise<void>((resolve) => {
    s.on('data', (c: Buffer) => {
      got += c.length;
      if (got >= n) resolve();
    });
  });
  s.destroy();
  raw.destroy();
}

test('an upstream reset mid-body records nothing and cuts the client connection', async (t) => {
  const b = await startBench(t);
  b.up.route('/broken', resetMidBody(1_000_000, 100_000));
  await assert.rejects(b.get(b.up.https + '/broken'), /closed|terminated|socket|other side/i);
  await until(() => b.proxy.counters().htvend_record_failed_total === 1);
  assert.equal(b.assets.entries.size, 0);
  assert.equal(b.store.blobs.size, 0);
  assert.equal(b.store.aborts, 1);
  assert.ok(b.logs.some((l) => l.includes('not recorded, transfer failed')));
});

test('a client that aborts mid-download does not stop the recording', async (t) => {
  const b = await startBench(t);
  b.up.route('/slow', slowBody(20, 65536, 15));
  const url = b.up.https + '/slow';
  await readSomeThenAbort(b.proxy.hostPort, b.caPem, new URL(url), 70_000);
  assert.equal(b.assets.entries.size, 0, 'not recorded before the end of the body');
  await until(() => b.assets.get(url) !== undefined);
  const blob = b.store.blobs.get(b.assets.get(url)!.Sha256)!;
  assert.equal(blob.length, 20 * 65536);
  assert.equal(b.store.aborts, 0);
});

test('concurrent requests for the same unrecorded URL cause exactly one upstream fetch', async (t) => {
  const b = await startBench(t);
  b.up.route('/once', slowBody(10, 10_000, 20));
  const url = b.up.https + '/once';
  const replies = await Promise.all([
    b.get(url),
    b.get(url),
    b.get(url, { method: 'HEAD' }),
    b.get(url, { headers: { range: 'bytes=0-9' } }),
    b.get(b.up.http + '/once'),
  ]);
  assert.equal(b.up.hits('/once'), 2, 'one fetch for the https URL, one for the http URL');
  for (const r of [replies[0]!, replies[1]!, replies[4]!]) {
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 100_000);
  }
  assert.equal(replies[2]!.headers['content-length'], '100000');
  assert.equal(replies[3]!.status, 206);
  assert.equal(replies[3]!.body.length, 10);
  assert.equal(b.proxy.counters().htvend_recorded_total, 2);
});

test('close() waits for an in-flight recording whose client has gone', async (t) => {
  const b = await startBench(t);
  b.up.route('/late', slowBody(10, 65536, 30));
  const url = b.up.https + '/late';
  await readSomeThenAbort(b.proxy.hostPort, b.caPem, new URL(url), 1);
  await b.proxy.close();
  assert.ok(b.assets.get(url), 'recorded before close() resolved');
  assert.equal(b.store.blobs.get(b.assets.get(url)!.Sha256)!.length, 655360);
});

test('close() ends idle keep-alive connections instead of waiting for them', async (t) => {
  const b = await startBench(t, { mode: 'offline', upstream: undefined });
  b.assets.entries.set('https://idle.test/a', { Sha256: await b.store.add('x'), Headers: {} });
  const [host, port] = b.proxy.hostPort.split(':');
  const raw = connect(Number(port), host);
  await new Promise((r) => raw.once('connect', r));
  const closed = new Promise((r) => raw.once('close', r));
  raw.on('error', () => {});
  raw.write('GET http://idle.test/none HTTP/1.1\r\nHost: idle.test\r\n\r\n');
  await new Promise((r) => raw.once('data', r)); // answered; the connection now idles (keep-alive)
  const t0 = Date.now();
  await b.proxy.close();
  await closed;
  assert.ok(Date.now() - t0 < 2000, 'closed promptly');
});

/** Sends `request` on `s`, half-closes (FIN after the request, like busybox wget), returns all bytes read. */
async function halfCloseExchange(s: import('node:net').Socket, request: string): Promise<string> {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.once('close', () => resolve());
  });
  s.end(request);
  await done;
  return Buffer.concat(chunks).toString('latin1');
}

test('a client that half-closes after its request still gets the whole response, plain or in a tunnel', async (t) => {
  const b = await startBench(t, { mode: 'offline', upstream: undefined });
  const body = 'x'.repeat(200_000);
  b.assets.entries.set('http://half.test/a', { Sha256: await b.store.add(body), Headers: {} });
  b.assets.entries.set('https://half.test/a', { Sha256: await b.store.add(body), Headers: {} });
  const [host, port] = b.proxy.hostPort.split(':');

  const plain = connect(Number(port), host);
  const got = await halfCloseExchange(plain, 'GET http://half.test/a HTTP/1.1\r\nHost: half.test\r\n\r\n');
  assert.match(got, /^HTTP\/1\.1 200 /);
  assert.ok(got.endsWith('\r\n\r\n' + body), 'whole body after the headers');

  const raw = connect(Number(port), host);
  await new Promise<void>((resolve, reject) => {
    raw.once('error', reject);
    raw.write('CONNECT half.test:443 HTTP/1.1\r\nHost: half.test:443\r\n\r\n');
    raw.once('data', () => resolve());
  });
  const s = tlsConnect({ socket: raw, ca: b.caPem, servername: 'half.test' });
  await new Promise((r) => s.once('secureConnect', r));
  const gotTls = await halfCloseExchange(s, 'GET /a HTTP/1.1\r\nHost: half.test\r\n\r\n');
  assert.match(gotTls, /^HTTP\/1\.1 200 /);
  assert.ok(gotTls.endsWith('\r\n\r\n' + body), 'whole body after the headers (TLS)');
});
