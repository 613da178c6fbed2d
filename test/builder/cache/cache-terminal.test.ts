/**
 * What a warm build shows and does (docs/build-cache.md): the per-step table on a terminal
 * only (a real pseudo-terminal from util-linux `script`), and no layer extracted for cached
 * steps (counted from the `-v` line StageFs.sync() writes per layer it applies).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { builder, online, proj, reportSteps, sharedWorld, type Proj, type World } from './harness.js';
import { cliCommand, run } from '../../helpers/cli.js';
import { q, which } from '../../e2e/harness.js';

const world = sharedWorld();

const dockerfile = (w: World) => [`FROM ${w.bb.ref}`, `RUN wget -q -O /data.txt ${w.up.https}/data.txt`, 'COPY src.txt /src.txt', ''].join('\n');

/** `online()` with the builder's stderr on a pseudo-terminal (`script` merges it into stdout). */
function onTerminal(p: Proj, out: string) {
  const cmd = [...cliCommand('htvend'), '-C', p.dir, 'build', '--blobs-dir', p.blobs, '--', ...builder(p, out)].map(q).join(' ');
  return run(['script', '-qec', cmd, '/dev/null'], { env: p.env, timeoutMs: 180_000 });
}

const tableEnd = /(\d+) of (\d+) steps from the cache/;

test('the step table is printed on a terminal, one row per FROM/RUN/COPY line with its status, and not without one', { skip: which('script') ? false : 'script (util-linux) missing' }, async (t) => {
  const w = world();
  const p = await proj(t, w, dockerfile(w), { 'src.txt': 'one\n' });
  const cold = await online(p, 'cold.tar');
  assert.equal(cold.code, 0, cold.stderr);
  assert.doesNotMatch(cold.stderr, tableEnd, 'no table when stderr is not a terminal');
  await writeFile(`${p.ctx}/src.txt`, 'two\n');
  const tty = await onTerminal(p, 'warm.tar');
  assert.equal(tty.code, 0, tty.stdout + tty.stderr);
  const out = tty.stdout.replace(/\r/g, '');
  assert.match(out, /^step +status +time +layer +assets +instruction$/m, out);
  const rows = [...out.matchAll(/^(Dockerfile:\d+) +(run|cached) +[\d.]+ s +\S+(?: \S+)? +(\d+) +(\S+)/gm)].map((m) => [m[1], m[2], m[4]]);
  assert.deepEqual(rows, [
    ['Dockerfile:1', 'run', 'FROM'],
    ['Dockerfile:2', 'cached', 'RUN'],
    ['Dockerfile:3', 'run', 'COPY'],
  ], out);
  assert.deepEqual(out.match(tableEnd)?.slice(1), ['1', '3'], out);
  // The same warm build without a terminal: no table.
  const plain = await online(p, 'plain.tar');
  assert.equal(plain.code, 0, plain.stderr);
  assert.doesNotMatch(plain.stderr + plain.stdout, tableEnd);
  assert.doesNotMatch(plain.stderr, /^step +status/m);
});

test('a warm build extracts no layer for its cached steps; the cold one does', async (t) => {
  const w = world();
  const p = await proj(t, w, dockerfile(w), { 'src.txt': 'one\n' });
  const applied = (s: string) => s.match(/applied layer sha256:[0-9a-f]{64} to the stage rootfs/g)?.length ?? 0;
  const cold = await online(p, 'cold.tar', ['-v']);
  assert.equal(cold.code, 0, cold.stderr);
  assert.ok(applied(cold.stderr) > 0, `the cold RUN needs the base layer applied:\n${cold.stderr}`);
  await writeFile(`${p.ctx}/src.txt`, 'two\n');
  const warm = await online(p, 'warm.tar', ['-v', '--report', `${p.dir}/warm.json`]);
  assert.equal(warm.code, 0, warm.stderr);
  assert.deepEqual((await reportSteps(`${p.dir}/warm.json`)).map((s) => s.status), ['run', 'cached', 'run'], warm.stderr);
  assert.equal(applied(warm.stderr), 0, `cached RUN + COPY: nothing extracted:\n${warm.stderr}`);
});
