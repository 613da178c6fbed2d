/**
 * The examples, end to end exactly as a user runs them (issue 5, SPEC §8), through
 * scripts/examples.sh on temp copies of examples/X (the checkout stays clean):
 *   htvend -C X build -- build-img-with-proxy                  (online: records assets.json)
 *   htvend -C X verify --fetch
 *   unshare -n sh -c 'ip link set lo up && htvend -C X offline -- build-img-with-proxy --tag oci-archive:img.tar'
 * then the offline image is run by umoci + runc; online and offline digests must be equal.
 *
 * multi-stage fetches from the script's local download site and runs, script and all, inside
 * a network namespace with only loopback: it needs no network at all. busybox-wget downloads
 * from the npm registry (skipped with HTVEND_TEST_NO_NETWORK=1). node-npm and debian-curl
 * (debootstrap: minutes the first time) run when HTVEND_TEST_SLOW=1, which `npm test` sets unless told 0.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, readFile, writeFile, chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { cliCommand, repoRoot, run } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const noNetwork = process.env.HTVEND_TEST_NO_NETWORK === '1';
const slow = process.env.HTVEND_TEST_SLOW === '1';

/** `#!/bin/sh` wrappers for our two CLIs (tsx from .ts, dist/ when compiled), for HTVEND_BIN_DIR. */
async function binDir(dir: string): Promise<string> {
  await mkdir(dir);
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  for (const name of ['htvend', 'build-img-with-proxy'] as const) {
    await writeFile(join(dir, name), `#!/bin/sh\nexec ${cliCommand(name).map(q).join(' ')} "$@"\n`);
    await chmod(join(dir, name), 0o755);
  }
  return dir;
}

interface Outcome {
  online: string;
  offline: string;
  match: string;
  ran: string;
}

/**
 * Runs scripts/examples.sh for `examples` on temp copies (optionally inside `unshare -n` with
 * loopback up) and returns each example's summary line, parsed. The script runs in its own
 * process group, killed whole on timeout so its registry and file server cannot outlive it.
 */
async function runExamples(t: TestContext, examples: string[], opts: { isolated: boolean; work?: string; timeoutMs: number }): Promise<Map<string, Outcome>> {
  const tmp = await tempDir(t, 'htvend-examples-');
  const exDir = join(tmp, 'examples');
  for (const ex of examples) await cp(join(repoRoot, 'examples', ex), join(exDir, ex), { recursive: true });
  const env = {
    ...process.env,
    EXAMPLES: examples.join(' '),
    EXAMPLES_DIR: exDir,
    HTVEND_EXAMPLES_WORK: opts.work ?? join(tmp, 'work'),
    HTVEND_BIN_DIR: await binDir(join(tmp, 'bin')),
  };
  const script = join(repoRoot, 'scripts', 'examples.sh');
  const argv = opts.isolated ? ['unshare', '-n', 'sh', '-c', 'ip link set lo up && exec bash "$0"', script] : ['bash', script];
  const child = spawn(argv[0]!, argv.slice(1), { cwd: tmp, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), opts.timeoutMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  }).finally(() => clearTimeout(timer));
  assert.equal(code, 0, `examples.sh exited ${code}\n--- stdout\n${stdout}\n--- stderr (tail)\n${stderr.slice(-6000)}`);
  const out = new Map<string, Outcome>();
  for (const m of stdout.matchAll(/^(\S+)\s+online (\S+) offline (\S+) match=(\w+) ran=(\w+)/gm)) out.set(m[1]!, { online: m[2]!, offline: m[3]!, match: m[4]!, ran: m[5]! });
  // Cross-check the script's summary against what it left in the copies.
  for (const ex of examples) {
    const o = out.get(ex);
    assert.ok(o, `no summary line for ${ex}:\n${stdout}`);
    const index = JSON.parse(await readFile(join(exDir, ex, 'oci', 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(index.manifests.map((m) => m.digest).join(','), o.online, `${ex}: online digest`);
    const archived = await run(['tar', '-xOf', join(exDir, ex, 'img.tar'), 'index.json']);
    assert.equal(archived.code, 0, archived.stderr);
    assert.equal((JSON.parse(archived.stdout) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest).join(','), o.offline, `${ex}: offline digest`);
    const assets = JSON.parse(await readFile(join(exDir, ex, 'assets.json'), 'utf8')) as Record<string, unknown>;
    assert.ok(Object.keys(assets).length > 0, `${ex}: assets.json records what the build fetched`);
  }
  return out;
}

function assertReproduced(outcomes: Map<string, Outcome>, ex: string): void {
  const o = outcomes.get(ex)!;
  assert.match(o.online, /^sha256:[0-9a-f]{64}$/);
  assert.equal(o.offline, o.online, `${ex}: the offline rebuild gives the online digest`);
  assert.equal(o.match, 'yes');
  assert.equal(o.ran, 'yes', `${ex}: the offline image runs under runc`);
}

test('multi-stage example: recorded online, verified, rebuilt offline to the same digest, with no network at all', async (t) => {
  const outcomes = await runExamples(t, ['multi-stage'], { isolated: true, timeoutMs: 120_000 });
  assertReproduced(outcomes, 'multi-stage');
});

test('busybox-wget example (npm registry): recorded online, verified, rebuilt offline to the same digest', { skip: noNetwork && 'needs the npm registry (HTVEND_TEST_NO_NETWORK=1)' }, async (t) => {
  const outcomes = await runExamples(t, ['busybox-wget'], { isolated: false, timeoutMs: 120_000 });
  assertReproduced(outcomes, 'busybox-wget');
});

test(
  'node-npm and debian-curl examples (npm registry, Debian mirror; slow): rebuilt offline to the same digests',
  { skip: (!slow && 'slow (debootstrap): on by default in npm test; HTVEND_TEST_SLOW=0 skips it') || (noNetwork && 'needs the npm registry and Debian mirror (HTVEND_TEST_NO_NETWORK=1)') },
  async (t) => {
    // The persistent default work dir keeps the debootstrap'd rootfs between runs.
    const outcomes = await runExamples(t, ['node-npm', 'debian-curl'], { isolated: false, work: '/var/tmp/htvend-examples', timeoutMs: 30 * 60_000 });
    assertReproduced(outcomes, 'node-npm');
    assertReproduced(outcomes, 'debian-curl');
  },
);
