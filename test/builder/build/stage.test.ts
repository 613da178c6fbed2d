import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../../helpers/tmp.js';
import { run } from '../../helpers/cli.js';
import { buildImages, type BuildOptions } from '../../../src/builder/build/build.js';
import { silentLogger } from '../../../src/util/log.js';
import { HtvendError } from '../../../src/util/errors.js';

async function build(t: Parameters<typeof tempDir>[0], dockerfile: string, over: Partial<BuildOptions> = {}, prepare?: (dir: string) => Promise<void>) {
  const dir = await tempDir(t, 'stage-');
  await writeFile(join(dir, 'Dockerfile'), dockerfile);
  await writeFile(join(dir, 'f.txt'), 'f');
  await prepare?.(dir);
  return buildImages({
    contextDir: dir, dockerfile: join(dir, 'Dockerfile'), dockerfileName: 'Dockerfile', buildArgs: new Map(), platforms: [{ os: 'linux', architecture: 'arm64' }],
    buildPlatform: { os: 'linux', architecture: 'amd64' }, epoch: 86400, labels: new Map(), secrets: new Map(), globalMounts: [], network: 'host', env: {},
    proxy: { certFileVars: [], env: {} }, runExecutor: async () => { throw new HtvendError('INTERNAL', 'no RUN here'); }, tmpDir: dir, log: silentLogger,
    signal: new AbortController().signal, ...over,
  });
}

test('config instructions follow Docker semantics (ENV ordering, ARG scope, platform ARGs, ENTRYPOINT resets CMD)', async (t) => {
  const [img] = await build(t, [
    'ARG GLOBAL=g',
    'FROM scratch',
    'ARG GLOBAL',
    'ARG TARGETARCH',
    'ARG UNSET',
    'ENV A=old',
    'ENV A=new B=$A C=${UNSET:-dflt} D=$GLOBAL-$TARGETARCH',
    'WORKDIR /srv',
    'WORKDIR app',
    'USER 1:2',
    'EXPOSE 80 53/udp',
    'VOLUME /data',
    'STOPSIGNAL SIGINT',
    'HEALTHCHECK --interval=2s CMD ["true"]',
    'ONBUILD COPY . /x',
    'CMD ["inherited"]',
    'SHELL ["/bin/ash", "-c"]',
    'ENTRYPOINT run me',
    'LABEL "k 1"="v 1"',
  ].join('\n'), { labels: new Map([['cli', 'yes']]) });
  const c = img!.image.config;
  assert.deepEqual(c.config.Env, ['A=new', 'B=old', 'C=dflt', 'D=g-arm64']);
  assert.equal(c.config.WorkingDir, '/srv/app');
  assert.equal(c.config.User, '1:2');
  assert.deepEqual(c.config.ExposedPorts, { '80/tcp': {}, '53/udp': {} });
  assert.deepEqual(c.config.Volumes, { '/data': {} });
  assert.equal(c.config.StopSignal, 'SIGINT');
  assert.deepEqual(c.config.Healthcheck, { Test: ['CMD', 'true'], Interval: 2e9 });
  assert.deepEqual(c.config.OnBuild, ['COPY . /x']);
  assert.deepEqual(c.config.Entrypoint, ['/bin/ash', '-c', 'run me']);
  assert.deepEqual(c.config.Cmd, ['inherited'], 'a CMD of the same stage survives ENTRYPOINT');
  assert.deepEqual(c.config.Labels, { 'k 1': 'v 1', cli: 'yes' });
  assert.equal(c.architecture, 'arm64');
  assert.equal(c.created, '1970-01-02T00:00:00Z');
  assert.ok(c.history!.every((h) => h.created === '1970-01-02T00:00:00Z'));
  // WORKDIR made /srv and /srv/app in two layers
  assert.equal(img!.image.layers.length, 2);
});

test('WORKDIR creates missing directories owned by the current USER', async (t) => {
  const [img] = await build(t, 'FROM scratch\nUSER 5:6\nWORKDIR /w/x\n');
  const list = await run(['tar', '--numeric-owner', '-tvzf', img!.image.layers[0]!.path], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = list.stdout.trim().split('\n');
  assert.equal(lines.length, 2);
  for (const l of lines) assert.match(l, /^drwxr-xr-x 5\/6 /);
});

test('COPY heredocs become files, and RUN reports that no executor is available', async (t) => {
  const [img] = await build(t, 'FROM scratch\nCOPY <<EOF /etc/motd\nwelcome\nEOF\n');
  const layer = img!.image.layers[0]!;
  const r = await run(['tar', '-xzOf', layer.path, 'etc/motd'], { stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(r.stdout, 'welcome\n');
  await assert.rejects(build(t, 'FROM scratch\n\nRUN true\n'), /no RUN here/);
});

test('issue 9: EXPOSE splits an expanded list, legacy LABEL key value, COPY --chmod=0, ${X:?msg} errors name Dockerfile:LINE', async (t) => {
  const [img] = await build(t, [
    'FROM scratch',
    'ARG PORTS="3000 4000/udp"',
    'EXPOSE $PORTS 80',
    'LABEL maintainer "Jane Doe <jane@example.com>"',
    'LABEL version=1',
    'COPY --chmod=0 f.txt /f0',
  ].join('\n'));
  const c = img!.image.config.config;
  assert.deepEqual(c.ExposedPorts, { '3000/tcp': {}, '4000/udp': {}, '80/tcp': {} });
  assert.deepEqual(c.Labels, { maintainer: 'Jane Doe <jane@example.com>', version: '1' });
  const list = await run(['tar', '--numeric-owner', '-tvzf', img!.image.layers[0]!.path], { stdio: ['ignore', 'pipe', 'pipe'] });
  assert.match(list.stdout, /^---------- 0\/0 .* f0$/m);
  await assert.rejects(build(t, 'FROM scratch\nARG FOO\n\nENV X="${FOO:?FOO must be set}"\n'), (e: unknown) => e instanceof HtvendError && e.message === 'Dockerfile:4: FOO: FOO must be set');
  await assert.rejects(build(t, 'ARG B\nFROM ${B:?nobase}\n'), (e: unknown) => e instanceof HtvendError && e.message === 'Dockerfile:2: B: nobase');
  await assert.rejects(build(t, 'FROM scratch\nLABEL lonely\n'), /Dockerfile:2: LABEL lonely needs a value/);
});

test('issue 9: COPY --from=$VAR resolves stage ARGs, build args and global ARGs to stages, even ones the static plan missed', async (t) => {
  const [img] = await build(t, [
    'ARG GLOBAL_SRC=one',
    'FROM scratch AS one',
    'COPY f.txt /from-one',
    'FROM scratch AS two',
    'COPY f.txt /from-two',
    'FROM scratch',
    'ARG LOCAL_SRC=two',
    'COPY --from=$GLOBAL_SRC /from-one /a',
    'COPY --from=${LOCAL_SRC} /from-two /b',
  ].join('\n'));
  const names = [];
  for (const l of img!.image.layers) names.push(...(await run(['tar', '-tzf', l.path], { stdio: ['ignore', 'pipe', 'pipe'] })).stdout.split('\n').filter(Boolean));
  assert.deepEqual(names, ['a', 'b']);
  await assert.rejects(build(t, 'FROM scratch AS me\nARG S=me\nCOPY --from=$S /x /y\n'), /Dockerfile:3: stage me refers to itself/);
});

test('issue 9: WORKDIR and COPY through a dangling symlink of the image create its target instead of replacing the link', async (t) => {
  const [img] = await build(t, 'FROM scratch\nCOPY links/ /\nWORKDIR /w\nCOPY f.txt /c/\nCOPY f.txt ./\n', {}, async (dir) => {
    await mkdir(join(dir, 'links'));
    await symlink('/target/dir', join(dir, 'links', 'w'));
    await symlink('target/copied', join(dir, 'links', 'c'));
  });
  assert.equal(img!.image.config.config.WorkingDir, '/w', 'the config keeps the path as written');
  const names: string[] = [];
  for (const l of img!.image.layers) names.push(...(await run(['tar', '-tvzf', l.path], { stdio: ['ignore', 'pipe', 'pipe'] })).stdout.split('\n').filter(Boolean).map((x) => x.replace(/^.* 00:00 /, '')));
  assert.deepEqual(names, ['c -> target/copied', 'w -> /target/dir', 'target/', 'target/dir/', 'target/copied/', 'target/copied/f.txt', 'target/dir/f.txt']);
});
