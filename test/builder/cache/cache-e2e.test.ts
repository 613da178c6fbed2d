/**
 * The build cache under htvend (SPEC §9, docs/build-cache.md), end to end with the real CLIs,
 * runc, a TLS docker-registry and an HTTPS upstream: a cached RUN's download is asked for
 * again before reuse, so assets.json and offline builds cannot tell a cached step from one
 * that ran.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canUnshare } from '../../e2e/harness.js';
import { digestOf, offline, online, proj, reportSteps, world, type World } from './harness.js';

let w: World;
const cleanups: (() => unknown)[] = [];
before(async () => {
  w = await world({ after: (fn: () => unknown) => void cleanups.push(fn) } as never);
});
after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const dockerfile = (w: World) => [`FROM ${w.bb.ref}`, `RUN wget -q -O /data.txt ${w.up.https}/data.txt && echo ran >> /runs`, 'COPY src.txt /src.txt', ''].join('\n');

test('cold, then warm after a COPY source changed: the RUN is cached and assets.json is byte-identical', async (t) => {
  const p = await proj(t, w, dockerfile(w), { 'src.txt': 'one\n' });
  const cold = await online(p, 'cold.tar', ['--report', join(p.dir, 'cold.json')]);
  assert.equal(cold.code, 0, cold.stderr);
  const coldAssets = await readFile(join(p.dir, 'assets.json'));
  const coldSteps = await reportSteps(join(p.dir, 'cold.json'));
  const coldRun = coldSteps.find((s) => s.kind === 'RUN')!;
  assert.equal(coldRun.status, 'run');
  assert.deepEqual(coldRun.assets.map((a) => a.url), [`${w.up.https}/data.txt`], 'the RUN step is credited with its download');
  assert.ok(coldSteps.find((s) => s.kind === 'FROM')!.assets.some((a) => a.url.includes('/v2/busybox/manifests/latest')), 'the pull is credited to FROM');

  await writeFile(join(p.ctx, 'src.txt'), 'two\n');
  const warm = await online(p, 'warm.tar', ['--report', join(p.dir, 'warm.json')]);
  assert.equal(warm.code, 0, warm.stderr);
  const warmSteps = await reportSteps(join(p.dir, 'warm.json'));
  assert.equal(warmSteps.find((s) => s.kind === 'RUN')!.status, 'cached', warm.stderr);
  assert.equal(warmSteps.find((s) => s.kind === 'COPY')!.status, 'run');
  assert.deepEqual(warmSteps.find((s) => s.kind === 'RUN')!.assets, coldRun.assets);
  assert.deepEqual(await readFile(join(p.dir, 'assets.json')), coldAssets);
  assert.equal(w.up.hits('/data.txt'), 1, 'downloaded once, replayed after');

  // assets.json deleted: the cached RUN's download is recorded again by its probe.
  await rm(join(p.dir, 'assets.json'));
  const again = await online(p, 'again.tar', ['--report', join(p.dir, 'again.json')]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((await reportSteps(join(p.dir, 'again.json'))).find((s) => s.kind === 'RUN')!.status, 'cached');
  assert.deepEqual(await readFile(join(p.dir, 'assets.json')), coldAssets);
  assert.equal(digestOf(again), digestOf(warm));
});
