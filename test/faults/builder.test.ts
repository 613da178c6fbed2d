/**
 * Builder crash hygiene (SPEC §11), with the real CLI, runc and a busybox base image:
 * - SIGKILL of build-img-with-proxy mid-RUN: the container's processes die with it at once;
 *   the next build sweeps its mounts, runtime state and temp dir, and builds cleanly;
 * - a build that is alive is never swept by another one;
 * - SIGTERM mid-RUN stops the container, cleans up, and exits 143.
 * TMPDIR is a dir of the test's own, so the checks see only these builds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBusyboxRegistry } from '../helpers/busybox-image.js';
import { cliCommand, runCli } from '../helpers/cli.js';
import { mountsUnder } from '../../src/builder/build/build-dir.js';
import { which } from '../e2e/harness.js';

const skip = !which('runc') || process.getuid?.() !== 0 ? 'needs root and runc' : false;

/** Pids whose command line contains `token`. */
async function processesWith(token: string): Promise<number[]> {
  const out: number[] = [];
  for (const p of await readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const cmd = await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(token)) out.push(Number(p));
  }
  return out;
}

async function until(what: string, f: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Fixture {
  tmp: string;
  ctxSleep: string;
  ctxQuick: string;
  token: string;
  env: NodeJS.ProcessEnv;
  args: (ctx: string, out: string) => string[];
}

async function fixture(t: Parameters<typeof startBusyboxRegistry>[0]): Promise<Fixture> {
  const bb = await startBusyboxRegistry(t);
  const work = await mkdtemp(join(tmpdir(), 'htvend-faults-build-'));
  const tmp = join(work, 'tmp');
  await mkdir(tmp);
  const token = `faults-${randomBytes(4).toString('hex')}`;
  const ctxSleep = join(work, 'sleep');
  const ctxQuick = join(work, 'quick');
  await mkdir(ctxSleep);
  await mkdir(ctxQuick);
  // The token is the shell's $0: it shows in the container process's command line.
  await writeFile(join(ctxSleep, 'Dockerfile'), `FROM ${bb.ref}\nRUN ["/bin/sh", "-c", "echo RUN-STARTED-$((1+1)) >&2; while :; do sleep 1; done", "${token}"]\n`);
  await writeFile(join(ctxQuick, 'Dockerfile'), `FROM ${bb.ref}\nRUN echo ok > /ok\n`);
  // Even when a test fails half-way: no process, no mount, no dir of ours is left.
  t.after(async () => {
    for (const pid of [...(await processesWith(token)), ...(await processesWith(tmp))]) process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    for (const m of await mountsUnder(work)) spawnSync('umount', ['-l', m]);
    await rm(work, { recursive: true, force: true });
  });
  return {
    tmp,
    ctxSleep,
    ctxQuick,
    token,
    env: { ...process.env, TMPDIR: tmp, SOURCE_DATE_EPOCH: '0' },
    args: (ctx, out) => ['--tls-verify=false', '--platform', 'linux/amd64', '-t', `oci:${out}:img`, ctx],
  };
}

function startSleepingBuild(f: Fixture, out: string): { child: ChildProcess; started: Promise<void>; exit: Promise<number | string> } {
  const cli = cliCommand('build-img-with-proxy');
  const child = spawn(cli[0]!, [...cli.slice(1), ...f.args(f.ctxSleep, out)], { env: f.env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const started = new Promise<void>((resolve, reject) => {
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (stderr.includes('RUN-STARTED-2')) resolve(); // not the logged step, which shows $((1+1))
    });
    child.on('exit', () => reject(new Error(`build exited before its RUN started: ${stderr}`)));
  });
  const exit = new Promise<number | string>((r) => child.on('exit', (c, s) => r(c ?? s!)));
  return { child, started, exit };
}

test('SIGKILL of the builder mid-RUN kills the container; the next build sweeps the leftovers and succeeds', { skip }, async (t) => {
  const f = await fixture(t);
  const b = startSleepingBuild(f, join(f.tmp, '..', 'out1'));
  t.after(() => b.child.kill('SIGKILL'));
  await b.started;
  assert.equal((await processesWith(f.token)).length > 0, true);
  const [dir] = await readdir(f.tmp);
  assert.match(dir!, new RegExp(`^build-img-${b.child.pid}-`));
  const lock = JSON.parse(await readFile(join(f.tmp, dir!, 'lock'), 'utf8')) as { pid: number };
  assert.equal(lock.pid, b.child.pid);
  assert.ok((await mountsUnder(join(f.tmp, dir!))).length > 0, 'the RUN overlay is mounted');

  b.child.kill('SIGKILL');
  await b.exit;
  await until('the container processes to die with the builder', async () => (await processesWith(f.token)).length === 0, 5000);

  const next = await runCli('build-img-with-proxy', f.args(f.ctxQuick, join(f.tmp, '..', 'out2')), { env: f.env, timeoutMs: 120_000 });
  assert.equal(next.code, 0, next.stderr);
  assert.match(next.stderr, /removed the leftovers of a build that died \(pid \d+\)/);
  assert.deepEqual(await readdir(f.tmp), [], 'no temp dir left, neither the dead build\'s nor its own');
  assert.deepEqual(await mountsUnder(f.tmp), []);
});

test('a live build is never swept by another; SIGTERM mid-RUN stops the container, cleans up and exits 143', { skip }, async (t) => {
  const f = await fixture(t);
  const b = startSleepingBuild(f, join(f.tmp, '..', 'out1'));
  t.after(() => b.child.kill('SIGKILL'));
  await b.started;
  const [dir] = await readdir(f.tmp);

  const other = await runCli('build-img-with-proxy', f.args(f.ctxQuick, join(f.tmp, '..', 'out2')), { env: f.env, timeoutMs: 120_000 });
  assert.equal(other.code, 0, other.stderr);
  assert.doesNotMatch(other.stderr, /removed the leftovers/);
  assert.deepEqual(await readdir(f.tmp), [dir], 'the running build keeps its dir');
  assert.ok((await processesWith(f.token)).length > 0, 'and its container');

  const t0 = Date.now();
  b.child.kill('SIGTERM');
  assert.equal(await b.exit, 143);
  assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
  assert.deepEqual(await processesWith(f.token), []);
  assert.deepEqual(await readdir(f.tmp), []);
  assert.deepEqual(await mountsUnder(f.tmp), []);
});
