/**
 * Per-step attribution (docs/build-cache.md): clients that carry a step's credentials in the
 * proxy URL are credited with what they fetched; the control channel answers only to the
 * session secret; credentials never reach the upstream or assets.json; requests without
 * (valid) credentials are served and counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startBench, type Bench } from './harness.js';
import { sendBody } from '../helpers/https-upstream.js';
import { run } from '../helpers/cli.js';
import { stepProxyUrl, identify, stepToken } from '../../src/proxy/attribution/identity.js';
import { which } from '../e2e/harness.js';

function control(b: Bench, path: string, secret: string | null = b.proxy.session.secret): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, b.proxy.session.controlUrl), { headers: secret ? { Authorization: `Bearer ${secret}` } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('step tokens verify only for their own id and session', () => {
  const header = (id: string, token: string) => `Basic ${Buffer.from(`${id}:${token}`).toString('base64')}`;
  assert.deepEqual(identify(header('s1', stepToken('k', 's1')), 'k'), { kind: 'step', id: 's1' });
  assert.equal(identify(header('s2', stepToken('k', 's1')), 'k').kind, 'invalid');
  assert.equal(identify(header('s1', stepToken('other', 's1')), 'k').kind, 'invalid');
  assert.equal(identify(undefined, 'k').kind, 'none');
  assert.match(stepProxyUrl('http://127.0.0.1:3128', 'k', 's1'), /^http:\/\/s1:[0-9a-f]{32}@127\.0\.0\.1:3128$/);
});

test('curl with step credentials is credited with its HTTPS and HTTP downloads; upstream never sees them', async (t) => {
  const b = await startBench(t);
  b.up.route('/a.txt', sendBody('alpha\n'));
  b.up.route('/b.txt', sendBody('bravo!\n'));
  const proxy = stepProxyUrl(b.proxy.url, b.proxy.session.secret, 'step-1');
  for (const url of [`${b.up.https}/a.txt`, `${b.up.http}/b.txt`]) {
    const r = await run(['curl', '-sSf', '-x', proxy, '--cacert', b.caFile, url], { env: { PATH: process.env['PATH'] } });
    assert.equal(r.code, 0, r.stderr);
  }
  const rep = await control(b, 'steps/step-1');
  assert.equal(rep.status, 200);
  assert.deepEqual(rep.body.assets.map((a: { key: string; size: number; status: string }) => [a.key, a.size, a.status]), [
    [`${b.up.http}/b.txt`, 7, 'recorded'],
    [`${b.up.https}/a.txt`, 6, 'recorded'],
  ]);
  assert.equal(rep.body.assets[1].sha256, (await b.entry(`${b.up.https}/a.txt`)).Sha256);
  assert.equal(b.up.lastHeaders('/a.txt')?.['proxy-authorization'], undefined);
  assert.equal(b.up.lastHeaders('/b.txt')?.['proxy-authorization'], undefined);
  assert.ok(!b.logs.join('').includes(b.proxy.session.secret), 'the secret is never logged');
  // A replay is credited too, to the step that asked.
  const again = await run(['curl', '-sSf', '-x', stepProxyUrl(b.proxy.url, b.proxy.session.secret, 'step-2'), '--cacert', b.caFile, `${b.up.https}/a.txt`], { env: { PATH: process.env['PATH'] } });
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual((await control(b, 'steps/step-2')).body.assets.map((a: { status: string }) => a.status), ['replayed']);
});

test('requests without or with wrong credentials are served, never credited, and counted', async (t) => {
  const b = await startBench(t);
  b.up.route('/c.txt', sendBody('charlie\n'));
  const before = (await control(b, 'session')).body.unattributed as number;
  const plain = await run(['curl', '-sSf', '-x', b.proxy.url, '--cacert', b.caFile, `${b.up.https}/c.txt`], { env: { PATH: process.env['PATH'] } });
  assert.equal(plain.stdout, 'charlie\n');
  const forged = new URL(b.proxy.url);
  forged.username = 'step-9';
  forged.password = 'not-the-token';
  const wrong = await run(['curl', '-sSf', '-x', forged.href, '--cacert', b.caFile, `${b.up.https}/c.txt`], { env: { PATH: process.env['PATH'] } });
  assert.equal(wrong.stdout, 'charlie\n', wrong.stderr);
  assert.equal((await control(b, 'session')).body.unattributed, before + 2);
  assert.deepEqual((await control(b, 'steps/step-9')).body.assets, []);
});

test('the control channel refuses requests without the session secret', async (t) => {
  const b = await startBench(t);
  assert.equal((await control(b, 'session', null)).status, 401);
  assert.equal((await control(b, 'session', 'x'.repeat(64))).status, 401);
  assert.equal((await control(b, 'session')).body.mode, 'build');
});

test('GNU wget and busybox wget send the step credentials (plain and CONNECT)', { skip: which('wget') && which('busybox') ? false : 'wget/busybox missing' }, async (t) => {
  const b = await startBench(t);
  b.up.route('/w.txt', sendBody('wget me\n'));
  b.up.route('/bb.txt', sendBody('busybox me\n'));
  const gnu = await run(['wget', '-q', '-O', '-', '--ca-certificate', b.caFile, `${b.up.https}/w.txt`], {
    env: { PATH: process.env['PATH'], https_proxy: stepProxyUrl(b.proxy.url, b.proxy.session.secret, 'gnu'), HOME: '/nonexistent' },
  });
  assert.equal(gnu.stdout, 'wget me\n', gnu.stderr);
  const bb = await run(['busybox', 'wget', '-q', '-O', '-', `${b.up.http}/bb.txt`], { env: { PATH: process.env['PATH'], http_proxy: stepProxyUrl(b.proxy.url, b.proxy.session.secret, 'bb') } });
  assert.equal(bb.stdout, 'busybox me\n', bb.stderr);
  assert.deepEqual((await control(b, 'steps/gnu')).body.assets.map((a: { key: string }) => a.key), [`${b.up.https}/w.txt`]);
  assert.deepEqual((await control(b, 'steps/bb')).body.assets.map((a: { key: string }) => a.key), [`${b.up.http}/bb.txt`]);
});
