import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { text, buffer } from 'node:stream/consumers';
import { createUpstreamClient } from '../../src/upstream/client.js';
import { fetchForRecording, headersForRefetch, parseBearerChallenge } from '../../src/upstream/record-fetch.js';
import { silentLogger } from '../../src/util/log.js';
import { startUpstream, sendBody, sendGzip, redirect, bearerProtected, tokenEndpoint } from '../helpers/https-upstream.js';
import { tempDir } from '../helpers/tmp.js';

const noSystem = { systemBundles: [] as string[] };

/** A CONNECT-capable forward proxy that counts what it tunnels. */
async function startCorporateProxy(t: { after(fn: () => unknown): void }) {
  const seen: string[] = [];
  const socks = new Set<Socket>();
  const server: Server = createServer((_req, res) => res.writeHead(502).end());
  server.on('connect', (req, client: Socket) => {
    seen.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const up = connect(Number(port), host === 'localhost' ? '127.0.0.1' : host, () => {
      client.write('HTTP/1.1 200 OK\r\n\r\n');
      up.pipe(client).pipe(up);
    });
    socks.add(up).add(client);
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of socks) s.destroy();
    return new Promise((r) => server.close(r));
  });
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen };
}

test('trusts a CA given by SSL_CERT_FILE and rejects an unknown one', async (t) => {
  const up = await startUpstream(t);
  up.route('/a', sendBody('hello'));
  const dir = await tempDir(t);
  await writeFile(join(dir, 'ca.pem'), up.caPem);
  const trusting = await createUpstreamClient({ env: { SSL_CERT_FILE: join(dir, 'ca.pem') }, log: silentLogger, ...noSystem });
  t.after(() => trusting.close());
  const res = await trusting.request(up.https + '/a', { method: 'GET', headers: {} });
  assert.equal(res.status, 200);
  assert.equal(await text(res.body), 'hello');

  const strict = await createUpstreamClient({ env: {}, log: silentLogger, ...noSystem });
  t.after(() => strict.close());
  await assert.rejects(strict.request(up.https + '/a', { method: 'GET', headers: {} }), /UPSTREAM|certificate|self-signed|issuer/i);
});

test('trusts every certificate file in SSL_CERT_DIR and NODE_EXTRA_CA_CERTS', async (t) => {
  const up = await startUpstream(t);
  up.route('/a', sendBody('x'));
  const dir = await tempDir(t);
  await mkdir(join(dir, 'certs'));
  await writeFile(join(dir, 'certs', 'abcd1234.0'), up.caPem);
  for (const env of [{ SSL_CERT_DIR: `/nonexistent:${join(dir, 'certs')}` }, { NODE_EXTRA_CA_CERTS: join(dir, 'certs', 'abcd1234.0') }]) {
    const c = await createUpstreamClient({ env, log: silentLogger, ...noSystem });
    const res = await c.request(up.https + '/a', { method: 'GET', headers: {} });
    assert.equal(res.status, 200, JSON.stringify(env));
    res.body.resume();
    await c.close();
  }
});

test('never decodes Content-Encoding: the body is the gzip bytes on the wire', async (t) => {
  const up = await startUpstream(t);
  up.route('/z', sendGzip('compressed text'));
  const c = await createUpstreamClient({ env: {}, log: silentLogger, extraRoots: [up.caPem], ...noSystem });
  t.after(() => c.close());
  const res = await c.request(up.https + '/z', { method: 'GET', headers: { 'accept-encoding': 'gzip' } });
  assert.equal(res.headers['content-encoding'], 'gzip');
  assert.equal(gunzipSync(await buffer(res.body)).toString(), 'compressed text');
});

test('follows redirects when asked, reporting the final URL, and drops Authorization across origins', async (t) => {
  const up = await startUpstream(t);
  up.route('/start', redirect('/middle', 301));
  up.route('/middle', redirect(up.http + '/final', 307));
  up.route('/final', sendBody('landed'));
  const c = await createUpstreamClient({ env: {}, log: silentLogger, extraRoots: [up.caPem], ...noSystem });
  t.after(() => c.close());
  const noFollow = await c.request(up.https + '/start', { method: 'GET', headers: {} });
  assert.equal(noFollow.status, 301);
  noFollow.body.resume();
  const res = await c.request(up.https + '/start', { method: 'GET', headers: { authorization: 'Basic c2VjcmV0' }, followRedirects: true });
  assert.equal(res.status, 200);
  assert.equal(res.url, up.http + '/final');
  assert.equal(await text(res.body), 'landed');
  assert.equal(up.lastHeaders('/middle')?.authorization, 'Basic c2VjcmV0');
  assert.equal(up.lastHeaders('/final')?.authorization, undefined);
});

test('goes through HTTPS_PROXY from the snapshot, and around it for NO_PROXY hosts', async (t) => {
  const up = await startUpstream(t);
  up.route('/a', sendBody('via proxy'));
  const corp = await startCorporateProxy(t);
  const c = await createUpstreamClient({ env: { https_proxy: corp.url }, log: silentLogger, extraRoots: [up.caPem], ...noSystem });
  t.after(() => c.close());
  const res = await c.request(up.https + '/a', { method: 'GET', headers: {} });
  assert.equal(await text(res.body), 'via proxy');
  assert.equal(corp.seen.length, 1);
  assert.match(corp.seen[0]!, /^localhost:\d+$/);

  const bypass = await createUpstreamClient({ env: { HTTPS_PROXY: corp.url, NO_PROXY: 'localhost' }, log: silentLogger, extraRoots: [up.caPem], ...noSystem });
  t.after(() => bypass.close());
  (await bypass.request(up.https + '/a', { method: 'GET', headers: {} })).body.resume();
  assert.equal(corp.seen.length, 1, 'NO_PROXY host did not use the proxy');
});

test('fetchForRecording answers a Bearer challenge with an anonymous token and drops Range/conditionals', async (t) => {
  const up = await startUpstream(t);
  up.route('/v2/lib/x/blobs/b', bearerProtected(() => up.https, '/token', 'tok123', sendBody('blob bytes')));
  up.route('/token', tokenEndpoint('tok123'));
  const c = await createUpstreamClient({ env: {}, log: silentLogger, extraRoots: [up.caPem], ...noSystem });
  t.after(() => c.close());
  const res = await fetchForRecording(c, up.https + '/v2/lib/x/blobs/b', { headers: { range: 'bytes=0-1', 'if-none-match': '"x"', accept: '*/*' } });
  assert.equal(res.status, 200);
  assert.equal(await text(res.body), 'blob bytes');
  assert.equal(up.hits('/v2/lib/x/blobs/b'), 2);
  assert.equal(up.lastHeaders('/v2/lib/x/blobs/b')?.range, undefined);
  assert.equal(up.lastHeaders('/v2/lib/x/blobs/b')?.['if-none-match'], undefined);
  assert.equal(up.lastHeaders('/v2/lib/x/blobs/b')?.accept, '*/*');
});

test('parses Bearer challenges and builds re-fetch headers from an entry', () => {
  assert.deepEqual(parseBearerChallenge('Bearer realm="https://auth.test/token",service="reg",scope="repository:a/b:pull"'), {
    realm: 'https://auth.test/token',
    service: 'reg',
    scope: 'repository:a/b:pull',
  });
  assert.equal(parseBearerChallenge('Basic realm="x"'), undefined);
  assert.deepEqual(headersForRefetch({ Sha256: 'a'.repeat(64) as never, Headers: { 'Content-Encoding': 'gzip' } }), { 'accept-encoding': 'gzip' });
});
