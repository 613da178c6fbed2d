import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, symlink, link, utimes, readFile, lstat, readlink, readdir, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../helpers/tmp.js';
import { run as runWithStdin } from '../../helpers/cli.js';

/** Commands here read no stdin; not opening it avoids EPIPE races with fast-exiting tools. */
const run = (argv: string[]) => runWithStdin(argv, { stdio: ['ignore', 'pipe', 'pipe'] });
import { writeLayer } from '../../../src/builder/fs/layer-writer.js';
import { walkTree } from '../../../src/builder/fs/walk.js';
import { applyLayer } from '../../../src/builder/fs/apply.js';

async function sha(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

async function makeTree(dir: string, mtime: number): Promise<void> {
  await mkdir(join(dir, 'b/sub'), { recursive: true });
  await writeFile(join(dir, 'b/sub/z.txt'), 'zzz');
  await writeFile(join(dir, 'a.txt'), 'hello');
  await link(join(dir, 'a.txt'), join(dir, 'c-hard.txt'));
  await symlink('a.txt', join(dir, 'link'));
  for (const p of ['b/sub/z.txt', 'a.txt', 'b/sub', 'b']) await utimes(join(dir, p), mtime, mtime);
}

test('writeLayer is deterministic: same tree with different mtimes after the epoch gives the same digests', async (t) => {
  const tmp = await tempDir(t);
  await makeTree(join(tmp, 't1'), 2_000_000_000);
  await makeTree(join(tmp, 't2'), 1_900_000_000);
  const l1 = await writeLayer(await walkTree(join(tmp, 't1')), { epoch: 1_000_000, dir: tmp });
  const l2 = await writeLayer(await walkTree(join(tmp, 't2')), { epoch: 1_000_000, dir: tmp });
  assert.equal(l1.digest, l2.digest);
  assert.equal(l1.diffId, l2.diffId);
  assert.equal(await sha(l1.path), l1.digest);
  const gunzipped = await run(['sh', '-c', `gzip -dc '${l1.path}' | sha256sum`]);
  assert.equal(gunzipped.stdout.split(' ')[0], l1.diffId);
  // GNU tar lists entries sorted, numeric owners, clamped times, hard link kept
  const listing = await run(['tar', '--numeric-owner', '--full-time', '-tvzf', l1.path]);
  const lines = listing.stdout.trim().split('\n');
  assert.deepEqual(lines.map((l) => l.split(/\s+/).slice(5).join(' ')), ['a.txt', 'b/', 'b/sub/', 'b/sub/z.txt', 'c-hard.txt link to a.txt', 'link -> a.txt']);
  for (const l of lines) assert.match(l, /1970-01-12 13:46:40/);
  assert.match(lines[0]!, / 0\/0 /);
});

test('applyLayer applies files, whiteouts and opaque dirs, and keeps hard links', async (t) => {
  const tmp = await tempDir(t);
  const root = join(tmp, 'root');
  await mkdir(root);
  const base = await writeLayer(
    [
      { type: 'dir', path: 'etc', mode: 0o755 },
      { type: 'file', path: 'etc/gone', source: '/etc/hostname', mode: 0o644 },
      { type: 'dir', path: 'opq', mode: 0o755 },
      { type: 'file', path: 'opq/old', source: '/etc/hostname', mode: 0o644 },
    ],
    { epoch: 0, dir: tmp },
  );
  await writeFile(join(tmp, 'new'), 'new-content');
  const top = await writeLayer(
    [
      { type: 'whiteout', path: 'etc/gone' },
      { type: 'opaque', path: 'opq' },
      { type: 'file', path: 'opq/new', source: join(tmp, 'new'), mode: 0o4755, uid: 12, gid: 34 },
      { type: 'hardlink', path: 'opq/new2', target: 'opq/new' },
    ],
    { epoch: 0, dir: tmp },
  );
  await applyLayer(root, base.path, 'base');
  await applyLayer(root, top.path, 'top');
  assert.deepEqual(await readdir(join(root, 'etc')), []);
  assert.deepEqual((await readdir(join(root, 'opq'))).sort(), ['new', 'new2']);
  const st = await lstat(join(root, 'opq/new'));
  assert.equal(st.mode & 0o7777, 0o4755);
  assert.equal(st.uid, 12);
  assert.equal(st.nlink, 2);
  assert.equal(await readFile(join(root, 'opq/new2'), 'utf8'), 'new-content');
});

test('applyLayer never writes through a symlink planted by an earlier layer', async (t) => {
  const tmp = await tempDir(t);
  const root = join(tmp, 'root');
  const outside = join(tmp, 'outside');
  await mkdir(root);
  await mkdir(outside);
  await writeFile(join(tmp, 'payload'), 'pwned');
  const l1 = await writeLayer([{ type: 'symlink', path: 'evil', target: outside }], { epoch: 0, dir: tmp });
  const l2 = await writeLayer([{ type: 'file', path: 'evil/x', source: join(tmp, 'payload'), mode: 0o644 }], { epoch: 0, dir: tmp });
  await applyLayer(root, l1.path, 'l1');
  await applyLayer(root, l2.path, 'l2');
  assert.deepEqual(await readdir(outside), []);
  // the absolute symlink is re-anchored at the root, like chroot would
  assert.equal(await readFile(join(root, outside, 'x'), 'utf8'), 'pwned');
  assert.equal(await readlink(join(root, 'evil')), outside);
});

test('zstd and xz layers are applied like their gzip twin; a corrupt xz one fails naming it instead of being misread', async (t) => {
  const tmp = await tempDir(t);
  const l = await writeLayer([{ type: 'dir', path: 'x', mode: 0o755 }], { epoch: 0, dir: tmp });
  const z = join(tmp, 'layer.tar.zst');
  const r = await run(['sh', '-c', `gzip -dc '${l.path}' | zstd -q -o '${z}' && gzip -dc '${l.path}' | xz > '${tmp}/good.tar.xz'`]);
  // xz's magic is all it takes to be recognised (and then rejected by xz itself).
  await writeFile(`${tmp}/layer.tar.xz`, Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(64)]));
  assert.equal(r.code, 0, r.stderr);
  await mkdir(join(tmp, 'root'));
  await applyLayer(join(tmp, 'root'), z, 'layer sha256:abc');
  assert.ok((await stat(join(tmp, 'root', 'x'))).isDirectory());
  await mkdir(join(tmp, 'root2'));
  await applyLayer(join(tmp, 'root2'), `${tmp}/good.tar.xz`, 'layer sha256:xz');
  assert.ok((await stat(join(tmp, 'root2', 'x'))).isDirectory());
  await assert.rejects(applyLayer(join(tmp, 'root'), `${tmp}/layer.tar.xz`, 'layer sha256:def'), /layer sha256:def: xz failed/);
});

test('binary xattrs are written byte for byte (GNU tar restores them), long non-ASCII names too', async (t) => {
  const tmp = await tempDir(t);
  await writeFile(join(tmp, 'src'), 'x');
  const value = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0x80, 0xc3, 0x28]);
  const longName = `d/${'ü'.repeat(60)}`;
  const l = await writeLayer(
    [
      { type: 'dir', path: 'd', mode: 0o755 },
      { type: 'file', path: longName, source: join(tmp, 'src'), mode: 0o644, xattrs: { 'user.bin': value } },
    ],
    { epoch: 0, dir: tmp },
  );
  const out = join(tmp, 'out');
  await mkdir(out);
  const x = await run(['tar', '--xattrs', '--xattrs-include=user.*', '-xzf', l.path, '-C', out]);
  assert.equal(x.code, 0, x.stderr);
  assert.equal(await readFile(join(out, longName), 'utf8'), 'x');
  const attrs = await run(['getfattr', '-d', '-m', 'user.', '-e', 'hex', join(out, longName)]);
  assert.match(attrs.stdout, new RegExp(`user.bin=0x${value.toString('hex')}`));
  // and applyLayer restores them in a working rootfs
  const root = join(tmp, 'root');
  await mkdir(root);
  await applyLayer(root, l.path, 'layer');
  const applied = await run(['getfattr', '-d', '-m', 'user.', '-e', 'hex', join(root, longName)]);
  assert.match(applied.stdout, new RegExp(`user.bin=0x${value.toString('hex')}`));
});

test('device nodes and fifos in a base layer are recreated when running as root', { skip: process.getuid?.() === 0 ? false : 'needs root' }, async (t) => {
  const tmp = await tempDir(t);
  const tarPath = join(tmp, 'dev.tar');
  // GNU tar makes the layer from real nodes, as a base image build would.
  const src = join(tmp, 'src');
  await mkdir(join(src, 'dev'), { recursive: true });
  for (const argv of [['mknod', '-m', '666', join(src, 'dev/null'), 'c', '1', '3'], ['mkfifo', join(src, 'dev/fifo')], ['tar', '-cf', tarPath, '-C', src, 'dev']]) {
    const r = await run(argv);
    assert.equal(r.code, 0, r.stderr);
  }
  const root = join(tmp, 'root');
  await mkdir(root);
  await applyLayer(root, tarPath, 'base');
  const st = await lstat(join(root, 'dev/null'));
  assert.ok(st.isCharacterDevice());
  assert.equal(st.rdev, (await lstat('/dev/null')).rdev);
  assert.ok((await lstat(join(root, 'dev/fifo'))).isFIFO());
});
