import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { startRegistry } from '../helpers/registry-server.js';
import { RegistryClient } from '../../src/registry/index.js';
import { sha256Hex } from '../../src/util/digest.js';

/** A CONNECT-only forward proxy on loopback that records the targets it tunnels to. */
async function startConnectProxy(t: import('node:test').TestContext) {
  const targets: string[] = [];
  const server = createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req, socket, head) => {
    targets.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host!, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(
    () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, targets };
}

test('uses HTTPS_PROXY from the given environment (not process.env) and honours NO_PROXY', async (t) => {
  const reg = await startRegistry(t, { tls: true });
  const proxy = await startConnectProxy(t);
  const viaProxy = await RegistryClient.open(reg.host, 'p/q', { env: { HTTPS_PROXY: proxy.url, SSL_CERT_FILE: reg.caFile } });
  t.after(() => viaProxy.close());
  const r = await viaProxy.putBlob(Buffer.from('through the proxy'));
  assert.deepEqual(await viaProxy.statBlob(r.digest), { size: 17 });
  assert.ok(proxy.targets.length > 0 && proxy.targets.every((x) => x === reg.host), proxy.targets.join());

  const before = proxy.targets.length;
  const bypass = await RegistryClient.open(reg.host, 'p/q', { env: { https_proxy: proxy.url, no_proxy: '127.0.0.1', SSL_CERT_FILE: reg.caFile } });
  t.after(() => bypass.close());
  assert.deepEqual(await bypass.statBlob(r.digest), { size: 17 });
  assert.equal(proxy.targets.length, before, 'NO_PROXY host went direct');

  const direct = await RegistryClient.open(reg.host, 'p/q', { env: { SSL_CERT_FILE: reg.caFile } });
  t.after(() => direct.close());
  assert.equal(await direct.statBlob(sha256Hex('absent')), undefined);
  assert.equal(proxy.targets.length, before, 'no proxy variable in the snapshot: no proxy');
});
