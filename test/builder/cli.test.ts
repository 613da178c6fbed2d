import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { run, runCli } from '../helpers/cli.js';

async function ctx(t: Parameters<typeof tempDir>[0]): Promise<string> {
  const dir = await tempDir(t, 'bip-cli-');
  await mkdir(join(dir, 'c'));
  await writeFile(join(dir, 'c', 'Dockerfile'), 'FROM scratch\nARG FROM_ENV\nLABEL fromenv=$FROM_ENV\nCOPY f /f\n');
  await writeFile(join(dir, 'c', 'f'), 'f');
  return dir;
}

test('BUILDAH_OPTS are split like a shell would and come before the command line; --timestamp beats SOURCE_DATE_EPOCH; KEY-only --build-arg reads the environment', async (t) => {
  const dir = await ctx(t);
  const env = { ...process.env, BUILDAH_OPTS: `--platform linux/amd64 --label 'k=v w'`, SOURCE_DATE_EPOCH: '5', FROM_ENV: 'yes' };
  const r = await runCli('build-img-with-proxy', ['--timestamp', '86400', '--build-arg', 'FROM_ENV', '-t', `oci-archive:${dir}/o.tar:x`, join(dir, 'c')], { env });
  assert.equal(r.code, 0, r.stderr);
  const inspect = JSON.parse((await run(['skopeo', 'inspect', `oci-archive:${dir}/o.tar`], { stdio: ['ignore', 'pipe', 'pipe'] })).stdout);
  assert.deepEqual(inspect.Labels, { fromenv: 'yes', k: 'v w' });
  assert.equal(inspect.Created, '1970-01-02T00:00:00Z');
  assert.equal(inspect.Architecture, 'amd64');
});

for (const [what, args, re] of [
  ['a bare image name as --tag', ['-t', 'myimage'], /--tag myimage: unsupported destination/],
  ['an unknown flag', ['--no-such-flag'], /unknown option/],
  ['a bad --platform', ['--platform', 'linux'], /invalid platform "linux"/],
  ['a bad --network', ['--network', 'bridge'], /--network/],
] as const) {
  test(`rejects ${what} with a usage error and writes nothing`, async (t) => {
    const dir = await ctx(t);
    const r = await runCli('build-img-with-proxy', ['--platform', 'linux/amd64', ...args, join(dir, 'c')], { cwd: dir, env: { ...process.env, BUILDAH_OPTS: '' } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, re);
    assert.deepEqual(await readdir(dir), ['c']);
  });
}

test('an SSL_CERT_FILE that does not exist is a usage error naming it, and nothing is written', async (t) => {
  const dir = await ctx(t);
  const env = { ...process.env, BUILDAH_OPTS: '', SSL_CERT_FILE: join(dir, 'no-such-ca.pem'), CERT_FILE_VARS: '' };
  const r = await runCli('build-img-with-proxy', ['--platform', 'linux/amd64', join(dir, 'c')], { cwd: dir, env });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /SSL_CERT_FILE=.*no-such-ca\.pem: no such file/);
  assert.deepEqual(await readdir(dir), ['c']);
});

test('oci:DIR adds to an existing layout (same name replaced, others kept) and never replaces what is not a layout', async (t) => {
  const dir = await ctx(t);
  const layout = join(dir, 'layout');
  const build = (tag: string, label: string) =>
    runCli('build-img-with-proxy', ['--platform', 'linux/amd64', '--build-arg', 'FROM_ENV', '-t', tag, join(dir, 'c')], { env: { ...process.env, BUILDAH_OPTS: '', FROM_ENV: label } });
  const labelOf = async (ref: string) => JSON.parse((await run(['skopeo', 'inspect', ref], { stdio: ['ignore', 'pipe', 'pipe'] })).stdout).Labels.fromenv;
  const names = async () => JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')).manifests.map((m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'] ?? '');

  for (const [tag, label] of [['one', 'first'], ['two', 'second'], ['one', 'third']]) {
    const r = await build(`oci:${layout}:${tag}`, label!);
    assert.equal(r.code, 0, r.stderr);
  }
  assert.deepEqual(await names(), ['two', 'one']);
  assert.equal(await labelOf(`oci:${layout}:one`), 'third');
  assert.equal(await labelOf(`oci:${layout}:two`), 'second');

  // A directory that is not a layout, and an archive path that is a directory: refused, untouched.
  const other = join(dir, 'other');
  await mkdir(other);
  await writeFile(join(other, 'keep'), 'mine');
  for (const tag of [`oci:${other}`, `oci-archive:${other}`]) {
    const r = await build(tag, 'x');
    assert.notEqual(r.code, 0, `${tag} was accepted`);
    assert.match(r.stderr, /not an OCI image layout|is a directory|EISDIR/i);
    assert.equal(await readFile(join(other, 'keep'), 'utf8'), 'mine');
  }
  assert.deepEqual((await readdir(dir)).sort(), ['c', 'layout', 'other']);
});

test('RUN --security=insecure is refused citing the line unless --allow security.insecure; an unknown entitlement is a usage error', async (t) => {
  const dir = await ctx(t);
  await writeFile(join(dir, 'c', 'Dockerfile'), 'FROM scratch\nCOPY f /f\nRUN --security=insecure true\n');
  const env = { ...process.env, BUILDAH_OPTS: '' };
  const refused = await runCli('build-img-with-proxy', ['--platform', 'linux/amd64', '-t', `oci:${dir}/out`, join(dir, 'c')], { env });
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /Dockerfile:3: RUN --security=insecure runs the step privileged/);
  assert.match(refused.stderr, /--allow security\.insecure/);
  const unknown = await runCli('build-img-with-proxy', ['--allow', 'network.host', '--platform', 'linux/amd64', '-t', `oci:${dir}/out`, join(dir, 'c')], { env });
  assert.equal(unknown.code, 2, unknown.stderr);
  assert.match(unknown.stderr, /--allow network\.host/);
  assert.deepEqual(await readdir(dir), ['c']);
});

test('issue 9: without --platform and PLATFORMS only the host platform is built; PLATFORMS keeps the wrapper meaning', async (t) => {
  const dir = await ctx(t);
  const env: NodeJS.ProcessEnv = { ...process.env, BUILDAH_OPTS: '' };
  delete env['PLATFORMS'];
  const host = process.arch === 'arm64' ? 'arm64' : 'amd64';
  const one = await runCli('build-img-with-proxy', ['-t', `oci:${dir}/one`, join(dir, 'c')], { env });
  assert.equal(one.code, 0, one.stderr);
  const inspect = JSON.parse((await run(['skopeo', 'inspect', `oci:${dir}/one`], { stdio: ['ignore', 'pipe', 'pipe'] })).stdout);
  assert.equal(inspect.Architecture, host);
  const index = JSON.parse(await readFile(join(dir, 'one', 'index.json'), 'utf8'));
  assert.equal(index.manifests[0].mediaType, 'application/vnd.oci.image.manifest.v1+json', 'one platform: index.json -> manifest');
  const two = await runCli('build-img-with-proxy', ['-t', `oci:${dir}/two`, join(dir, 'c')], { env: { ...env, PLATFORMS: 'linux/arm64 linux/amd64' } });
  assert.equal(two.code, 0, two.stderr);
  const nested = JSON.parse(await readFile(join(dir, 'two', 'index.json'), 'utf8'));
  assert.equal(nested.manifests[0].mediaType, 'application/vnd.oci.image.index.v1+json', 'PLATFORMS with two platforms: an image index');
});
