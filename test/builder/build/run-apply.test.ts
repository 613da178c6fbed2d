/**
 * The builder lets the RUN executor move a step's files into the stage's working rootfs
 * (`applyTo`) instead of extracting the step's layer again. The images must be the same as
 * with an executor that leaves the layer to the builder, including steps that read what an
 * earlier RUN changed (deletes, a recreated dir, hard links), COPY --from a stage built by RUN
 * steps, and RUN --mount=from of such a stage.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildImages, type BuiltImage } from '../../../src/builder/build/build.js';
import { executeRun } from '../../../src/builder/run/execute.js';
import type { RunExecutor } from '../../../src/builder/run/types.js';
import { silentLogger } from '../../../src/util/log.js';
import { startBusyboxRegistry } from '../../helpers/busybox-image.js';
import { tempDir } from '../../helpers/tmp.js';

const DOCKERFILE = (base: string) =>
  [
    `FROM ${base} AS base`,
    'RUN mkdir -p /a/b && echo 1 > /a/b/f && ln -s f /a/b/l && ln /a/b/f /a/b/h && rm /bin/ls',
    'RUN test ! -e /bin/ls && cat /a/b/h && rm -rf /a/b && mkdir /a/b && echo 2 > /a/b/g',
    'COPY f.txt /a/',
    'RUN test ! -e /a/b/f && cat /a/b/g /a/f.txt > /a/cat && chmod 600 /a/cat && chown 1:1 /a/cat',
    'RUN true',
    `FROM ${base}`,
    'COPY --from=base /a /a',
    'RUN --mount=type=bind,from=base,source=/a,target=/m cp /m/cat /copied && rm -r /a/b',
    'RUN test -e /copied && test ! -e /a/b && echo ok > /done',
  ].join('\n');

/** Image identity: config (with diff_ids) and the layer blob digests. */
function identity(images: BuiltImage[]): string {
  return JSON.stringify(images.map((i) => ({ config: i.image.config, layers: i.image.layers.map((l) => l.digest) })));
}

test('RUN layers moved into the working rootfs by the executor give the same images as extracting them', async (t) => {
  const bb = await startBusyboxRegistry(t);
  const ctx = await tempDir(t, 'run-apply-');
  await writeFile(join(ctx, 'Dockerfile'), DOCKERFILE(bb.ref));
  await writeFile(join(ctx, 'f.txt'), 'from context\n');
  const build = async (runExecutor: RunExecutor) => {
    const tmp = await tempDir(t, 'run-apply-tmp-');
    return identity(
      await buildImages({
        contextDir: ctx, dockerfile: join(ctx, 'Dockerfile'), dockerfileName: 'Dockerfile', buildArgs: new Map(), platforms: [{ os: 'linux', architecture: 'amd64' }],
        buildPlatform: { os: 'linux', architecture: 'amd64' }, epoch: 0, labels: new Map(), secrets: new Map(), globalMounts: [], network: 'host', env: {}, tlsVerify: false,
        proxy: { certFileVars: [], env: {} }, runExecutor, tmpDir: tmp, log: silentLogger, signal: new AbortController().signal,
      }),
    );
  };
  const asked: (string | undefined)[] = [];
  const applied: (string | undefined)[] = [];
  const moving = (snapshot: 'overlay' | 'copy'): RunExecutor => async (req, opts) => {
    asked.push(opts?.applyTo === req.rootfsLayers[0] ? 'rootfs' : opts?.applyTo);
    const r = await executeRun(req, { ...opts, snapshot });
    applied.push(r.appliedTo);
    return r;
  };
  const extracted = await build((req) => executeRun(req, { snapshot: 'overlay' }));
  const overlay = await build(moving('overlay'));
  assert.ok(asked.length === 6 && asked.every((a) => a === 'rootfs'), `the builder asks every RUN to apply to its working rootfs: ${asked}`);
  assert.ok(applied.every((a) => a !== undefined), 'the executor applied every step');
  assert.equal(overlay, extracted, 'overlay: same images when RUN layers are moved into place');
  const copy = await build(moving('copy'));
  assert.equal(copy, extracted, 'copy snapshot: same images when RUN layers are moved into place');
});
