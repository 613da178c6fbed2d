/**
 * The examples as an ordinary user (issue 14): scripts/examples.sh runs as root (its registry,
 * file server, umoci and runc), but the htvend and build-img-with-proxy it calls drop to the
 * unprivileged test user, so `htvend build`, `verify` and `htvend offline` and the rootless
 * builds under them are the user's. Digests must equal those of the same run as root.
 * busybox-wget downloads from the npm registry (HTVEND_TEST_NO_NETWORK=1 leaves it out, and
 * then multi-stage runs inside `unshare -n`: no network at all). Runs under
 * flock /tmp/htvend-examples.lock (examples.sh binds fixed ports).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, cp, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cliCommand, repoRoot, run } from '../helpers/cli.js';
import { chownR, ensureUser, installApp, leftovers, userDir, type TestUser, USERS } from './user.js';

const isRoot = process.getuid?.() === 0;
const noNetwork = process.env.HTVEND_TEST_NO_NETWORK === '1';
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const EXAMPLES = noNetwork ? ['multi-stage'] : ['busybox-wget', 'multi-stage'];

/** `#!/bin/sh` wrappers for our two CLIs; for `user`, they re-exec themselves as that user. */
async function binDir(bin: string, user?: { u: TestUser; argv: (cli: 'htvend' | 'build-img-with-proxy') => string[] }): Promise<void> {
  await mkdir(bin);
  for (const name of ['htvend', 'build-img-with-proxy'] as const) {
    const exec = (user ? user.argv(name) : cliCommand(name)).join(' ');
    // runuser keeps the environment (PATH with this bin dir, XDG_DATA_HOME, SSL_CERT_FILE…).
    const drop = user ? `[ "$(id -u)" = 0 ] && exec runuser -u ${user.u.name} -- env HOME=${user.u.home} USER=${user.u.name} "$0" "$@"\n` : '';
    await writeFile(join(bin, name), `#!/bin/sh\n${drop}exec ${exec} "$@"\n`);
    await chmod(join(bin, name), 0o755);
  }
}

interface Outcome {
  online: string;
  offline: string;
  match: string;
  ran: string;
}

async function examplesSh(base: string, bin: string): Promise<Map<string, Outcome>> {
  const exDir = join(base, 'examples');
  const env = { PATH, HOME: '/root', EXAMPLES: EXAMPLES.join(' '), EXAMPLES_DIR: exDir, HTVEND_EXAMPLES_WORK: join(base, 'work'), HTVEND_BIN_DIR: bin };
  const script = join(repoRoot, 'scripts', 'examples.sh');
  const inner = noNetwork ? ['unshare', '-n', 'sh', '-c', 'ip link set lo up && exec bash "$0"', script] : ['bash', script];
  const argv = ['flock', '/tmp/htvend-examples.lock', ...inner];
  const child = spawn(argv[0]!, argv.slice(1), { cwd: base, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  // The whole process group goes on timeout, so the script's servers cannot outlive it.
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 600_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve)).finally(() => clearTimeout(timer));
  assert.equal(code, 0, `examples.sh exited ${code}\n${out}\n${err.slice(-6000)}`);
  const res = new Map<string, Outcome>();
  for (const m of out.matchAll(/^(\S+)\s+online (\S+) offline (\S+) match=(\w+) ran=(\w+)/gm)) res.set(m[1]!, { online: m[2]!, offline: m[3]!, match: m[4]!, ran: m[5]! });
  return res;
}

test(`examples (${EXAMPLES.join(', ')}) as an ordinary user, online and offline: digests equal to the root run`, { skip: !isRoot && 'needs root to create the unprivileged test user', timeout: 1_300_000 }, async (t) => {
  const u = await ensureUser(USERS.examples);
  const app = await installApp(t, u);
  const tmp = await userDir(t, u, 'ex-');
  const runAs = async (who: 'root' | 'user'): Promise<Map<string, Outcome>> => {
    const base = join(tmp, who);
    await mkdir(base);
    for (const ex of EXAMPLES) await cp(join(repoRoot, 'examples', ex), join(base, 'examples', ex), { recursive: true });
    // What the user's htvend writes into: its blob store (XDG_DATA_HOME=work/xdg), the step
    // caches and reports in work/, the examples' assets.json and images. examples.sh (root)
    // creates only what it reads itself there.
    await mkdir(join(base, 'work', 'xdg'), { recursive: true });
    await binDir(join(base, 'bin'), who === 'user' ? { u, argv: app.argv } : undefined);
    if (who === 'user') {
      await chownR(u, base);
      // The same base images: examples.sh makes a fresh busybox rootfs (new mtimes) and pushes
      // it into its registry unless that registry already has it, so the user's run gets root's.
      for (const p of ['registry-data', 'registry.crt', 'registry.key', 'busybox-rootfs']) {
        const r = await run(['cp', '-a', join(tmp, 'root', 'work', p), join(base, 'work', p)]);
        assert.equal(r.code, 0, r.stderr);
      }
    }
    return examplesSh(base, join(base, 'bin'));
  };
  const before = await leftovers(u, tmp);
  const asRoot = await runAs('root');
  const asUser = await runAs('user');
  for (const ex of EXAMPLES) {
    const r = asRoot.get(ex);
    const o = asUser.get(ex);
    assert.ok(r && o, `${ex}: a summary line from both runs`);
    assert.match(o.online, /^sha256:[0-9a-f]{64}$/);
    assert.equal(o.offline, o.online, `${ex}: the user's offline rebuild gives its online digest`);
    assert.equal(o.ran, 'yes', `${ex}: the user's offline image runs`);
    assert.equal(o.online, r.online, `${ex}: rootless digest == root digest`);
    assert.equal(o.offline, r.offline);
    // And the user's run really was the user's: it wrote the lockfile and the image.
    for (const f of ['assets.json', 'oci/index.json', 'img.tar']) assert.equal((await stat(join(tmp, 'user', 'examples', ex, f))).uid, u.uid, `${ex}/${f} written by ${u.name}`);
  }
  assert.deepEqual(await leftovers(u, tmp), before, 'nothing left behind in /tmp, /var/tmp, the runtime dir or the mount table');
});
