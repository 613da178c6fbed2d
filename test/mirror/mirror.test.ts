/**
 * `htvend mirror` end to end: images recorded by `htvend build -- skopeo copy …` from a real
 * docker-registry, which is then stopped; skopeo (registries.conf mirror), containerd (`ctr
 * images pull --hosts-dir`) and curl pull from the mirror. Plus: a multi-platform index,
 * unrecorded tags and blobs (404 + OCI error body), Range, TLS, a corrupt blob (the pull
 * fails; nothing wrong is ever accepted), and skopeo inside `unshare -n`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, readFile, readdir, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { cliCommand, run } from '../helpers/cli.js';
import { freePort } from '../helpers/registry-server.js';
import { canUnshare, q, which } from '../e2e/harness.js';
import { recordImages, sha256, startContainerd, startMirrorCli, type Recorded } from './harness.js';

function registriesConf(dir: string, upstream: string, mirrorHostPort: string): Promise<string> {
  const file = join(dir, `registries-${mirrorHostPort.replace(/\W/g, '_')}.conf`);
  const text = ['[[registry]]', `location = "${upstream}"`, '[[registry.mirror]]', `location = "${mirrorHostPort}"`, 'insecure = true', ''].join('\n');
  return writeFile(file, text).then(() => file);
}

async function ociIndexDigest(layout: string): Promise<string> {
  const idx = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  return idx.manifests[0]!.digest.replace(/^sha256:/, '');
}

test('htvend mirror serves recorded images to registry clients with the upstream gone', { timeout: 600_000 }, async (t) => {
  const dir = await tempDir(t, 'htvend-mirror-');
  const r: Recorded = await recordImages(t, dir);
  const keys = Object.keys(r.assets);
  assert.ok(keys.some((k) => k.includes('/v2/busybox/blobs/sha256:')), `blobs recorded: ${keys.join('\n')}`);
  const m = await startMirrorCli(t, r);

  await t.test('GET /v2/ answers 200 with the API version header', async () => {
    const res = await fetch(`${m.url}/v2/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  });

  await t.test('HEAD of a tag gives the recorded Content-Type and Docker-Content-Digest', async () => {
    const res = await fetch(`${m.url}/v2/busybox/manifests/latest?ns=${r.upstream}`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), `sha256:${r.indexDigest}`);
    assert.match(res.headers.get('content-type') ?? '', /application\/vnd\.(oci\.image\.(index|manifest)|docker\.distribution\.manifest)/);
  });

  await t.test('skopeo with a registries.conf mirror entry copies the recorded index unchanged', async () => {
    const conf = await registriesConf(dir, r.upstream, m.hostPort);
    const out = join(dir, 'skopeo-out');
    const res = await run(['skopeo', '--registries-conf', conf, 'copy', '--all', '-q', `docker://${r.upstream}/busybox:latest`, `oci:${out}:latest`], { env: r.env });
    assert.equal(res.code, 0, res.stderr + m.stderr());
    assert.equal(await ociIndexDigest(out), r.indexDigest);
  });

  await t.test('a multi-platform index: every platform manifest is served by digest', { skip: r.multiArch ? false : 'no arm64 busybox (offline machine)' }, async () => {
    const idx = JSON.parse(await readFile(join(r.blobs, r.indexDigest), 'utf8')) as { manifests: { digest: string; platform: { architecture: string } }[] };
    assert.deepEqual(idx.manifests.map((x) => x.platform.architecture).sort(), ['amd64', 'arm64']);
    for (const man of idx.manifests) {
      const res = await fetch(`${m.url}/v2/busybox/manifests/${man.digest}`);
      assert.equal(res.status, 200, man.digest);
      assert.equal(sha256(Buffer.from(await res.arrayBuffer())), man.digest.slice(7));
    }
  });

  await t.test('containerd pulls through --hosts-dir and gets the recorded manifest digest', { skip: which('containerd') ? false : 'containerd not installed' }, async (tt) => {
    const cdir = await tempDir(tt, 'htvend-containerd-');
    const cd = await startContainerd(tt, cdir);
    const hosts = join(cdir, 'hosts');
    await mkdir(join(hosts, r.upstream), { recursive: true });
    // `server` is the mirror too: no fallback to the real registry (docs/mirror.md).
    await writeFile(join(hosts, r.upstream, 'hosts.toml'), [`server = "${m.url}"`, '', `[host."${m.url}"]`, '  capabilities = ["pull", "resolve"]', ''].join('\n'));
    for (const [ref, digest, extra] of [
      [`${r.upstream}/busybox:latest`, r.indexDigest, ['--all-platforms']],
      [`${r.upstream}/single:v1`, r.singleDigest, []],
    ] as [string, string, string[]][]) {
      const pull = await cd.ctr(['images', 'pull', ...extra, '--hosts-dir', hosts, ref]);
      assert.equal(pull.code, 0, pull.stdout + pull.stderr + m.stderr());
      const ls = await cd.ctr(['images', 'ls']);
      const line = ls.stdout.split('\n').find((l) => l.startsWith(ref));
      assert.ok(line?.includes(`sha256:${digest}`), `${ref} has the recorded digest: ${ls.stdout}`);
    }
  });

  await t.test('an unrecorded tag is a 404 with the OCI error body and a warning naming it', async () => {
    const res = await fetch(`${m.url}/v2/busybox/manifests/nope?ns=${r.upstream}`);
    assert.equal(res.status, 404);
    const body = (await res.json()) as { errors: { code: string }[] };
    assert.equal(body.errors[0]!.code, 'MANIFEST_UNKNOWN');
    const blob = await fetch(`${m.url}/v2/busybox/blobs/sha256:${'0'.repeat(64)}`);
    assert.equal(blob.status, 404);
    assert.equal(((await blob.json()) as { errors: { code: string }[] }).errors[0]!.code, 'BLOB_UNKNOWN');
    await new Promise((res2) => setTimeout(res2, 100));
    assert.match(m.stderr(), new RegExp(`warning: mirror: GET ${r.upstream.replace('.', '\\.')}/busybox:nope: not recorded`));
    const conf = await registriesConf(dir, r.upstream, m.hostPort);
    const sk = await run(['skopeo', '--registries-conf', conf, 'inspect', '--raw', `docker://${r.upstream}/busybox:nope`], { env: r.env, timeoutMs: 60_000 });
    assert.notEqual(sk.code, 0);
  });

  await t.test('Range on a blob gives a 206 slice', async () => {
    const layer = Object.entries(r.assets).find(([k, e]) => k.includes('/v2/single/blobs/') && Number(e.Headers['Content-Length'] ?? 0) > 1000)!;
    const digest = layer[0].split('/').pop()!;
    const res = await fetch(`${m.url}/v2/single/blobs/${digest}`, { headers: { Range: 'bytes=10-19' } });
    assert.equal(res.status, 206);
    const whole = await readFile(join(r.blobs, layer[1].Sha256));
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), whole.subarray(10, 20));
  });

  await t.test('TLS listener: a client trusting the written-out CA pulls the manifest', async (tt) => {
    const ca = join(dir, 'mirror-ca.pem');
    const tm = await startMirrorCli(tt, r, ['--tls-listen-addr', '127.0.0.1:0', '--tls-ca-out', ca]);
    assert.ok(tm.tlsUrl);
    const res = await run(['curl', '-sSf', '--cacert', ca, `${tm.tlsUrl}/v2/single/manifests/v1`], { env: r.env });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(sha256(Buffer.from(res.stdout, 'latin1')), r.singleDigest);
    await tm.stop();
  });

  await t.test('a corrupt blob in the store: the pull fails and no client accepts a wrong blob', async (tt) => {
    const bad = join(dir, 'blobs-corrupt');
    await cp(r.blobs, bad, { recursive: true });
    const [key, entry] = Object.entries(r.assets).filter(([k]) => k.includes('/v2/single/blobs/')).sort((a, b) => Number(b[1].Headers['Content-Length'] ?? 0) - Number(a[1].Headers['Content-Length'] ?? 0))[0]!;
    assert.ok(Number(entry.Headers['Content-Length']) > 100_000, `the layer is recorded: ${key}`);
    const fh = await open(join(bad, entry.Sha256), 'r+');
    await fh.write(Buffer.from('corrupted!'), 0, 10, 1000);
    await fh.close();
    const cm = await startMirrorCli(tt, r, [], bad);
    const conf = await registriesConf(dir, r.upstream, cm.hostPort);
    const out = join(dir, 'corrupt-out');
    const sk = await run(['skopeo', '--registries-conf', conf, 'copy', '-q', `docker://${r.upstream}/single:v1`, `oci:${out}:x`], { env: r.env, timeoutMs: 90_000 });
    assert.notEqual(sk.code, 0, 'skopeo must fail');
    const stored = await readdir(join(out, 'blobs', 'sha256')).catch(() => [] as string[]);
    assert.ok(!stored.includes(entry.Sha256), 'the corrupt layer never lands in the destination');
    const curl = await run(['curl', '-sS', '-o', join(dir, 'corrupt.bin'), `${cm.url}/v2/single/blobs/${key.split('/').pop()}`]);
    assert.notEqual(curl.code, 0, 'curl sees a cut transfer, not a complete wrong body');
    assert.match(cm.stderr(), new RegExp(`the blob is corrupt: blob ${entry.Sha256}`));
    await cm.stop();
  });

  await t.test('inside unshare -n (no network at all) skopeo copies from the mirror', { skip: canUnshare ? false : 'unshare -n unavailable' }, async () => {
    const port = await freePort();
    const conf = await registriesConf(dir, r.upstream, `127.0.0.1:${port}`);
    const out = join(dir, 'unshared-out');
    const mirrorCmd = [...cliCommand('htvend'), 'mirror', '-m', r.manifest, '--blobs-dir', r.blobs, '-l', `127.0.0.1:${port}`].map(q).join(' ');
    const script = [
      'ip link set lo up',
      `${mirrorCmd} 2>${q(join(dir, 'unshared-mirror.log'))} & pid=$!`,
      `i=0; until curl -sf http://127.0.0.1:${port}/v2/ >/dev/null; do i=$((i+1)); [ $i -gt 100 ] && exit 90; sleep 0.1; done`,
      `skopeo --registries-conf ${q(conf)} copy --all -q docker://${r.upstream}/busybox:latest oci:${q(out)}:latest; rc=$?`,
      'kill $pid; wait $pid; exit $rc',
    ].join('\n');
    const res = await run(['unshare', '-n', 'sh', '-c', script], { env: r.env, timeoutMs: 120_000 });
    assert.equal(res.code, 0, res.stderr + (await readFile(join(dir, 'unshared-mirror.log'), 'utf8').catch(() => '')));
    assert.equal(await ociIndexDigest(out), r.indexDigest);
  });
});
