/**
 * SPEC §7 end to end: a real `build-img-with-proxy` build whose RUN steps see the proxy
 * variables, the CA at the SSL_CERT_FILE path, the truststore, the Maven settings and every
 * mount type; then every layer of the image (listed by GNU tar) and its config (read by
 * skopeo) are checked: no CA file, no mountpoint stub, no proxy or CA variable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startBusyboxRegistry } from '../../helpers/busybox-image.js';
import { makeCert } from '../../helpers/registry-server.js';
import { run, runCli } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/tmp.js';

test('nothing the builder injects into RUN steps reaches any layer or the image config', async (t) => {
  const bb = await startBusyboxRegistry(t);
  const work = await tempDir(t, 'htvend-noleak-');
  // Like htvend: the CA lives in a private temp dir that the image does not have.
  const caDir = join(work, 'htvend-priv');
  await mkdir(caDir);
  const { cert: caFile } = await makeCert(caDir, 'fake-htvend-ca');
  await writeFile(join(caDir, 'truststore.p12'), 'p12');
  await writeFile(join(work, 'token'), 'tok-value');
  const ctx = join(work, 'ctx');
  await mkdir(ctx);
  await writeFile(join(ctx, 'input.txt'), 'input\n');
  await writeFile(
    join(ctx, 'Dockerfile'),
    [
      `FROM ${bb.ref}`,
      'USER app',
      'RUN test -n "$HTTP_PROXY" && test -n "$https_proxy" && grep -q "BEGIN CERTIFICATE" "$SSL_CERT_FILE" \\',
      '    && test "$NODE_EXTRA_CA_CERTS" = "$SSL_CERT_FILE" && test "$CURL_CA_BUNDLE" = "$SSL_CERT_FILE" \\',
      '    && test "$SOURCE_DATE_EPOCH" = 0 && case "$SSL_CERT_FILE" in /run/htvend/*) ;; *) exit 3;; esac \\',
      '    && test "$(cat "$APT_CONFIG")" = "Acquire::https::CaInfo \\"$SSL_CERT_FILE\\";" \\',
      // The CA's host path is under /tmp: the image's own cleanup of /tmp must not hit it (issue 9).
      '    && rm -rf /tmp/* /var/tmp/* && touch /tmp/proxy-and-ca-seen',
      'USER root',
      'RUN --mount=type=secret,id=tok,required --mount=type=secret,id=tok,env=TOK --mount=type=cache,target=/var/cache/c \\',
      '    --mount=type=tmpfs,target=/scratch --mount=type=bind,target=/ctx \\',
      '    test "$(cat /run/secrets/tok)" = tok-value && test "$TOK" = tok-value && cat /ctx/input.txt > /from-ctx \\',
      '    && test -s /opt/java/cacerts && grep -q "<proxy>" /root/.m2/settings.xml && touch /var/cache/c/x /scratch/y',
    ].join('\n'),
  );
  const env = {
    ...process.env,
    SSL_CERT_FILE: caFile,
    HTTP_PROXY: 'http://127.0.0.1:9',
    HTTPS_PROXY: 'http://127.0.0.1:9',
    http_proxy: 'http://127.0.0.1:9',
    https_proxy: 'http://127.0.0.1:9',
    // The registry is reached directly here; only RUN steps are meant to see the (dead) proxy.
    NO_PROXY: '127.0.0.1',
    no_proxy: '127.0.0.1',
    JKS_KEYSTORE_FILE: join(caDir, 'truststore.p12'),
    JKS_KEYSTORE_PATH: '/opt/java/cacerts',
    MVN_SETTINGS_PATH: '/root/.m2/settings.xml',
    SOURCE_DATE_EPOCH: '0',
  };
  const out = join(work, 'image');
  const r = await runCli('build-img-with-proxy', ['--tls-verify=false', '--platform', 'linux/amd64', '--secret', `id=tok,src=${join(work, 'token')}`, '-t', `oci:${out}:img`, ctx], {
    env,
    timeoutMs: 180_000,
  });
  assert.equal(r.code, 0, r.stderr);

  const config = JSON.parse((await run(['skopeo', 'inspect', '--config', `oci:${out}:img`])).stdout);
  const leakedVars = (config.config.Env as string[]).filter((e) => /PROXY|CA_BUNDLE|CA_CERTS|CAINFO|SSL_CERT|PIP_CERT|APT_CONFIG|SOURCE_DATE_EPOCH|TOK=/i.test(e));
  assert.deepEqual(leakedVars, []);

  const manifest = JSON.parse((await run(['skopeo', 'inspect', '--raw', `oci:${out}:img`])).stdout);
  const layers = manifest.layers as { digest: string }[];
  assert.equal(layers.length, 3, 'base + two RUN layers');
  const names: string[] = [];
  for (const l of layers.slice(1)) {
    const list = await run(['tar', '-tzf', join(out, 'blobs', 'sha256', l.digest.slice(7))]);
    assert.equal(list.code, 0, list.stderr);
    names.push(...list.stdout.split('\n').filter(Boolean).map((n) => n.replace(/^\.\//, '').replace(/\/$/, '')));
  }
  assert.deepEqual(names.sort(), ['from-ctx', 'tmp', 'tmp/proxy-and-ca-seen']);
  // And the CA bytes themselves are nowhere in the image blobs.
  const caBody = (await readFile(caFile, 'utf8')).split('\n')[1]!;
  for (const l of layers) {
    const content = await run(['sh', '-c', `tar -xOzf ${join(out, 'blobs', 'sha256', l.digest.slice(7))} | grep -c -F -e '${caBody}' || true`]);
    assert.equal(content.stdout.trim(), '0');
  }
});
