/**
 * `htvend doctor` on this machine (the CI machine has every prerequisite: exit 0), then with
 * runc and crun hidden from PATH: it names the missing runtime and its Debian package and
 * exits 1; and build-img-with-proxy's own error for that case points at `htvend doctor`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { findOnPath } from '../../src/commands/doctor.js';
import { hostArchitecture } from '../../src/builder/run/platform.js';
import { pickRuntime } from '../../src/builder/run/runtime.js';
import { isHtvendError } from '../../src/util/errors.js';

const CHECKS = ['runtime', 'overlay', 'unshare', 'userns', 'uidmap', 'binfmt', 'blob space'];
const hasRuntime = Boolean((await findOnPath('runc', process.env)) ?? (await findOnPath('crun', process.env)));

test('doctor prints one line per check and exits 0 on a machine with every prerequisite', { skip: hasRuntime ? false : 'no runc/crun here' }, async (t) => {
  const dir = await tempDir(t);
  const r = await runCli('htvend', ['doctor', '--blobs-dir', join(dir, 'blobs')], { env: { PATH: process.env['PATH'], HOME: dir } });
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, CHECKS.length, r.stdout);
  CHECKS.forEach((name, i) => assert.match(lines[i]!, new RegExp(`^(OK|WARN|MISSING) +${name} `)));
  assert.match(lines[0]!, /^OK +runtime +(runc|crun)/);
  assert.match(r.stdout, /^OK +blob space +[\d.]+ GiB free for .*blobs \(not yet created; measured at /m);
  assert.equal(r.code, 0, r.stdout + r.stderr);
});

test('doctor with runc and crun hidden from PATH names the missing runtime and its package, and exits 1', async (t) => {
  const dir = await tempDir(t);
  const bin = join(dir, 'bin');
  await mkdir(bin);
  // Everything the other checks use, but no OCI runtime.
  for (const tool of ['unshare', 'mount', 'newuidmap', 'newgidmap']) {
    const p = await findOnPath(tool, process.env);
    if (p) await symlink(p, join(bin, tool));
  }
  const r = await runCli('htvend', ['doctor', '--blobs-dir', dir], { env: { PATH: bin, HOME: dir } });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^MISSING runtime +no OCI runtime \(runc or crun\) on PATH.* -> fix: apt-get install runc \(or crun\)$/m);
  assert.match(r.stderr, /missing: runtime/);
});

test("build-img-with-proxy's error for a missing runtime refers to htvend doctor", async () => {
  const e = await pickRuntime('/s', { PATH: '/nonexistent' }).then(() => undefined, (x: unknown) => x);
  assert.ok(isHtvendError(e));
  assert.match(e.message, /no OCI runtime found/);
  assert.match(e.hint ?? '', /htvend doctor/);
});

test('doctor checks emulation only for what is asked: the host by default, --platform adds foreign arches', async (t) => {
  const dir = await tempDir(t);
  const env = { PATH: process.env['PATH'], HOME: dir };
  const host = hostArchitecture();
  const plain = await runCli('htvend', ['doctor', '--blobs-dir', join(dir, 'blobs')], { env });
  assert.match(plain.stdout, new RegExp(`^OK +binfmt +not needed: builds target linux/${host} \\(this host\\) unless --platform says otherwise`, 'm'), plain.stdout);
  // The host's own platform needs no emulation either.
  const self = await runCli('htvend', ['doctor', '--blobs-dir', join(dir, 'blobs'), '--platform', `linux/${host}`], { env });
  assert.match(self.stdout, /^OK +binfmt +not needed/m, self.stdout);
  // A foreign one is checked and named (OK when qemu is registered for it here, WARN otherwise).
  const foreign = host === 's390x' ? 'riscv64' : 's390x';
  const asked = await runCli('htvend', ['doctor', '--blobs-dir', join(dir, 'blobs'), '--platform', `linux/${host},linux/${foreign}`], { env });
  assert.match(asked.stdout, new RegExp(`^(OK +binfmt +qemu registered for linux/${foreign}$|WARN +binfmt .*linux/${foreign} \\(asked with --platform\\) cannot run; linux/${host} still works)`, 'm'), asked.stdout);
  assert.doesNotMatch(asked.stdout, /not needed/);
});
