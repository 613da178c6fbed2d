/**
 * The step forwarder (src/builder/cache/step-forwarder.ts, docs/build-cache.md "Clients without
 * credentials"): Java sends no Proxy-Authorization from its proxy properties, so a RUN step's
 * Java is pointed at a loopback forwarder of the step's own that adds the step's credentials.
 * The clients here are the real ones on the host (Java 17, curl), the proxy is htvend's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { request } from 'node:http';
import { startBench, type Bench } from './harness.js';
import { sendBody } from '../helpers/https-upstream.js';
import { run } from '../helpers/cli.js';
import { writeJavaClient } from '../helpers/java-client.js';
import { stepToken } from '../../src/proxy/attribution/identity.js';
import { startStepForwarder } from '../../src/builder/cache/step-forwarder.js';
import { writePkcs12Truststore } from '../../src/tls/truststore.js';
import { createLogger } from '../../src/util/log.js';
import { which } from '../e2e/harness.js';

function control(b: Bench, path: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, b.proxy.session.controlUrl), { headers: { Authorization: `Bearer ${b.proxy.session.secret}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve(JSON.parse(text)));
    });
    req.on('error', reject);
    req.end();
  });
}

async function forwarderFor(t: { after: (f: () => unknown) => void }, b: Bench, id: string, logs: string[]) {
  const fwd = await startStepForwarder({ proxy: b.proxy.url, id, token: stepToken(b.proxy.session.secret, id), log: createLogger('debug', 'test', (l) => void logs.push(l)) });
  t.after(() => fwd.stop());
  return fwd;
}

test('Java through the step forwarder is credited with its HTTPS and HTTP downloads; nothing goes unattributed', { skip: which('java') ? false : 'java missing' }, async (t) => {
  const b = await startBench(t);
  b.up.route('/j1.txt', sendBody('java one\n'));
  b.up.route('/j2.txt', sendBody('java two!\n'));
  const logs: string[] = [];
  const fwd = await forwarderFor(t, b, 'java-step', logs);
  const dir = join(b.caFile, '..');
  const trust = join(dir, 'trust.p12');
  await writePkcs12Truststore(trust, b.caPem);
  const client = await writeJavaClient(dir);
  const before = (await control(b, 'session')).unattributed as number;
  // The properties the builder puts in a RUN step's JAVA_TOOL_OPTIONS (proxy-env.ts).
  const props = [`-Dhttp.proxyHost=${fwd.host}`, `-Dhttp.proxyPort=${fwd.port}`, `-Dhttps.proxyHost=${fwd.host}`, `-Dhttps.proxyPort=${fwd.port}`, '-Dhttp.nonProxyHosts=', `-Djavax.net.ssl.trustStore=${trust}`, '-Djavax.net.ssl.trustStoreType=PKCS12'];
  for (const url of [`${b.up.https}/j1.txt`, `${b.up.http}/j2.txt`]) {
    const r = await run(['java', client, url], { env: { PATH: process.env['PATH'], JAVA_TOOL_OPTIONS: props.join(' ') }, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^java (one|two!)\n$/);
  }
  const rep = await control(b, 'steps/java-step');
  assert.deepEqual(rep.assets.map((a: { key: string; status: string }) => [a.key, a.status]), [
    [`${b.up.http}/j2.txt`, 'recorded'],
    [`${b.up.https}/j1.txt`, 'recorded'],
  ]);
  assert.equal((await control(b, 'session')).unattributed, before, 'every request came with the step credentials');
  assert.equal(b.up.lastHeaders('/j1.txt')?.['proxy-authorization'], undefined);
  assert.equal(b.up.lastHeaders('/j2.txt')?.['proxy-authorization'], undefined);
  const token = stepToken(b.proxy.session.secret, 'java-step');
  for (const l of [...logs, ...b.logs]) assert.ok(!l.includes(token) && !l.includes(Buffer.from(`java-step:${token}`).toString('base64')), `credentials in a log line: ${l}`);
});

test('the forwarder replaces a client\'s own credentials, keeps connections alive, and stop() closes everything', { skip: which('curl') ? false : 'curl missing' }, async (t) => {
  const b = await startBench(t);
  b.up.route('/k1.txt', sendBody('keep one\n'));
  b.up.route('/k2.txt', sendBody('keep two\n'));
  const fwd = await forwarderFor(t, b, 'curl-step', []);
  assert.equal(fwd.host, '127.0.0.1');
  // Two plain-HTTP requests on one connection (curl reuses it), with forged credentials of another step.
  const r = await run(['curl', '-sSf', '-x', `http://other-step:forged@${fwd.host}:${fwd.port}`, `${b.up.http}/k1.txt`, `${b.up.http}/k2.txt`, '-w', '%{num_connects}\n'], { env: { PATH: process.env['PATH'] } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'keep one\n1\nkeep two\n0\n', 'the second request reused the connection');
  assert.deepEqual((await control(b, 'steps/curl-step')).assets.map((a: { key: string }) => a.key), [`${b.up.http}/k1.txt`, `${b.up.http}/k2.txt`]);
  assert.deepEqual((await control(b, 'steps/other-step')).assets, []);

  // An open tunnel is cut by stop(); afterwards nothing listens.
  const sock = connect(fwd.port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  sock.write(`CONNECT ${new URL(b.up.https).host} HTTP/1.1\r\nHost: x\r\n\r\n`);
  const answer = await new Promise<string>((resolve) => sock.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
  assert.match(answer, /^HTTP\/1\.1 200/);
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  await fwd.stop();
  await closed;
  const refused = await new Promise<string>((resolve) => connect(fwd.port, '127.0.0.1').once('connect', () => resolve('connected')).once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error')));
  assert.equal(refused, 'ECONNREFUSED');
});

test('an unreachable proxy gives the client a 502 naming the forwarder, not a hang', async (t) => {
  const fwd = await startStepForwarder({ proxy: 'http://127.0.0.1:9', id: 's', token: 't'.repeat(32), log: createLogger('error', 'test', () => undefined) });
  t.after(() => fwd.stop());
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: fwd.host, port: fwd.port, path: 'http://example.invalid/x', timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 502);
  assert.match(body, /htvend step forwarder: .*ECONNREFUSED/);
});
