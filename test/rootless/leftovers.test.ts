/**
 * Nothing left behind by a rootless build (issue 14), after a success and after a failing RUN:
 * no entries in /tmp, /var/tmp or the user's XDG_RUNTIME_DIR owned by the user or by its
 * subuid range (what the namespace's root and image users create), no new mounts in the host's
 * mount table, no processes of the user or of its sub-ids. The successful build leaves a
 * background process behind in its RUN step, and the failing one chowns files to sub-ids before
 * failing, so both clean-ups have something to do.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../helpers/cli.js';
import { asUser, chownR, ensureUser, installApp, userDir, type TestUser, USERS } from './user.js';
import { parseSubIds } from '../../src/builder/rootless/preflight.js';

const isRoot = process.getuid?.() === 0;
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface Trace {
  files: string[];
  mounts: string[];
  procs: string[];
}

async function trace(u: TestUser, owned: (uid: number) => boolean, runtimeDir: string): Promise<Trace> {
  const files: string[] = [];
  for (const d of ['/tmp', '/var/tmp', runtimeDir]) {
    for (const name of await readdir(d).catch(() => [] as string[])) {
      const st = await lstat(join(d, name)).catch(() => undefined);
      if (st && owned(st.uid)) files.push(join(d, name));
    }
  }
  // Mounts the build could have made visible to the host: anything under the user's home or
  // its temp dirs (a RUN step's overlay or fuse-overlayfs mount lives under one of those).
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .filter((l) => l.includes(u.home) || files.some((f) => l.includes(f)));
  const ps = await run(['ps', '-eo', 'uid=,pid=,args=']);
  const procs = ps.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && owned(Number(l.split(/\s+/)[0])));
  return { files, mounts, procs };
}

test('a rootless build leaves nothing behind: temp dirs, runtime dir, mounts, processes (success and failing RUN)', { skip: !isRoot && 'needs root to create the unprivileged test user', timeout: 300_000 }, async (t) => {
  const u = await ensureUser(USERS.leftovers);
  const app = await installApp(t, u);
  const dir = await userDir(t, u, 'left-');
  const sub = parseSubIds(await readFile('/etc/subuid', 'utf8'), u.name, u.uid)!;
  const owned = (uid: number) => uid === u.uid || (uid >= sub.start && uid < sub.start + sub.count);
  // A runtime dir as a login session would give it (pam_systemd is not here to make one).
  const runtimeDir = `/run/user/${u.uid}`;
  if (!existsSync(runtimeDir)) {
    await mkdir(runtimeDir, { recursive: true, mode: 0o700 });
    t.after(() => rm(runtimeDir, { recursive: true, force: true }));
  }
  const own = await run(['chown', `${u.uid}:${u.gid}`, runtimeDir]);
  assert.equal(own.code, 0, own.stderr);

  await mkdir(join(dir, 'bb', 'bin'), { recursive: true });
  await mkdir(join(dir, 'bb', 'etc'));
  await cp('/bin/busybox', join(dir, 'bb', 'bin', 'busybox'));
  await writeFile(join(dir, 'bb', 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  for (const c of ['ok', 'fail']) await mkdir(join(dir, c));
  const tar = await run(['tar', '--owner=0', '--group=0', '--numeric-owner', '-cf', join(dir, 'ok', 'bb.tar'), '-C', join(dir, 'bb'), '.']);
  assert.equal(tar.code, 0, tar.stderr);
  await cp(join(dir, 'ok', 'bb.tar'), join(dir, 'fail', 'bb.tar'));
  const sh = (s: string) => `RUN ["/bin/busybox", "sh", "-c", ${JSON.stringify(s)}]`;
  await writeFile(join(dir, 'ok', 'Dockerfile'), `FROM scratch\nADD bb.tar /\n${sh('/bin/busybox --install -s /bin && mkdir /t && touch /t/a && chown 1234:1234 /t/a && (sleep 300 >/dev/null 2>&1 &) ; true')}\n`);
  await writeFile(join(dir, 'fail', 'Dockerfile'), `FROM scratch\nADD bb.tar /\n${sh('/bin/busybox --install -s /bin && mkdir /t && touch /t/a && chown 1234:1234 /t/a && (sleep 300 >/dev/null 2>&1 &) ; exit 3')}\n`);
  await chownR(u, dir);

  const before = await trace(u, owned, runtimeDir);
  assert.deepEqual(before.procs, [], `no processes of ${u.name} before the test`);
  // The tracer sees what it looks for: a sub-id-owned /tmp entry and a process of the user.
  const probe = join('/tmp', `htvend-left-probe-${process.pid}`);
  await writeFile(probe, '');
  await run(['chown', String(sub.start + 1234), probe]);
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore', uid: u.uid, gid: u.gid });
  await new Promise((r) => setTimeout(r, 300));
  const seen = await trace(u, owned, runtimeDir);
  const gone = new Promise((r) => sleeper.once('close', r));
  sleeper.kill('SIGKILL');
  await gone;
  await rm(probe);
  assert.ok(seen.files.includes(probe), 'the tracer sees sub-id-owned files');
  assert.ok(seen.procs.some((p) => p.includes('sleep 60')), `the tracer sees the user's processes: ${seen.procs.join('; ')}`);
  const env = { PATH, SOURCE_DATE_EPOCH: '0', TMPDIR: '/tmp', XDG_RUNTIME_DIR: runtimeDir };
  const build = (c: string) => run([...asUser(u, env), ...app.argv('build-img-with-proxy'), '-q', '--tag', `oci:${dir}/${c}-oci:x`, '.'], { cwd: join(dir, c), timeoutMs: 200_000 });

  const ok = await build('ok');
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(await trace(u, owned, runtimeDir), before, 'after a successful build');

  const fail = await build('fail');
  assert.notEqual(fail.code, 0);
  assert.match(fail.stderr, /Dockerfile:3: RUN .* failed: exit code 3/);
  assert.deepEqual(await trace(u, owned, runtimeDir), before, 'after a failing RUN');
});
