/**
 * Upstream faults during `htvend build` (SPEC §11): a body that stalls, a connection reset, a
 * body trickling one byte a second, and SIGTERM of htvend mid-recording. In each case htvend
 * ends soon after its child, with the child's code, and nothing of the broken transfer is
 * recorded or left in the blob dir. Short `--upstream-timeout`s keep the tests quick.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { resetMidBody, sendBody } from '../helpers/https-upstream.js';
import { cliCommand } from '../helpers/cli.js';
import { build, project, q } from '../e2e/harness.js';
import { readAssets, stallMidBody, tempFilesIn, trickle } from './helpers.js';

test('a body that stalls mid-way is dropped after --upstream-timeout; htvend exits with the child', async (t) => {
  const p = await project(t);
  p.up.route('/ok', sendBody('fine'));
  p.up.route('/stall', stallMidBody(100_000, 1000));
  const t0 = Date.now();
  const r = await build(p, ['--upstream-timeout', '1', '--', 'sh', '-c', `curl -sSf -o /dev/null ${p.up.https}/ok && curl -sS -o /dev/null ${p.up.https}/stall; echo curl=$?`], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /curl=(18|52|56|92)/, 'curl sees a cut transfer, not a complete one');
  assert.match(r.stderr, /\/stall: not recorded, transfer failed after 1000 bytes/);
  assert.ok(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
  const assets = await readAssets(join(p.dir, 'assets.json'));
  assert.deepEqual(Object.keys(assets), [`${p.up.https}/ok`]);
  assert.deepEqual(await tempFilesIn(p.blobs), []);
});

test('an upstream that resets mid-body is passed on as a cut transfer and not recorded', async (t) => {
  const p = await project(t);
  p.up.route('/reset', resetMidBody(50_000, 5000));
  const r = await build(p, ['--upstream-timeout', '5', '--', 'sh', '-c', `curl -sS -o /dev/null ${p.up.https}/reset; echo curl=$?`], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /curl=(18|52|56|92)/);
  assert.deepEqual(await readAssets(join(p.dir, 'assets.json')), {});
  assert.deepEqual(await tempFilesIn(p.blobs), []);
});

test('a trickling upstream is named and dropped once the child has given up (bounded exit)', async (t) => {
  const p = await project(t);
  p.up.route('/trickle', trickle(1000, 1000));
  const t0 = Date.now();
  const r = await build(p, ['--upstream-timeout', '2', '--', 'sh', '-c', `curl -sS --max-time 2 -o /dev/null ${p.up.https}/trickle; exit $?`], { timeoutMs: 30_000 });
  assert.equal(r.code, 28, `curl's --max-time exit code is htvend's: ${r.stderr}`);
  assert.match(r.stderr, /1 recording\(s\) still in progress 2s after the child exited, dropped \(not recorded\): https:\/\/localhost:\d+\/trickle/);
  assert.ok(Date.now() - t0 < 12_000, `took ${Date.now() - t0} ms`);
  assert.deepEqual(await readAssets(join(p.dir, 'assets.json')), {});
  assert.deepEqual(await tempFilesIn(p.blobs), []);
});

test('SIGTERM of htvend build mid-recording: the child is stopped, assets.json stays valid, no temp files', async (t) => {
  const p = await project(t);
  p.up.route('/ok', sendBody('kept'));
  let started!: () => void;
  const bodyStarted = new Promise<void>((r) => (started = r));
  p.up.route('/slow', (req, res) => {
    res.writeHead(200, { 'content-length': String(64 << 20) });
    const tick = () => {
      if (res.destroyed) return;
      res.write(Buffer.alloc(64 << 10, 0x73), () => setTimeout(tick, 50));
    };
    tick();
    started();
    req.on('close', () => res.destroy());
  });
  const first = await build(p, ['--', 'curl', '-sSf', '-o', '/dev/null', `${p.up.https}/ok`]);
  assert.equal(first.code, 0, first.stderr);
  const cli = cliCommand('htvend');
  const child = spawn(cli[0]!, [...cli.slice(1), '-C', p.dir, 'build', '--blobs-dir', p.blobs, '--', 'sh', '-c', `exec curl -sS -o /dev/null ${q(`${p.up.https}/slow`)}`], {
    env: p.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  await bodyStarted;
  await new Promise((r) => setTimeout(r, 300));
  const t0 = Date.now();
  child.kill('SIGTERM');
  const code = await new Promise((r) => child.on('exit', (c, s) => r(c ?? s)));
  assert.equal(code, 143, stderr);
  assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
  // The entry of the earlier run is kept (a failed child never shrinks the lockfile).
  assert.deepEqual(Object.keys(await readAssets(join(p.dir, 'assets.json'))), [`${p.up.https}/ok`]);
  assert.deepEqual(await tempFilesIn(p.blobs), []);
});
