import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { clientEnvOverrides, userCurlrc, writeClientConfigs } from '../../src/child/client-configs/index.js';
import { childEnvOverrides, type ChildEnvInput } from '../../src/child/env.js';
import { tempDir } from '../helpers/tmp.js';

const input = { caPemPath: '/p/cacerts.pem', proxyUrl: 'http://127.0.0.1:4567' };

test('variables that beat npmrc, .yarnrc.yml, pip.conf and cargo config name our CA and proxy', () => {
  const env = Object.fromEntries(clientEnvOverrides({}, input));
  assert.equal(env['npm_config_cafile'], '/p/cacerts.pem');
  assert.equal(env['npm_config_https_proxy'], 'http://127.0.0.1:4567');
  assert.equal(env['npm_config_noproxy'], '');
  assert.equal(env['YARN_HTTPS_CA_FILE_PATH'], '/p/cacerts.pem');
  assert.equal(env['YARN_HTTPS_PROXY'], 'http://127.0.0.1:4567');
  assert.equal(env['PIP_PROXY'], 'http://127.0.0.1:4567');
  assert.equal(env['CARGO_HTTP_PROXY'], 'http://127.0.0.1:4567');
  // yarn berry refuses to start with a setting it does not know in its environment.
  assert.equal(env['YARN_CAFILE'], undefined);
});

test('git gets http.proxy as a command-line-scope setting after the pairs the parent already has', () => {
  assert.deepEqual(Object.fromEntries(clientEnvOverrides({}, input).filter(([k]) => k.startsWith('GIT_CONFIG'))), {
    GIT_CONFIG_KEY_0: 'http.proxy',
    GIT_CONFIG_VALUE_0: 'http://127.0.0.1:4567',
    GIT_CONFIG_COUNT: '1',
  });
  const env = Object.fromEntries(clientEnvOverrides({ GIT_CONFIG_COUNT: '2', GIT_CONFIG_KEY_0: 'a.b', GIT_CONFIG_VALUE_0: 'c' }, input));
  assert.equal(env['GIT_CONFIG_KEY_2'], 'http.proxy');
  assert.equal(env['GIT_CONFIG_COUNT'], '3');
  assert.equal(env['GIT_CONFIG_KEY_0'], undefined, "the parent's own pairs are kept as they are");
  assert.equal(Object.keys(Object.fromEntries(clientEnvOverrides({ GIT_CONFIG_COUNT: 'x' }, input))).filter((k) => k.startsWith('GIT_CONFIG')).length, 0);
});

test('the client variables come with the extra CA vars, before JAVA_TOOL_OPTIONS, and never replace an explicit list', () => {
  const base: ChildEnvInput = {
    proxyHost: '127.0.0.1',
    proxyPort: 4567,
    caPemPath: '/p/cacerts.pem',
    truststorePath: '/p/truststore.p12',
    toolConfigs: { wgetrc: '/p/wgetrc', aptConfig: '/p/apt.conf', curlHome: '/p/curl' },
    httpProxyVars: ['HTTPS_PROXY', 'PIP_PROXY'],
    noProxyVars: [],
    certFileVars: ['SSL_CERT_FILE'],
    jksKeystoreVars: [],
    tempDirs: [],
    extraCaVars: true,
    javaToolOptions: true,
  };
  const o = childEnvOverrides({}, base);
  const names = o.map(([k]) => k);
  assert.equal(names.at(-1), 'JAVA_TOOL_OPTIONS');
  assert.equal(names.filter((n) => n === 'PIP_PROXY').length, 1);
  const env = Object.fromEntries(o);
  assert.equal(env['CURL_HOME'], '/p/curl');
  assert.equal(env['WGETRC'], '/p/wgetrc');
  assert.equal(env['npm_config_cafile'], '/p/cacerts.pem');
  const off = Object.fromEntries(childEnvOverrides({}, { ...base, extraCaVars: false }));
  for (const n of ['CURL_HOME', 'npm_config_cafile', 'GIT_CONFIG_COUNT']) assert.equal(off[n], undefined, n);
});

test('the .curlrc copy is the first one curl would read ($CURL_HOME, $XDG_CONFIG_HOME, $HOME) plus our lines', async (t) => {
  const d = await tempDir(t);
  for (const s of ['curlhome', 'xdg', 'home', 'private']) await mkdir(join(d, s));
  await writeFile(join(d, 'home', '.curlrc'), 'user-agent = "from-home"');
  await writeFile(join(d, 'xdg', '.curlrc'), 'user-agent = "from-xdg"\n');
  assert.equal(await userCurlrc({ HOME: join(d, 'home'), XDG_CONFIG_HOME: join(d, 'xdg') }), 'user-agent = "from-xdg"\n');
  assert.equal(await userCurlrc({ HOME: join(d, 'home'), CURL_HOME: join(d, 'curlhome') }), 'user-agent = "from-home"');
  assert.equal(await userCurlrc({}), '');

  const files = await writeClientConfigs({ dir: join(d, 'private'), caPemPath: '/p/ca "x".pem', proxyUrl: 'http://127.0.0.1:1', parentEnv: { HOME: join(d, 'home') } });
  assert.equal(files.curlHome, join(d, 'private', 'curl'));
  assert.equal(
    await readFile(join(files.curlHome!, '.curlrc'), 'utf8'),
    'user-agent = "from-home"\n# added by htvend\ncacert = "/p/ca \\"x\\".pem"\nproxy = "http://127.0.0.1:1"\nnoproxy = ""\n',
  );
  assert.match(await readFile(files.wgetrc, 'utf8'), /^ca_certificate = \/p\/ca "x"\.pem\nuse_proxy = on\nhttp_proxy = http:\/\/127\.0\.0\.1:1\nhttps_proxy = http:\/\/127\.0\.0\.1:1\nno_proxy = \n$/m);
});
