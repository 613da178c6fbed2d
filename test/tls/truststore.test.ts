import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as http from 'node:http';
import * as net from 'node:net';
import { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createCa } from '../../src/tls/ca.js';
import { pkcs12TruststoreFromPem, writePkcs12Truststore, pemCertificates } from '../../src/tls/truststore.js';
import { tempDir } from '../helpers/tmp.js';
import { run } from '../helpers/cli.js';
import { writeJavaClient } from '../helpers/java-client.js';

test('keytool lists the CA as a trustedCertEntry with an empty store password', async (t) => {
  const dir = await tempDir(t);
  const ca = await createCa();
  const file = join(dir, 'ts.p12');
  await writePkcs12Truststore(file, ca.certPem);
  const r = await run(['keytool', '-list', '-keystore', file, '-storepass', '']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /Your keystore contains 1 entry/);
  assert.match(r.stdout, /cert0, .*trustedCertEntry/);
});

test('holds every certificate of a multi-certificate PEM', async (t) => {
  const dir = await tempDir(t);
  const [a, b] = await Promise.all([createCa(), createCa()]);
  const file = join(dir, 'ts.p12');
  await writeFile(file, pkcs12TruststoreFromPem(a.certPem + b.certPem));
  const r = await run(['keytool', '-list', '-keystore', file, '-storepass', '']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /Your keystore contains 2 entries/);
  assert.equal(pemCertificates(a.certPem + 'junk' + b.certPem).length, 2);
});

test('rejects a PEM without certificates', () => {
  assert.throws(() => pkcs12TruststoreFromPem('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), /no CERTIFICATE block/);
});

test('a Java 17 HTTPS client trusts a server signed by the CA with the passwordless store', async (t) => {
  const dir = await tempDir(t);
  const ca = await createCa();
  // Java sends no SNI for dotless names like "localhost": the default context must already
  // present the right leaf, so wrap sockets ourselves (as the proxy does).
  const ctx = await ca.secureContextFor('localhost');
  const web = http.createServer((_req, res) => res.end('hello from java test'));
  const server = net.createServer((raw) => web.emit('connection', new TLSSocket(raw, { isServer: true, secureContext: ctx })));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;

  const store = join(dir, 'ts.p12');
  await writePkcs12Truststore(store, ca.certPem);
  const client = await writeJavaClient(dir);
  const url = `https://localhost:${port}/x`;
  const ok = await run(['java', `-Djavax.net.ssl.trustStore=${store}`, '-Djavax.net.ssl.trustStoreType=PKCS12', client, url], { timeoutMs: 60_000 });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, 'hello from java test');

  // Control: without the truststore Java must refuse the same server.
  const bad = await run(['java', client, url], { timeoutMs: 60_000 });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /PKIX|certification path/);
});
