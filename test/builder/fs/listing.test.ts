import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, readFile, readdir, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../../helpers/tmp.js';
import { writeLayer } from '../../../src/builder/fs/layer-writer.js';
import { applyLayer } from '../../../src/builder/fs/apply.js';
import { applyCopied, canApplyCopied } from '../../../src/builder/fs/apply-copied.js';
import { LayerIndex, listLayerBlob, listingFromEntries, pathState, type PathState } from '../../../src/builder/fs/listing.js';
import type { LayerEntry } from '../../../src/builder/fs/types.js';

const none = async (): Promise<PathState> => undefined;

test('pathState walks layer listings top-down: whiteouts, opaque dirs, non-dirs hiding lower paths, implied parents, symlinks', async () => {
  const base = new LayerIndex([
    ['etc', 'd'], ['etc/passwd', 'f'], ['usr', 'd'], ['usr/lib', 'd'], ['usr/lib/x', 'f'], ['lib', 'l', 'usr/lib'], ['opt', 'd'], ['opt/a', 'f'], ['gone', 'd'], ['gone/f', 'f'],
    ['file', 'f'],
  ]);
  const mid = new LayerIndex([['opt', 'd'], ['opt', 'o'], ['opt/b', 'f'], ['gone', 'w'], ['file', 'w'], ['new/deep/f', 'f'], ['lib/y', 'f']]);
  const top = new LayerIndex([['file', 'd'], ['etc/passwd', 'w'], ['usr', 'l', '/elsewhere']]);
  const layers = [base, mid, top];
  const at = (p: string) => pathState(layers, p, none);
  assert.deepEqual(await at('etc'), { kind: 'dir' });
  assert.equal(await at('etc/passwd'), undefined, 'whited out on top');
  assert.equal(await at('opt/a'), undefined, 'hidden by the opaque opt of mid');
  assert.deepEqual(await at('opt/b'), { kind: 'other' });
  assert.equal(await at('gone/f'), undefined, 'below a whiteout');
  assert.deepEqual(await at('file'), { kind: 'dir' }, 'recreated as a dir above its whiteout');
  assert.deepEqual(await at('new/deep'), { kind: 'dir' }, 'implied parent');
  assert.deepEqual(await at('usr'), { kind: 'symlink', target: '/elsewhere' });
  assert.equal(await at('usr/lib/x'), undefined, 'a symlink on top hides lower children');
  // A child written under a lower symlink keeps the symlink (applying a layer writes through it).
  assert.deepEqual(await at('lib'), { kind: 'symlink', target: 'usr/lib' });
  // Nothing decides: the directory on disk answers.
  assert.deepEqual(await pathState(layers, 'srv', async (p) => (p === 'srv' ? { kind: 'dir' } : undefined)), { kind: 'dir' });
  assert.equal(await pathState(layers, 'gone', async () => ({ kind: 'dir' })), undefined, 'a whiteout hides the disk too');
});

test('listing a layer tar gives what its entries say; applying COPY entries directly gives the same tree as extracting the tar', async (t) => {
  const dir = await tempDir(t, 'listing-');
  const src = join(dir, 'src');
  await mkdir(src);
  await writeFile(join(src, 'a'), 'alpha');
  await writeFile(join(src, 'b'), Buffer.alloc(3 << 20, 7)); // above the small-file path
  await writeFile(join(src, 'e'), '');
  const entries: LayerEntry[] = [
    { type: 'dir', path: 'app', mode: 0o750, uid: 5, gid: 6, mtime: 50 },
    { type: 'dir', path: 'app/sub', mode: 0o755, mtime: 999999 },
    { type: 'file', path: 'app/a', source: join(src, 'a'), mode: 0o4755, uid: 7, gid: 8, mtime: 10 },
    { type: 'file', path: 'app/sub/b', source: join(src, 'b'), mode: 0o600, size: 3 << 20, mtime: 20 },
    { type: 'file', path: 'app/e', source: join(src, 'e'), mode: 0o644, size: 0 },
    { type: 'hardlink', path: 'app/a-link', target: 'app/a' },
    { type: 'symlink', path: 'app/l', target: '../etc/x', uid: 1, gid: 1 },
    { type: 'file', path: 'through/f', source: join(src, 'a'), mode: 0o644 },
  ];
  const epoch = 1000;
  const layer = await writeLayer(entries, { epoch, dir });
  const rows = await listLayerBlob(layer.path, 'test layer');
  const sorted = (r: unknown[][]) => r.map((x) => JSON.stringify(x)).sort();
  assert.deepEqual(sorted(rows), sorted(listingFromEntries(entries)));
  assert.ok(canApplyCopied(entries));
  assert.ok(!canApplyCopied([{ type: 'whiteout', path: 'x' }]));

  // Both rootfs start alike: an existing file to replace and a symlinked parent to write through.
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  for (const r of [a, b]) {
    await mkdir(join(r, 'app'), { recursive: true });
    await writeFile(join(r, 'app/e'), 'old');
    await mkdir(join(r, 'real'));
    await symlink('/real', join(r, 'through'));
  }
  await applyLayer(a, layer.path, 'test layer');
  await applyCopied(b, entries, epoch);
  assert.deepEqual(await tree(b), await tree(a));
  assert.equal(await readFile(join(b, 'real/f'), 'utf8'), 'alpha', 'written through the symlink inside the root');
});

/** Every path under `root` with type, mode, owner, mtime, size, link target and content hash prefix. */
async function tree(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(root, rel))).sort()) {
    const p = rel ? `${rel}/${name}` : name;
    const st = await lstat(join(root, p));
    const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? `l:${await readlink(join(root, p))}` : 'f';
    const body = st.isFile() ? (await readFile(join(root, p))).subarray(0, 16).toString('hex') : '';
    out.push(`${p} ${kind} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.isSymbolicLink() || p === 'real' ? '' : Math.floor(st.mtimeMs / 1000)} ${st.isFile() ? st.size : ''} ${st.isFile() ? st.nlink : ''} ${body}`);
    if (st.isDirectory()) out.push(...(await tree(root, p)));
  }
  return out;
}
