import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, TLSSocket } from 'node:tls';
import { createServer as createNetServer } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { stat, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createCa, loadOrCreateCa } from '../../src/tls/ca.js';
import { tempDir } from '../helpers/tmp.js';

/** Handshakes against a TLS server using `ca`'s leaf for `servername`; returns the peer cert. */
async function handshake(ca: Awaited<ReturnType<typeof createCa>>, host: string, servername?: string) {
  // Like the proxy: a raw socket wrapped server-side; SNI picks the leaf, the target host is
  // the default (clients send no SNI for IPs).
  const ctx = await ca.secureContextFor(host);
  const server = createNetServer((raw) => {
    const s = new TLSSocket(raw, { isServer: true, secureContext: ctx, SNICallback: (name, cb) => ca.secureContextFor(name).then((c) => cb(null, c), cb) });
    s.on('secure', () => s.end()).on('error', () => s.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    return await new Promise<X509Certificate>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, ca: ca.certPem, servername, checkServerIdentity: () => undefined }, () => {
        const c = s.getPeerX509Certificate();
        s.end();
        if (!s.authorized) reject(new Error(String(s.authorizationError)));
        else resolve(c!);
      });
      s.on('error', reject);
    });
  } finally {
    server.close();
  }
}

test('a leaf for a DNS name chains to the CA and carries a DNS SAN', async () => {
  const ca = await createCa();
  const cert = await handshake(ca, 'example.test', 'example.test');
  assert.equal(cert.subjectAltName, 'DNS:example.test');
  assert.ok(cert.checkIssued(new X509Certificate(ca.certPem)));
  assert.ok(new Date(cert.validFrom).getTime() < Date.now() - 3600_000, 'notBefore is backdated');
  assert.ok(new Date(cert.validTo).getTime() < Date.now() + 8 * 86400_000, 'validity is short');
});

test('a leaf for an IP carries an IP SAN', async () => {
  const ca = await createCa();
  const cert = await handshake(ca, '127.0.0.1');
  assert.equal(cert.subjectAltName, 'IP Address:127.0.0.1');
});

test('concurrent first requests for a host share one generation', async () => {
  const ca = await createCa();
  const [a, b] = [ca.secureContextFor('same.test'), ca.secureContextFor('SAME.test')];
  assert.equal(a, b);
  assert.equal(await a, await b);
  assert.notEqual(await ca.secureContextFor('other.test'), await a);
});

test('CA serials are random and the CA is a CA', async () => {
  const [a, b] = await Promise.all([createCa(), createCa()]);
  const ca = new X509Certificate(a.certPem);
  assert.notEqual(ca.serialNumber, new X509Certificate(b.certPem).serialNumber);
  assert.equal(ca.ca, true);
});

test('loadOrCreateCa generates when asked, key 0600, then reloads the same CA', async (t) => {
  const dir = await tempDir(t);
  const certPemPath = join(dir, 'sub', 'ca.pem');
  const keyPemPath = join(dir, 'sub', 'ca.key');
  await assert.rejects(loadOrCreateCa({ certPemPath, keyPemPath }), /do not exist/);
  const made = await loadOrCreateCa({ certPemPath, keyPemPath, generateIfMissing: true });
  assert.equal((await stat(keyPemPath)).mode & 0o777, 0o600);
  assert.equal(await readFile(certPemPath, 'utf8'), made.certPem);
  const again = await loadOrCreateCa({ certPemPath, keyPemPath, generateIfMissing: true });
  assert.equal(again.certPem, made.certPem);
  // The reloaded key really signs leaves that chain to the saved certificate.
  const cert = await handshake(again as Awaited<ReturnType<typeof createCa>>, 'reload.test', 'reload.test');
  assert.ok(cert.checkIssued(new X509Certificate(made.certPem)));
});

test('loadOrCreateCa rejects a lone file and a garbage key with messages naming them', async (t) => {
  const dir = await tempDir(t);
  const certPemPath = join(dir, 'ca.pem');
  const keyPemPath = join(dir, 'ca.key');
  await writeFile(certPemPath, (await createCa()).certPem);
  await assert.rejects(loadOrCreateCa({ certPemPath, keyPemPath, generateIfMissing: true }), /only one of/);
  await writeFile(keyPemPath, 'not a key');
  await assert.rejects(loadOrCreateCa({ certPemPath, keyPemPath }), (e: Error) => e.message.includes(keyPemPath) && /private key/.test(e.message));
});

test('loadOrCreateCa accepts an RSA CA made by openssl (PKCS#1 key, subject key id), and its leaves chain to it', async (t) => {
  const dir = await tempDir(t);
  const [c, k] = [join(dir, 'c.pem'), join(dir, 'k.pem')];
  // -traditional: a PKCS#1 "RSA PRIVATE KEY", as older tooling writes it.
  const r = spawnSync('sh', ['-c', `openssl req -x509 -newkey rsa:2048 -nodes -keyout k8.pem -out c.pem -days 2 -subj "/CN=rsa ca/O=Test Org" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign && openssl rsa -in k8.pem -traditional -out k.pem`], { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const ca = await loadOrCreateCa({ certPemPath: c, keyPemPath: k });
  const leaf = await handshake(ca as Awaited<ReturnType<typeof createCa>>, 'rsa.test', 'rsa.test');
  assert.ok(leaf.checkIssued(new X509Certificate(ca.certPem)));
  // openssl's own chain check also matches the leaf's authority key id with the CA's subject key id.
  await writeFile(join(dir, 'leaf.pem'), leaf.toString());
  const v = spawnSync('openssl', ['verify', '-CAfile', c, join(dir, 'leaf.pem')], { encoding: 'utf8' });
  assert.equal(v.status, 0, v.stdout + v.stderr);
});

test('a leaf for an IPv6 address with an embedded IPv4 carries that IP SAN, and openssl verifies the chain strictly', async (t) => {
  const dir = await tempDir(t);
  const ca = await createCa();
  const leaf = await handshake(ca, '[::ffff:127.0.0.1]');
  assert.match(leaf.subjectAltName ?? '', /^IP Address:0:0:0:0:0:FFFF:7F00:1$/i);
  // -x509_strict also checks the authority key id against the CA's subject key id encoding.
  await writeFile(join(dir, 'ca.pem'), ca.certPem);
  await writeFile(join(dir, 'leaf.pem'), leaf.toString());
  const v = spawnSync('openssl', ['verify', '-x509_strict', '-CAfile', join(dir, 'ca.pem'), join(dir, 'leaf.pem')], { encoding: 'utf8' });
  assert.equal(v.status, 0, v.stdout + v.stderr);
});
