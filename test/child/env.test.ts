import { test } from 'node:test';
import assert from 'node:assert/strict';
import { childEnvOverrides, childEnvironment, exportLines, isCaFileVar, proxyUrl, shellQuote, type ChildEnvInput } from '../../src/child/env.js';

const base: ChildEnvInput = {
  proxyHost: '127.0.0.1',
  proxyPort: 4567,
  caPemPath: '/tmp/h/cacerts.pem',
  truststorePath: '/tmp/h/truststore.p12',
  httpProxyVars: ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy'],
  noProxyVars: ['NO_PROXY', 'no_proxy'],
  certFileVars: ['SSL_CERT_FILE'],
  jksKeystoreVars: ['JKS_KEYSTORE_FILE'],
  tempDirs: [],
  extraCaVars: true,
  javaToolOptions: true,
};

test('sets the proxy vars to the loopback proxy URL and blanks the no-proxy vars', () => {
  const env = Object.fromEntries(childEnvOverrides({ NO_PROXY: 'corp.example' }, base));
  for (const n of base.httpProxyVars) assert.equal(env[n], 'http://127.0.0.1:4567');
  assert.equal(env['NO_PROXY'], '');
  assert.equal(env['no_proxy'], '');
});

test('points SSL_CERT_FILE, the common CA vars and CA vars set in the parent at our PEM', () => {
  const parent = {
    SSL_CERT_DIR: '/etc/ssl/certs',
    HTTPLIB2_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt',
    GRPC_DEFAULT_SSL_ROOTS_FILE_PATH: '/etc/ssl/certs/ca-certificates.crt',
    NIX_SSL_CERT_FILE: '/etc/ssl/certs/ca-certificates.crt',
    MY_TOOL_CA_BUNDLE: '/opt/ca.pem',
    CA_VERIFY: '0',
    HOME: '/root',
  };
  const env = Object.fromEntries(childEnvOverrides(parent, base));
  for (const n of ['SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'PIP_CERT', 'GIT_SSL_CAINFO', 'AWS_CA_BUNDLE', 'CARGO_HTTP_CAINFO']) {
    assert.equal(env[n], '/tmp/h/cacerts.pem', n);
  }
  for (const n of ['HTTPLIB2_CA_CERTS', 'GRPC_DEFAULT_SSL_ROOTS_FILE_PATH', 'NIX_SSL_CERT_FILE', 'MY_TOOL_CA_BUNDLE']) assert.equal(env[n], '/tmp/h/cacerts.pem', n);
  assert.equal(env['SSL_CERT_DIR'], undefined, 'a directory variable is left alone');
  assert.equal(env['CA_VERIFY'], undefined, 'a non-path value is not a CA file');
  assert.equal(env['HOME'], undefined);
});

test('extra CA vars can be turned off, leaving only the --set-env-var-ssl-cert-file list', () => {
  const env = Object.fromEntries(childEnvOverrides({ CURL_CA_BUNDLE: '/x.pem' }, { ...base, extraCaVars: false, certFileVars: ['A', 'B'] }));
  assert.equal(env['A'], '/tmp/h/cacerts.pem');
  assert.equal(env['B'], '/tmp/h/cacerts.pem');
  assert.equal(env['SSL_CERT_FILE'], undefined);
  assert.equal(env['CURL_CA_BUNDLE'], undefined);
});

test('points JKS_KEYSTORE_FILE at the truststore and appends Java properties to JAVA_TOOL_OPTIONS', () => {
  const env = Object.fromEntries(childEnvOverrides({ JAVA_TOOL_OPTIONS: '-Xmx64m' }, base));
  assert.equal(env['JKS_KEYSTORE_FILE'], '/tmp/h/truststore.p12');
  assert.equal(
    env['JAVA_TOOL_OPTIONS'],
    '-Xmx64m -Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=4567 -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=4567 -Dhttp.nonProxyHosts= -Djavax.net.ssl.trustStore=/tmp/h/truststore.p12 -Djavax.net.ssl.trustStoreType=PKCS12',
  );
  const off = Object.fromEntries(childEnvOverrides({ JAVA_TOOL_OPTIONS: '-Xmx64m' }, { ...base, javaToolOptions: false }));
  assert.equal(off['JAVA_TOOL_OPTIONS'], undefined);
});

test('sets each -t name to its directory, and keeps the Go order of overrides', () => {
  const o = childEnvOverrides({}, { ...base, extraCaVars: false, javaToolOptions: false, tempDirs: [['GOCACHE', '/tmp/h/tmp/GOCACHE']] });
  assert.deepEqual(
    o.map(([k]) => k),
    ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'NO_PROXY', 'no_proxy', 'SSL_CERT_FILE', 'GOCACHE', 'JKS_KEYSTORE_FILE'],
  );
  assert.deepEqual(o[7], ['GOCACHE', '/tmp/h/tmp/GOCACHE']);
});

test('childEnvironment overlays the overrides on the parent', () => {
  const env = childEnvironment({ PATH: '/bin', HTTP_PROXY: 'http://corp:3128', GONE: undefined }, [['HTTP_PROXY', 'http://127.0.0.1:1']]);
  assert.deepEqual(env, { PATH: '/bin', HTTP_PROXY: 'http://127.0.0.1:1' });
});

test('export lines are single-quoted so any value survives the shell', async () => {
  const lines = exportLines([['A', "it's $HOME `x`"], ['NO_PROXY', '']]);
  assert.equal(lines, `export A='it'\\''s $HOME \`x\`'\nexport NO_PROXY=''\n`);
  const { execFileSync } = await import('node:child_process');
  const out = execFileSync('sh', ['-c', `${lines} printf '%s|%s' "$A" "$NO_PROXY"`], { encoding: 'utf8' });
  assert.equal(out, "it's $HOME `x`|");
  assert.equal(shellQuote(''), "''");
});

test('proxy URLs bracket IPv6 hosts', () => {
  assert.equal(proxyUrl('::1', 80), 'http://[::1]:80');
  assert.equal(proxyUrl('127.0.0.1', 80), 'http://127.0.0.1:80');
});

test('isCaFileVar recognises bundle variables by name and path-like value', () => {
  assert.equal(isCaFileVar('REQUESTS_CA_BUNDLE', '/etc/ssl/x.crt'), true);
  assert.equal(isCaFileVar('npm_config_cafile', '/x/ca.pem'), true);
  assert.equal(isCaFileVar('SSL_CERT_DIR', '/etc/ssl/certs'), false);
  assert.equal(isCaFileVar('CARGO_HTTP_CAINFO', ''), false);
  assert.equal(isCaFileVar('LOCALE', '/x'), false);
});

test('WGETRC and APT_CONFIG point at the tool configs, with the extra CA vars only', () => {
  const toolConfigs = { wgetrc: '/tmp/h/wgetrc', aptConfig: '/tmp/h/apt.conf' };
  const env = Object.fromEntries(childEnvOverrides({}, { ...base, toolConfigs }));
  assert.equal(env['WGETRC'], '/tmp/h/wgetrc');
  assert.equal(env['APT_CONFIG'], '/tmp/h/apt.conf');
  const off = Object.fromEntries(childEnvOverrides({}, { ...base, toolConfigs, extraCaVars: false }));
  assert.equal(off['WGETRC'], undefined);
});
