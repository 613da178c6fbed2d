import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../../helpers/tmp.js';
import { run } from '../../helpers/cli.js';
import { buildImages, type BuildOptions } from '../../../src/builder/build/build.js';
import { silentLogger } from '../../../src/util/log.js';
import { HtvendError } from '../../../src/util/errors.js';

async function build(t: Parameters<typeof tempDir>[0], dockerfile: string, over: Partial<BuildOptions> = {}) {
  const dir = await tempDir(t, 'stage-');
  await writeFile(join(dir, 'Dockerfile'), dockerfile);
  await writeFile(join(dir, 'f.txt'), 'f');
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
