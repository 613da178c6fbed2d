/**
 * `build-img-with-proxy --provenance --sbom` under `htvend build`: BuildKit's attestation
 * layout in the OCI index, the subject is the image manifest, the ADD and RUN downloads are
 * resolved dependencies with their sha256, installed packages are in the SBOM, the same build gives the
 * same bytes, and skopeo still copies the image.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startBusyboxRegistry } from '../helpers/busybox-image.js';
import { build, project } from '../e2e/harness.js';
import { cliCommand, run } from '../helpers/cli.js';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string };
  annotations?: Record<string, string>;
}

const blob = async (layout: string, digest: string) => readFile(join(layout, 'blobs', 'sha256', digest.replace(/^sha256:/, '')));
const json = async <T>(layout: string, digest: string) => JSON.parse((await blob(layout, digest)).toString('utf8')) as T;

test('--provenance --sbom attach BuildKit-layout attestations that name the image, its base and its downloads', async (t) => {
  const bb = await startBusyboxRegistry(t, { tls: true });
  const p = await project(t, { upstream: false });
  p.env['SSL_CERT_FILE'] = bb.registry.caFile;
  p.env['SOURCE_DATE_EPOCH'] = '1700000000';
  const ctx = join(p.dir, 'ctx');
  await mkdir(join(ctx, 'pkgs', 'node_modules', '@scope', 'lib'), { recursive: true });
  await mkdir(join(ctx, 'pkgs', 'site-packages', 'requests-2.32.3.dist-info'), { recursive: true });
  await writeFile(join(ctx, 'status'), 'Package: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10+deb12u5\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n');
  await writeFile(join(ctx, 'pkgs', 'node_modules', '@scope', 'lib', 'package.json'), '{"name": "@scope/lib", "version": "1.2.3"}');
  await writeFile(join(ctx, 'pkgs', 'site-packages', 'requests-2.32.3.dist-info', 'METADATA'), 'Metadata-Version: 2.1\nName: requests\nVersion: 2.32.3\n\nlong description\n');
  // The download: the base image's config blob, fetched as a plain file through the proxy.
  const manifest = JSON.parse((await run(['curl', '-sf', '--cacert', bb.registry.caFile!, '-H', 'Accept: application/vnd.oci.image.manifest.v1+json', `https://${bb.registry.host}/v2/busybox/manifests/latest`])).stdout) as { config: { digest: string }; layers: { digest: string }[] };
  const addUrl = `https://${bb.registry.host}/v2/busybox/blobs/${manifest.config.digest}`;
  // And a RUN's download (the layer blob), credited to its step by per-step attribution.
  const runUrl = `https://${bb.registry.host}/v2/busybox/blobs/${manifest.layers[0]!.digest}`;
  await writeFile(
    join(ctx, 'Dockerfile'),
    [`FROM ${bb.ref}`, 'COPY status /var/lib/dpkg/status', 'COPY pkgs/ /usr/lib/app/', `ADD ${addUrl} /base-config.json`, `RUN wget -q -O /layer.tgz ${runUrl}`, 'CMD ["true"]', ''].join('\n'),
  );
  const layout = join(p.dir, 'oci');
  const cmd = (out: string) => ['--', ...cliCommand('build-img-with-proxy'), '--platform', 'linux/amd64', '--provenance', '--sbom=true', '--build-arg', 'GREETING=hi', '-t', `oci:${out}:demo:1`, ctx];
  const r = await build(p, cmd(layout), { timeoutMs: 180_000 });
  assert.equal(r.code, 0, r.stderr);

  // index.json → the image index (attestations make one even for one platform).
  const top = (JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] }).manifests;
  assert.equal(top.length, 1);
  assert.equal(top[0]!.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.equal(r.stdout.trim(), top[0]!.digest);
  const index = await json<{ manifests: Descriptor[] }>(layout, top[0]!.digest);
  const image = index.manifests.find((m) => m.platform?.os === 'linux');
  const att = index.manifests.find((m) => m.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest');
  assert.ok(image && att, JSON.stringify(index));
  assert.deepEqual(att.platform, { os: 'unknown', architecture: 'unknown' });
  assert.equal(att.annotations?.['vnd.docker.reference.digest'], image.digest);

  const am = await json<{ config: Descriptor; layers: Descriptor[] }>(layout, att.digest);
  assert.deepEqual(am.layers.map((l) => [l.mediaType, l.annotations?.['in-toto.io/predicate-type']]), [
    ['application/vnd.in-toto+json', 'https://slsa.dev/provenance/v1'],
    ['application/vnd.in-toto+json', 'https://spdx.dev/Document'],
  ]);
  const [prov, sbom] = await Promise.all(am.layers.map((l) => json<Record<string, any>>(layout, l.digest))); // eslint-disable-line @typescript-eslint/no-explicit-any
  for (const st of [prov!, sbom!]) {
    assert.equal(st['_type'], 'https://in-toto.io/Statement/v1');
    assert.deepEqual(st['subject'], [{ name: 'pkg:docker/demo@1?platform=linux%2Famd64', digest: { sha256: image.digest.slice(7) } }]);
  }
  const def = prov!['predicate'].buildDefinition;
  assert.equal(def.externalParameters.htvend.mode, 'build', 'HTVEND_MODE from htvend build');
  assert.equal(def.externalParameters.request.args['build-arg:GREETING'], 'hi');
  assert.equal(def.externalParameters.request.platform, 'linux/amd64');
  assert.match(def.externalParameters.dockerfile.content, /ADD https:/);
  const deps = def.resolvedDependencies as { uri: string; digest: { sha256: string }; annotations?: Record<string, string> }[];
  const base = deps.find((d) => d.uri.startsWith('pkg:docker/'));
  assert.ok(base, JSON.stringify(deps));
  assert.match(base.digest.sha256, /^[0-9a-f]{64}$/);
  // (The FROM pull fetched that blob too: attribution credits Dockerfile:1 with it as well.)
  const add = deps.find((d) => d.uri === addUrl && d.annotations?.['htvend.step'] === 'Dockerfile:4');
  assert.ok(add, `ADD download in resolvedDependencies: ${JSON.stringify(deps)}`);
  assert.equal(add.digest.sha256, manifest.config.digest.slice(7));
  assert.equal(add.annotations?.['htvend.step'], 'Dockerfile:4');
  // The same sha256 is what assets.json recorded for that URL.
  const assets = JSON.parse(await readFile(join(p.dir, 'assets.json'), 'utf8')) as Record<string, { Sha256: string }>;
  assert.equal(assets[addUrl]?.Sha256, add.digest.sha256);
  const runDep = deps.find((d) => d.uri === runUrl && d.annotations?.['htvend.step'] === 'Dockerfile:5');
  assert.ok(runDep, `RUN download in resolvedDependencies: ${JSON.stringify(deps)}`);
  assert.equal(runDep.digest.sha256, manifest.layers[0]!.digest.slice(7));
  assert.equal(runDep.annotations?.['htvend.step'], 'Dockerfile:5');
  assert.equal(assets[runUrl]?.Sha256, runDep.digest.sha256);

  const purls = (sbom!['predicate'].packages as { externalRefs: { referenceLocator: string }[] }[]).map((x) => x.externalRefs[0]!.referenceLocator);
  for (const want of ['pkg:deb/debian/curl@7.88.1-10+deb12u5?arch=amd64', 'pkg:npm/%40scope/lib@1.2.3', 'pkg:pypi/requests@2.32.3']) assert.ok(purls.includes(want), `${want} in ${purls.join(' ')}`);
  assert.ok(!purls.some((u) => u.includes('/gone@')), 'a deinstalled package is not listed');
  // The ADD URL has an OCI blob's shape, so it is named as one.
  assert.ok(purls.some((u) => u.startsWith(`pkg:oci/busybox@${manifest.config.digest}`)), `the fetched asset is listed: ${purls.join(' ')}`);

  // Reproducible: the same build again gives the same index, byte for byte.
  const again = join(p.dir, 'oci2');
  const r2 = await build(p, cmd(again), { timeoutMs: 180_000 });
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(r2.stdout.trim(), r.stdout.trim());

  // skopeo reads and copies the image (and its attestation manifest) from the index.
  const copy = await run(['skopeo', 'copy', '--all', `oci:${layout}:demo:1`, `oci:${join(p.dir, 'copy')}:x`]);
  assert.equal(copy.code, 0, copy.stderr);
  const one = await run(['skopeo', 'inspect', '--override-os', 'linux', '--override-arch', 'amd64', `oci:${layout}:demo:1`]);
  assert.equal(one.code, 0, one.stderr);
  // skopeo picks the linux/amd64 image out of the index, past the unknown/unknown entry.
  const info = JSON.parse(one.stdout) as { Digest: string; Os: string; Architecture: string; Layers: string[] };
  assert.equal(info.Digest, top[0]!.digest);
  assert.deepEqual([info.Os, info.Architecture], ['linux', 'amd64']);
  const imageManifest = await json<{ layers: Descriptor[] }>(layout, image.digest);
  assert.deepEqual(info.Layers, imageManifest.layers.map((l) => l.digest));
});
