/**
 * build-img-with-proxy's messages and exit codes, item by item (issue 18): one style
 * (`build-img-with-proxy: error: …` + hint), every flag and output checked before any work
 * (no "building for" line, nothing written), the Containerfile fallback, BUILDAH_OPTS named,
 * ADD failures that say why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { runCli, type RunResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const P = 'build-img-with-proxy';

async function context(t: Parameters<typeof tempDir>[0], dockerfile = 'FROM scratch\nCOPY f /f\n', name = 'Dockerfile'): Promise<string> {
  const dir = await tempDir(t, 'bip-msg-');
  await mkdir(join(dir, 'c'));
  await writeFile(join(dir, 'c', name), dockerfile);
  await writeFile(join(dir, 'c', 'f'), 'f');
  return dir;
}

function builder(dir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return runCli(P, args, { cwd: dir, env: { PATH: process.env['PATH'], HOME: dir, BUILDAH_OPTS: '', ...env } });
}

/** Usage errors found before any work: exit 2, exactly `lines` on stderr, nothing written. */
async function refusedEarly(dir: string, r: RunResult, lines: string[]): Promise<void> {
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr, lines.map((l) => `${l}\n`).join(''));
  assert.equal(r.stdout, '');
  assert.deepEqual(await readdir(dir), ['c'], 'nothing written');
}

test('--target naming no stage: exit 2 before the build starts', async (t) => {
  const dir = await context(t);
  const r = await builder(dir, ['--platform', 'linux/amd64', '--target', 'nope', '-t', 'oci:out', 'c']);
  await refusedEarly(dir, r, [`${P}: error: --target nope: no stage of that name in Dockerfile`, `${P}: hint: the Dockerfile has no named stages (FROM image AS name)`]);
});

test('-t oci:FILE (an existing file) is refused before the build', async (t) => {
  const dir = await context(t);
  const r = await builder(dir, ['--platform', 'linux/amd64', '-t', `oci:${join(dir, 'c', 'f')}`, 'c']);
  await refusedEarly(dir, r, [`${P}: error: oci:${join(dir, 'c', 'f')}: exists and is not a directory`, `${P}: hint: use oci-archive: for a single file`]);
});

test('-t oci-archive:DIR and an archive in a missing directory are refused before the build', async (t) => {
  const dir = await context(t);
  const isDir = await builder(dir, ['--platform', 'linux/amd64', '-t', `oci-archive:${join(dir, 'c')}`, 'c']);
  await refusedEarly(dir, isDir, [`${P}: error: oci-archive:${join(dir, 'c')}: is a directory`, `${P}: hint: an archive is one file; use oci:${join(dir, 'c')} for a layout directory`]);
  const noParent = await builder(dir, ['--platform', 'linux/amd64', '-t', `docker-archive:${join(dir, 'no', 'x.tar')}`, 'c']);
  await refusedEarly(dir, noParent, [`${P}: error: docker-archive:${join(dir, 'no', 'x.tar')}: directory ${join(dir, 'no')} does not exist`, `${P}: hint: run '${P} --help' for usage and examples`]);
});

test('-t docker:// exits 2 like every other bad tag', async (t) => {
  const dir = await context(t);
  const r = await builder(dir, ['--platform', 'linux/amd64', '-t', 'docker://', 'c']);
  await refusedEarly(dir, r, [`${P}: error: --tag docker://: invalid image reference "": empty`, `${P}: hint: e.g. docker://registry.example/team/app:1.0`]);
});

test('--mount type=foo and --platform foo/bar are usage errors', async (t) => {
  const dir = await context(t);
  const mount = await builder(dir, ['--platform', 'linux/amd64', '--mount', 'type=foo,target=/x', 'c']);
  await refusedEarly(dir, mount, [`${P}: error: --mount type=foo: unsupported (bind, cache, tmpfs, secret)`, `${P}: hint: same syntax as RUN --mount: type=bind|cache|tmpfs|secret,target=/path,…`]);
  const os = await builder(dir, ['--platform', 'foo/bar', 'c']);
  await refusedEarly(dir, os, [`${P}: error: --platform foo/bar: unknown operating system "foo"`, `${P}: hint: want os/arch[/variant] with Go names, e.g. linux/amd64, linux/arm64, linux/arm/v7`]);
  const arch = await builder(dir, ['--platform', 'linux/x86_64', 'c']);
  await refusedEarly(dir, arch, [`${P}: error: --platform linux/x86_64: unknown architecture "x86_64"`, `${P}: hint: the Go name is amd64: linux/amd64`]);
  const env = await builder(dir, ['c'], { PLATFORMS: 'linux/amd64 linux/bogus' });
  assert.equal(env.code, 2);
  assert.match(env.stderr, /^build-img-with-proxy: error: PLATFORMS= linux\/bogus: unknown architecture "bogus"$/m);
});

test('a flag from BUILDAH_OPTS is reported as coming from BUILDAH_OPTS', async (t) => {
  const dir = await context(t);
  const r = await builder(dir, ['--platform', 'linux/amd64', 'c'], { BUILDAH_OPTS: '--squash-all' });
  await refusedEarly(dir, r, [`${P}: error: BUILDAH_OPTS: unknown option '--squash-all'`, `${P}: hint: BUILDAH_OPTS="--squash-all" is added before the command line; fix or unset it`]);
  const value = await builder(dir, ['c'], { BUILDAH_OPTS: '--platform linux/x86_64' });
  await refusedEarly(dir, value, [`${P}: error: BUILDAH_OPTS: --platform linux/x86_64: unknown architecture "x86_64"`, `${P}: hint: the Go name is amd64: linux/amd64`]);
  const typed = await builder(dir, ['--squash-all', 'c']);
  await refusedEarly(dir, typed, [`${P}: error: unknown option '--squash-all'`, `${P}: hint: run '${P} --help' for usage and examples`]);
});

test('a missing context directory, and a context without Dockerfile or Containerfile, are named clearly', async (t) => {
  const dir = await context(t);
  const missing = await builder(dir, ['--platform', 'linux/amd64', 'nope']);
  await refusedEarly(dir, missing, [
    `${P}: error: build context nope: no such directory`,
    `${P}: hint: give the directory holding the Dockerfile (or Containerfile) and the files it copies, e.g. build-img-with-proxy -t oci:out .`,
  ]);
  await mkdir(join(dir, 'empty'));
  const empty = await builder(dir, ['--platform', 'linux/amd64', 'empty']);
  assert.equal(empty.code, 2);
  assert.equal(empty.stderr, `${P}: error: no Dockerfile or Containerfile in the build context ${join(dir, 'empty')}\n${P}: hint: add one, or name it with -f PATH\n`);
});

test('CONTEXT/Containerfile is used when there is no Dockerfile', async (t) => {
  const dir = await context(t, 'FROM scratch\nCOPY f /from-containerfile\n', 'Containerfile');
  const r = await builder(dir, ['--platform', 'linux/amd64', '-t', 'oci:out', 'c']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^build-img-with-proxy: Containerfile:2: COPY f \/from-containerfile$/m);
  assert.match(r.stdout, /^sha256:[0-9a-f]{64}\n$/);
});

test('ADD of a git URL over https says "not supported"; ADD https failures name the cause', async (t) => {
  const dir = await context(t, 'FROM scratch\nADD https://127.0.0.1:1/team/repo.git#main /src\n');
  const git = await builder(dir, ['--platform', 'linux/amd64', '-t', 'oci:out', 'c']);
  assert.equal(git.code, 1);
  assert.match(git.stderr, /^build-img-with-proxy: error: Dockerfile:2: ADD of a git repository is not supported \(https:\/\/127\.0\.0\.1:1\/team\/repo\.git#main\)$/m);
  assert.match(git.stderr, /^build-img-with-proxy: hint: clone it in a RUN step/m);
  // A port nobody listens on (fetch refuses port 1 itself as a "bad port").
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  await writeFile(join(dir, 'c', 'Dockerfile'), `FROM scratch\nADD https://127.0.0.1:${port}/file.txt /f\n`);
  const refused = await builder(dir, ['--platform', 'linux/amd64', '-t', 'oci:out', 'c']);
  assert.equal(refused.code, 1);
  assert.ok(
    refused.stderr.includes(`build-img-with-proxy: error: Dockerfile:2: ADD https://127.0.0.1:${port}/file.txt: fetch failed: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:${port}\n`) ||
      refused.stderr.includes(`build-img-with-proxy: error: Dockerfile:2: ADD https://127.0.0.1:${port}/file.txt: fetch failed: connect ECONNREFUSED 127.0.0.1:${port}\n`),
    refused.stderr,
  );
  assert.doesNotMatch(refused.stderr, /UPSTREAM:|htvend: /);
});

test('${X:?msg} with X unset fails in the builder style, naming the variable and message', async (t) => {
  const dir = await context(t, 'FROM scratch\nARG X\nCOPY ${X:?set_X_please} /x\n');
  const r = await builder(dir, ['--platform', 'linux/amd64', '-t', 'oci:out', 'c']);
  assert.equal(r.code, 1);
  // The Dockerfile:LINE prefix comes from the Dockerfile parser (its own helper's work).
  assert.match(r.stderr, /^build-img-with-proxy: error: (Dockerfile:3: )?.*X: set_X_please$/m);
  assert.doesNotMatch(r.stderr, /ENOENT|INPUT:/);
});
