/**
 * Proxy/CA injection (SPEC §4, §7): the step sees the proxy vars, the CA at the SSL_CERT_FILE
 * path with every CA variable pointing at it, the truststore and Maven settings at their
 * paths, SOURCE_DATE_EPOCH; the layer holds none of it, nor any mountpoint the runtime made.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { executeRun } from '../../../src/builder/run/execute.js';
import { COMMON_CA_VARS } from '../../../src/builder/run/inject.js';
import { proxyInjectionFromEnv } from '../../../src/builder/run/proxy-env.js';
import { tempDir } from '../../helpers/tmp.js';
import { collector, makeBusyboxRootfs, names, readLayer, request } from './helpers.js';

for (const snapshot of ['overlay', 'copy'] as const) {
  test(`${snapshot}: injected proxy env, CA, truststore and Maven settings are visible to the step and absent from its layer`, async (t) => {
    const tmp = await tempDir(t, 'htvend-run-');
    const rootfs = await makeBusyboxRootfs(join(tmp, 'rootfs'));
    const ca = join(tmp, 'ca.pem');
    const jks = join(tmp, 'truststore.p12');
    const mvn = join(tmp, 'settings.xml');
    await writeFile(ca, '-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n');
    await writeFile(jks, 'p12');
    await writeFile(mvn, '<settings/>');
    const caTarget = '/run/htvend/ca.pem'; // what proxy-env.ts picks: missing in the image
    const script = [
      `cat ${caTarget}`,
      ...['SSL_CERT_FILE', 'MY_CA', ...COMMON_CA_VARS].map((v) => `echo ${v}=$${v}`),
      'echo "$HTTPS_PROXY $http_proxy [$NO_PROXY] $SOURCE_DATE_EPOCH"',
      'cat /opt/java/lib/security/cacerts /etc/ssl/certs/java/cacerts /root/.m2/settings.xml; echo',
      // The step's own work next to an injected file must survive; the injected file must not.
      'echo mine > /opt/java/lib/security/other',
      'echo real > /root/real',
    ].join('; ');
    const out = collector();
    const r = await executeRun(
      request(rootfs, tmp, ['/bin/sh', '-c', script], {
        epoch: 42,
        proxyEnv: {
          caFile: ca,
          caTarget,
          certFileVars: ['SSL_CERT_FILE', 'MY_CA'],
          env: { HTTP_PROXY: 'http://127.0.0.1:9999', HTTPS_PROXY: 'http://127.0.0.1:9999', http_proxy: 'http://127.0.0.1:9999', https_proxy: 'http://127.0.0.1:9999', NO_PROXY: '', no_proxy: '' },
          jks: { hostFile: jks, targets: ['/opt/java/lib/security/cacerts', '/etc/ssl/certs/java/cacerts'] },
          mvnSettings: { hostFile: mvn, targets: ['/root/.m2/settings.xml'] },
        },
        output: out.stream,
      }),
      { snapshot },
    );
    const lines = out.text().split('\n');
    assert.equal(lines.slice(0, 3).join('\n'), '-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----');
    for (const v of ['SSL_CERT_FILE', 'MY_CA', ...COMMON_CA_VARS]) assert.ok(lines.includes(`${v}=${caTarget}`), `${v} points at the CA`);
    assert.ok(lines.includes('http://127.0.0.1:9999 http://127.0.0.1:9999 [] 42'));
    assert.ok(lines.includes('p12p12<settings/>'));
    const layer = names(await readLayer(r.layer!));
    assert.deepEqual(layer, ['opt', 'opt/java', 'opt/java/lib', 'opt/java/lib/security', 'opt/java/lib/security/other', 'root', 'root/real']);
  });
}

test('a step that only ran with injected mounts (CA, /etc/resolv.conf, /etc/hosts, /proc, /dev, /sys) leaves no layer', async (t) => {
  const tmp = await tempDir(t, 'htvend-run-');
  const rootfs = await makeBusyboxRootfs(join(tmp, 'rootfs'));
  const ca = join(tmp, 'ca.pem');
  await writeFile(ca, 'pem');
  const out = collector();
  const r = await executeRun(
    request(rootfs, tmp, ['/bin/sh', '-c', 'test -s /etc/resolv.conf -o -e /etc/resolv.conf && test -e /etc/hosts && test -d /proc/self && cat /etc/ssl/certs/ca-certificates.crt'], {
      proxyEnv: { caFile: ca, caTarget: '/etc/ssl/certs/ca-certificates.crt', certFileVars: ['SSL_CERT_FILE'], env: {} },
      output: out.stream,
    }),
  );
  assert.equal(out.text(), 'pem');
  assert.equal(r.layer, null);
});

test('the CA of SSL_CERT_FILE (host path under /tmp) sits under /run/htvend/: `rm -rf /tmp/* /var/tmp/*` works and no /run stub reaches the layer', async (t) => {
  const tmp = await tempDir(t, 'htvend-run-');
  const rootfs = await makeBusyboxRootfs(join(tmp, 'rootfs'));
  await writeFile(join(rootfs, 'tmp', 'junk'), 'x');
  const ca = join(tmp, 'cacerts.pem');
  await writeFile(ca, 'pem');
  const proxyEnv = await proxyInjectionFromEnv({ SSL_CERT_FILE: ca, CERT_FILE_VARS: 'SSL_CERT_FILE MY_CA' }, tmp);
  const out = collector();
  const r = await executeRun(request(rootfs, tmp, ['/bin/sh', '-c', 'rm -rf /tmp/* /var/tmp/* && echo "$SSL_CERT_FILE $MY_CA" && cat "$MY_CA"'], { proxyEnv, output: out.stream }));
  assert.equal(out.text(), '/run/htvend/cacerts.pem /run/htvend/cacerts.pem\npem');
  const layer = await readLayer(r.layer!);
  assert.deepEqual(names(layer), ['tmp', 'tmp/.wh.junk']);
});

test('apt: the step gets APT_CONFIG (a read-only file next to the CA) unless its env sets APT_CONFIG; neither reaches the layer', async (t) => {
  const tmp = await tempDir(t, 'htvend-run-');
  const rootfs = await makeBusyboxRootfs(join(tmp, 'rootfs'));
  const ca = join(tmp, 'ca.pem');
  await writeFile(ca, 'pem');
  const proxyEnv = await proxyInjectionFromEnv({ SSL_CERT_FILE: ca }, tmp);
  const script = 'echo "cfg=$APT_CONFIG"; cat "$APT_CONFIG" 2>/dev/null; (echo x >> /run/htvend/apt.conf) 2>/dev/null && echo writable; ls /run/htvend';
  const out = collector();
  const r = await executeRun(request(rootfs, tmp, ['/bin/sh', '-c', script], { proxyEnv, output: out.stream }));
  assert.equal(out.text(), 'cfg=/run/htvend/apt.conf\nAcquire::https::CaInfo "/run/htvend/ca.pem";\napt.conf\nca.pem\n');
  assert.equal(r.layer, null, 'the mountpoints made for the CA and the apt config are not in the layer');

  const own = collector();
  const r2 = await executeRun(request(rootfs, tmp, ['/bin/sh', '-c', 'echo "cfg=$APT_CONFIG"; ls /run/htvend'], { proxyEnv, env: ['PATH=/bin', 'APT_CONFIG=/etc/my-apt.conf'], output: own.stream }));
  assert.equal(own.text(), 'cfg=/etc/my-apt.conf\nca.pem\n', 'the step\'s own APT_CONFIG stays, and no apt config is mounted');
  assert.equal(r2.layer, null);
});
