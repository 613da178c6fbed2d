/**
 * The SPEC §8 flow: a build under `htvend build` records every registry request in
 * assets.json; the same build under `htvend offline` inside `unshare -n` (no route to the
 * registry at all) gives the same image digest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startBusyboxRegistry } from '../../helpers/busybox-image.js';
import { build, canUnshare, offlineUnshared, project } from '../../e2e/harness.js';
import { cliCommand, run } from '../../helpers/cli.js';

async function certDir(dir: string, caFile: string): Promise<string> {
  const d = join(dir, 'registry-certs');
  await mkdir(d, { recursive: true });
  await writeFile(join(d, 'ca.crt'), await readFile(caFile));
  return d;
}

test('a build recorded by htvend build replays under htvend offline with no network to the same digest', { skip: canUnshare ? false : 'unshare -n unavailable' }, async (t) => {
  const bb = await startBusyboxRegistry(t, { tls: true });
  const p = await project(t, { upstream: false });
  // htvend's own upstream trust: the registry's self-signed certificate.
  p.env['SSL_CERT_FILE'] = bb.registry.caFile;
  const ctx = join(p.dir, 'ctx');
  await mkdir(ctx);
  // ADD <url> goes through the proxy too: fetch the base's config blob as a plain download.
  const raw = await run(['skopeo', 'inspect', '--raw', '--cert-dir', await certDir(p.dir, bb.registry.caFile!), `docker://${bb.ref}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(raw.code, 0, raw.stderr);
  const configDigest = (JSON.parse(raw.stdout) as { config: { digest: string } }).config.digest;
  const addUrl = `https://${bb.registry.host}/v2/busybox/blobs/${configDigest}`;
  await writeFile(
    join(ctx, 'Dockerfile'),
    [`FROM ${bb.ref}`, 'COPY hello.txt /hello.txt', `ADD --checksum=${configDigest} ${addUrl} /base-config.json`, 'ENV MODE=vendored', 'CMD ["cat", "/hello.txt"]', ''].join('\n'),
  );
  await writeFile(join(ctx, 'hello.txt'), 'hello from a vendored build\n');
  const cmd = (out: string) => ['--', ...cliCommand('build-img-with-proxy'), '--platform', 'linux/amd64', '-t', `oci-archive:${join(p.dir, out)}`, ctx];

  const online = await build(p, cmd('online.tar'), { timeoutMs: 180_000 });
  assert.equal(online.code, 0, online.stderr);
  const assets = JSON.parse(await readFile(join(p.dir, 'assets.json'), 'utf8')) as Record<string, unknown>;
  const keys = Object.keys(assets);
  assert.ok(keys.some((k) => k.includes('/v2/busybox/manifests/latest')), `manifest recorded: ${keys.join(', ')}`);
  assert.ok(keys.filter((k) => k.includes('/v2/busybox/blobs/sha256:')).length >= 2, 'config and layer blobs recorded');
  assert.ok(keys.includes(addUrl), 'ADD <url> recorded');

  const offline = await offlineUnshared(p, cmd('offline.tar'), { timeoutMs: 180_000 });
  assert.equal(offline.code, 0, offline.stderr);
  assert.match(online.stdout, /sha256:[0-9a-f]{64}/);
  assert.equal(offline.stdout.match(/sha256:[0-9a-f]{64}/)?.[0], online.stdout.match(/sha256:[0-9a-f]{64}/)?.[0]);
  assert.deepEqual(await readFile(join(p.dir, 'offline.tar')), await readFile(join(p.dir, 'online.tar')));
});
