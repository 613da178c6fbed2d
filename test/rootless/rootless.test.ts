/**
 * Rootless builds (issue 14, docs/rootless.md): build-img-with-proxy run by an unprivileged
 * user with /etc/subuid and /etc/subgid ranges gives the digest the same build gives as root
 * (the examples as the user: examples.test.ts; htvend's modes: modes.test.ts); the
 * prerequisites fail early, naming the fix, with nothing written. Needs root (to create the
 * user), runc, overlayfs in user namespaces (Linux >= 5.11) and uidmap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cliCommand, run } from '../helpers/cli.js';
import { asUser, chownR, ensureUser, installApp, leftovers, userDir, USERS } from './user.js';
import { rootlessPreflight } from '../../src/builder/rootless/preflight.js';
import { addHostBinary } from '../helpers/host-binary.js';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && 'needs root to create the unprivileged test user';
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// RUN semantics that matter for ownership: chown to several uids, USER, setuid, xattrs, hard
// links, a whiteout (rm of a lower file) and an opaque dir (rm -rf + mkdir of a lower dir).
// The listing leaves out times: `ls -l` prints the minute, so two builds that straddle one
// would differ in /listing's bytes (that made the digest comparison flaky under load).
// The xattr goes on a file with one link: for a hard-linked file that a step changes, overlay
// breaks the link at copy-up and the copy snapshot keeps it (docs/rootless.md), so the two
// snapshots differ there by design.
const DOCKERFILE = `FROM scratch
ADD bb.tar /
RUN ["/bin/busybox","sh","-c","/bin/busybox --install -s /bin && mkdir -m 1777 /tmp && mkdir -p /o /d/x && touch /o/a /o/b /o/c /d/x/f && chown 1000:1000 /o/a && chown 65534:65534 /o/b && chown 4321:1234 /d && chmod 4755 /o/a && chmod 2711 /o/b && ln /o/a /o/hl"]
USER 1000:1000
RUN id -u > /tmp/id && touch /tmp/by-user
USER 0
RUN rm /o/b && rm -rf /d/x && mkdir /d/x && touch /d/x/g && /usr/bin/setfattr -n user.k -v v /o/c && stat -c '%A %u:%g %h %n' /o/* /tmp/* > /listing
`;

async function semanticsContext(dir: string): Promise<void> {
  const rootfs = join(dir, 'bb');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  await mkdir(join(rootfs, 'etc'));
  await cp('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  await addHostBinary(rootfs, '/usr/bin/setfattr'); // busybox has no setfattr applet
  await writeFile(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  const ctx = join(dir, 'ctx');
  await mkdir(ctx);
  const r = await run(['tar', '--owner=0', '--group=0', '--numeric-owner', '-cf', join(ctx, 'bb.tar'), '-C', rootfs, '.']);
  assert.equal(r.code, 0, r.stderr);
  await writeFile(join(ctx, 'Dockerfile'), DOCKERFILE);
}

test('RUN ownership semantics: a rootless build gives the digest of the root build, leaving nothing behind', { skip, timeout: 180_000 }, async (t) => {
  const u = await ensureUser(USERS.semantics);
  const app = await installApp(t, u);
  const dir = await userDir(t, u, 'sem-');
  await semanticsContext(dir);
  await chownR(u, dir);
  const env = { PATH, SOURCE_DATE_EPOCH: '0', TMPDIR: '/tmp' };
  const asRoot = await run([...cliCommand('build-img-with-proxy'), '-q', '--tag', `oci:${dir}/root-oci:x`, '.'], { cwd: join(dir, 'ctx'), env });
  assert.equal(asRoot.code, 0, asRoot.stderr);
  const before = await leftovers(u, dir);
  const asU = await run([...asUser(u, env), ...app.argv('build-img-with-proxy'), '-q', '--tag', `oci:${dir}/user-oci:x`, '.'], { cwd: join(dir, 'ctx') });
  assert.equal(asU.code, 0, asU.stderr);
  assert.match(asU.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
  assert.equal(asU.stdout.trim(), asRoot.stdout.trim(), 'rootless digest == root digest');
  assert.deepEqual(await leftovers(u, dir), before, 'no temp dirs or mounts left behind');
  // The root build's last layer really holds what we claim (so equal digests mean something).
  const idx = JSON.parse(await readFile(join(dir, 'root-oci', 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const blob = (d: string) => join(dir, 'root-oci', 'blobs', 'sha256', d.slice(7));
  const man = JSON.parse(await readFile(blob(idx.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
  const listing = async (i: number, ...flags: string[]) => (await run(['tar', ...flags, '-tvzf', blob(man.layers[i]!.digest), '--numeric-owner'])).stdout;
  const run1 = await listing(1);
  assert.match(run1, /-rwsr-xr-x 1000\/1000 .* \.?\/?o\/a/);
  assert.match(run1, /-rwx--s--x 65534\/65534 .* \.?\/?o\/b/);
  assert.match(run1, /d\S+ 4321\/1234 .* \.?\/?d\/?$/m);
  assert.match(run1, /o\/hl link to \.?\/?o\/a/);
  assert.match(await listing(2), /1000\/1000 .*tmp\/by-user/);
  const run3 = await listing(3);
  assert.match(run3, /o\/\.wh\.b/);
  assert.match(run3, /d\/x\/\.wh\.\.wh\.\.opq/);
  assert.match(await listing(3, '--xattrs', '--xattrs-include=*', '-v'), /o\/c\n\s+x: 1 user\.k\n/, 'the xattr the step set is in the layer');
});

test('overlay refused in the user namespace: one line says so, the copy snapshot gives the root digest', { skip, timeout: 180_000 }, async (t) => {
  const u = await ensureUser(USERS.semantics);
  const app = await installApp(t, u);
  const dir = await userDir(t, u, 'refuse-');
  await semanticsContext(dir);
  await chownR(u, dir);
  const env = { PATH, SOURCE_DATE_EPOCH: '0', TMPDIR: '/tmp' };
  const asRoot = await run([...cliCommand('build-img-with-proxy'), '-q', '--tag', `oci:${dir}/root-oci:x`, '.'], { cwd: join(dir, 'ctx'), env });
  assert.equal(asRoot.code, 0, asRoot.stderr);
  assert.doesNotMatch(asRoot.stderr, /overlayfs refused/, 'root uses overlay here');
  const before = await leftovers(u, dir);
  const asU = await run([...asUser(u, { ...env, BUILD_IMG_OVERLAY_REFUSE: '1' }), ...app.argv('build-img-with-proxy'), '-q', '--tag', `oci:${dir}/user-oci:x`, '.'], { cwd: join(dir, 'ctx') });
  assert.equal(asU.code, 0, asU.stderr);
  const warnings = asU.stderr.split('\n').filter((l) => /overlayfs refused/.test(l));
  assert.equal(warnings.length, 1, asU.stderr);
  assert.match(warnings[0]!, /^build-img-with-proxy: warning: overlayfs refused in the user namespace \(BUILD_IMG_OVERLAY_REFUSE=1\); RUN steps use the copy snapshot/);
  assert.match(asU.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
  assert.equal(asU.stdout.trim(), asRoot.stdout.trim(), 'copy-snapshot rootless digest == root (overlay) digest');
  assert.deepEqual(await leftovers(u, dir), before, 'no temp dirs or mounts left behind');
});

test('bad input: no subuid range, no newuidmap — exit non-zero before any work, naming the fix', { skip, timeout: 60_000 }, async (t) => {
  const ok = await ensureUser();
  const app = await installApp(t, ok);
  const dir = await userDir(t, ok, 'bad-');
  await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY Dockerfile /\n');
  await chownR(ok, dir);
  await chmod(dir, 0o777);
  await chmod(ok.home, 0o755);
  await chmod(app.dir, 0o755);
  const out = join(dir, 'out');
  // PATH without newuidmap: node is called by absolute path; runc etc. are not reached.
  const noMap = await run([...asUser(ok, { PATH: '/nonexistent', SOURCE_DATE_EPOCH: '0' }), ...app.argv('build-img-with-proxy'), '--tag', `oci:${out}:x`, '.'], { cwd: dir });
  assert.notEqual(noMap.code, 0);
  assert.match(noMap.stderr, /build-img-with-proxy: error: newuidmap not found/);
  assert.match(noMap.stderr, /hint: .*uidmap/);
  assert.equal(existsSync(out), false);

  const bare = await ensureUser('htvend-rootless-nosub', false);
  const noSub = await run([...asUser(bare, { PATH, SOURCE_DATE_EPOCH: '0' }), ...app.argv('build-img-with-proxy'), '--tag', `oci:${out}:x`, '.'], { cwd: dir });
  assert.notEqual(noSub.code, 0, noSub.stderr);
  assert.match(noSub.stderr, /error: \/etc\/subuid has no subuid range for user htvend-rootless-nosub/);
  assert.match(noSub.stderr, /hint: .*add the line "htvend-rootless-nosub:100000:65536" to \/etc\/subuid/);
  assert.equal(existsSync(out), false);
  assert.deepEqual(await readdir(dir), ['Dockerfile']);
});

test('preflight: user namespaces switched off name the sysctl (fixture /proc/sys)', async (t) => {
  const d = await mkdtemp(join('/tmp', 'htvend-procsys-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  await mkdir(join(d, 'kernel'));
  await mkdir(join(d, 'user'));
  const base = { uid: 1000, gid: 1000, user: 'u', path: '/usr/bin:/bin', procSys: d };
  await writeFile(join(d, 'kernel', 'unprivileged_userns_clone'), '0\n');
  await assert.rejects(rootlessPreflight(base), /kernel\.unprivileged_userns_clone = 0/);
  await writeFile(join(d, 'kernel', 'unprivileged_userns_clone'), '1\n');
  await writeFile(join(d, 'user', 'max_user_namespaces'), '0\n');
  await assert.rejects(rootlessPreflight(base), (e: Error & { hint?: string }) => /user\.max_user_namespaces = 0/.test(e.message) && /sysctl -w user\.max_user_namespaces=/.test(e.hint ?? ''));
  // A range too small for images is refused too.
  await writeFile(join(d, 'user', 'max_user_namespaces'), '100\n');
  await writeFile(join(d, 'subuid'), 'u:100000:1000\n');
  await assert.rejects(rootlessPreflight({ ...base, subuidFile: join(d, 'subuid') }), /has 1000 ids/);
});
