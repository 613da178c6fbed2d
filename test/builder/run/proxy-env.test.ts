/** The builder's env → RUN injection, with the original wrapper's variable meanings. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HtvendError } from '../../../src/util/errors.js';
import { aptConfigFor, mavenSettingsXml, proxyInjectionFromEnv } from '../../../src/builder/run/proxy-env.js';
import { tempDir } from '../../helpers/tmp.js';

test('SSL_CERT_FILE is mounted under /run/htvend/ (never its host path under /tmp) with CERT_FILE_VARS (default SSL_CERT_FILE) and proxy vars passed through, blank NO_PROXY included', async (t) => {
  const dir = await tempDir(t);
  const ca = join(dir, 'ca.pem');
  await writeFile(ca, 'pem');
  const inj = await proxyInjectionFromEnv({ SSL_CERT_FILE: ca, HTTPS_PROXY: 'http://127.0.0.1:1234', NO_PROXY: '', ALL_PROXY: 'socks5://x', PATH: '/bin' }, dir);
  assert.deepEqual(inj, { caFile: ca, caTarget: '/run/htvend/ca.pem', certFileVars: ['SSL_CERT_FILE'], env: { HTTPS_PROXY: 'http://127.0.0.1:1234', NO_PROXY: '' }, aptConfig: { hostFile: join(dir, 'apt.conf'), target: '/run/htvend/apt.conf' } });
});

test('apt gets an APT_CONFIG of one line naming the CA inside the container (no #include: apt reads /etc/apt itself, and a missing #include is fatal to apt)', async (t) => {
  const dir = await tempDir(t);
  const ca = join(dir, 'ca.pem');
  await writeFile(ca, 'pem');
  const inj = await proxyInjectionFromEnv({ SSL_CERT_FILE: ca }, dir);
  assert.equal(await readFile(inj.aptConfig!.hostFile, 'utf8'), 'Acquire::https::CaInfo "/run/htvend/ca.pem";\n');
  assert.equal((await proxyInjectionFromEnv({}, dir)).aptConfig, undefined, 'no CA, no apt config');
  // A CA itself named apt.conf does not collide with it.
  const sub = join(dir, 'sub');
  await mkdir(sub);
  await writeFile(join(sub, 'apt.conf'), 'pem');
  const named = await proxyInjectionFromEnv({ SSL_CERT_FILE: join(sub, 'apt.conf') }, dir);
  assert.equal(named.caTarget, '/run/htvend/apt.conf');
  assert.equal(named.aptConfig!.target, '/run/htvend/htvend-apt.conf');
  // An apt string cannot hold a double quote: no apt config rather than a broken one.
  const quoted = join(dir, 'a"b.pem');
  await writeFile(quoted, 'pem');
  assert.equal((await proxyInjectionFromEnv({ SSL_CERT_FILE: quoted }, dir)).aptConfig, undefined);
});

test('aptConfigFor: none when the step sets APT_CONFIG itself (ENV or ARG, even blank)', () => {
  const p = { aptConfig: { hostFile: '/h/apt.conf', target: '/run/htvend/apt.conf' } };
  assert.deepEqual(aptConfigFor(p, ['PATH=/bin']), p.aptConfig);
  assert.equal(aptConfigFor(p, ['PATH=/bin', 'APT_CONFIG=/etc/mine.conf']), undefined);
  assert.equal(aptConfigFor(p, ['APT_CONFIG=']), undefined);
  assert.equal(aptConfigFor({}, ['PATH=/bin']), undefined);
});

test('an empty CERT_FILE_VARS still mounts the CA under SSL_CERT_FILE (the script\'s ${CERT_FILE_VARS:-SSL_CERT_FILE}); a list names every variable', async (t) => {
  const dir = await tempDir(t);
  const ca = join(dir, 'ca.pem');
  await writeFile(ca, 'pem');
  const empty = await proxyInjectionFromEnv({ SSL_CERT_FILE: ca, CERT_FILE_VARS: '' }, dir);
  assert.equal(empty.caFile, ca);
  assert.deepEqual(empty.certFileVars, ['SSL_CERT_FILE']);
  assert.deepEqual((await proxyInjectionFromEnv({ SSL_CERT_FILE: ca, CERT_FILE_VARS: 'A  B' }, dir)).certFileVars, ['A', 'B']);
  assert.equal((await proxyInjectionFromEnv({ CERT_FILE_VARS: 'A' }, dir)).caFile, undefined, 'no SSL_CERT_FILE, no CA mount');
});

test('a relative SSL_CERT_FILE is made absolute and a missing one is a usage error naming it', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'ca.pem'), 'pem');
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    assert.equal((await proxyInjectionFromEnv({ SSL_CERT_FILE: 'ca.pem' }, dir)).caFile, join(dir, 'ca.pem'));
  } finally {
    process.chdir(cwd);
  }
  await assert.rejects(proxyInjectionFromEnv({ SSL_CERT_FILE: join(dir, 'nope.pem') }, dir), (e: unknown) => e instanceof HtvendError && e.code === 'USAGE' && /SSL_CERT_FILE=.*nope\.pem: no such file/.test(e.message));
});

test('JKS_KEYSTORE_PATH mounts JKS_KEYSTORE_FILE at each path and MVN_SETTINGS_PATH gets a settings.xml with the proxy', async (t) => {
  const dir = await tempDir(t);
  const inj = await proxyInjectionFromEnv(
    { JKS_KEYSTORE_PATH: '/a/cacerts /b/cacerts', JKS_KEYSTORE_FILE: '/tmp/ts.p12', MVN_SETTINGS_PATH: '/root/.m2/settings.xml', HTTP_PROXY: 'http://127.0.0.1:4567' },
    dir,
  );
  assert.deepEqual(inj.jks, { hostFile: '/tmp/ts.p12', targets: ['/a/cacerts', '/b/cacerts'] });
  assert.deepEqual(inj.mvnSettings?.targets, ['/root/.m2/settings.xml']);
  const xml = await readFile(inj.mvnSettings!.hostFile, 'utf8');
  assert.match(xml, /<host>127\.0\.0\.1<\/host>\s*<port>4567<\/port>/);
  await assert.rejects(proxyInjectionFromEnv({ JKS_KEYSTORE_PATH: '/a' }, dir), /JKS_KEYSTORE_FILE/);
});

test('Maven settings take host and port from HTTP_PROXY with or without a scheme', () => {
  assert.match(mavenSettingsXml('proxy.local:3128'), /<host>proxy\.local<\/host>\s*<port>3128<\/port>/);
  assert.match(mavenSettingsXml('http://[::1]:8080/'), /<host>::1<\/host>\s*<port>8080<\/port>/);
});
