import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { createUpstreamClient } from '../../src/upstream/client.js';
import { createLogger } from '../../src/util/log.js';
import { startUpstream } from '../helpers/https-upstream.js';
import { readAll } from '../helpers/store.js';

const log = createLogger('error', 'test', () => {});

/** A raw TCP server: `onRequest(socket, n)` is called for each request head (n = its index on that connection). */
async function rawServer(t: TestContext, onRequest: (s: Socket, nth: number, conn: number) => void): Promise<{ url: string; connections: () => number }> {
  let conns = 0;
  const sockets = new Set<Socket>();
  const srv = createServer((s) => {
    const conn = ++conns;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let buf = '';
    let nth = 0;
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n\r\n'); i >= 0; i = buf.indexOf('\r\n\r\n')) {
        buf = buf.slice(i + 4);
        onRequest(s, nth++, conn);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => srv.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(srv.address() as { port: number }).port}`, connections: () => conns };
}

test('plain GETs take the direct path without a proxy of our own, and reuse one connection', async (t) => {
  const up = await startUpstream(t);
  up.route('/a', (_q, r) => r.end('alpha'));
  const c = await createUpstreamClient({ env: {}, log, extraRoots: [up.caPem], systemBundles: [] });
  t.after(() => c.close());
  for (let i = 0; i < 3; i++) {
    const res = await c.request(`${up.https}/a`, { method: 'GET', headers: {} });
    assert.ok(res.raw, 'direct path');
    assert.equal((await readAll(res.body)).toString(), 'alpha');
  }
  assert.equal(up.connections(), 1, 'keep-alive');
  const viaProxy = await createUpstreamClient({ env: { HTTPS_PROXY: 'http://127.0.0.1:9' , NO_PROXY: 'localhost' }, log, extraRoots: [up.caPem], systemBundles: [] });
  t.after(() => viaProxy.close());
  const res = await viaProxy.request(`${up.https}/a`, { method: 'GET', headers: {} });
  assert.equal(res.raw, undefined, 'with a proxy configured everything stays on undici');
  await readAll(res.body);
});

test('a reused connection found dead before any response byte is retried once on a new one', async (t) => {
  const srv = await rawServer(t, (s, nth) => {
    if (nth === 0) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    else s.destroy(); // as if the server had timed the idle connection out just now
  });
  const c = await createUpstreamClient({ env: {}, log, systemBundles: [] });
  t.after(() => c.close());
  for (let i = 0; i < 2; i++) {
    const res = await c.request(`${srv.url}/x`, { method: 'GET', headers: {} });
    assert.equal((await readAll(res.body)).toString(), 'ok');
  }
  assert.equal(srv.connections(), 2);
});

test('a stalled body fails after the idle timeout; a malformed response is refused by name', async (t) => {
  const srv = await rawServer(t, (s, _nth, conn) => {
    if (conn === 1) s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial');
    else s.write('HTTP/1.1 200 OK\r\nContent Length: 1\r\n\r\nx');
  });
  const c = await createUpstreamClient({ env: {}, log, systemBundles: [], idleTimeoutMs: 300 });
  t.after(() => c.close());
  const res = await c.request(`${srv.url}/stall`, { method: 'GET', headers: {} });
  await assert.rejects(readAll(res.body), /no body data for 300 ms/);
  await assert.rejects(c.request(`${srv.url}/bad`, { method: 'GET', headers: {} }), /GET http:\/\/127\.0\.0\.1:\d+\/bad: malformed response: malformed header line/);
});

test('aborting the signal ends a transfer in progress', async (t) => {
  const srv = await rawServer(t, (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial'));
  const c = await createUpstreamClient({ env: {}, log, systemBundles: [] });
  t.after(() => c.close());
  const ac = new AbortController();
  const res = await c.request(`${srv.url}/x`, { method: 'GET', headers: {}, signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(readAll(res.body), { name: 'AbortError' });
  await assert.rejects(c.request(`${srv.url}/x`, { method: 'GET', headers: {}, signal: ac.signal }), { name: 'AbortError' });
});

test('an upstream whose certificate is not trusted is refused on the direct path too', async (t) => {
  const up = await startUpstream(t);
  up.route('/a', (_q, r) => r.end('alpha'));
  const c = await createUpstreamClient({ env: {}, log, systemBundles: [] });
  t.after(() => c.close());
  await assert.rejects(c.request(`${up.https}/a`, { method: 'GET', headers: {} }), /GET https:\/\/localhost:\d+\/a: connecting to localhost:\d+: .*(certificate|issuer)/);
});
