/**
 * COPY --parents as BuildKit's Dockerfile frontend does it: the part before the first `/./` is
 * the directory copied from (the root without a pivot), the rest an include pattern under it,
 * and what matches keeps that relative path under the destination. Layouts and expectations
 * follow BuildKit's testCopyParents and testCopyRelativeParents
 * (frontend/dockerfile/dockerfile_parents_test.go) and the Dockerfile reference's examples.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../../helpers/tmp.js';
import { copyEntries, rootfsLookup, type CopyRequest } from '../../../src/builder/copy/copy.js';
import { newIgnore } from '../../../src/builder/copy/sources.js';
import { splitPivot } from '../../../src/builder/copy/parents.js';
import { createTransport } from '../../../src/registry/index.js';
import type { LayerEntry } from '../../../src/builder/fs/types.js';
import { HtvendError } from '../../../src/util/errors.js';

/** The stage of testCopyRelativeParents (its RUN step's result), under `/test`. */
const STAGE_DIRS = ['test/a/b/c/d/e', 'test/a/b2/c/d/e', 'test/a/b/c2/d/e', 'test/a/b/c2/d/e2'];
const STAGE_FILES = ['test/a/b/c/d/foo', 'test/a/b/c/d/e/bay', 'test/a/b2/c/d/e/bar', 'test/a/b/c2/d/e/baz', 'test/a/b/c2/d/e2/baz'];

async function setup(t: Parameters<typeof tempDir>[0], dockerignore: string[] = []) {
  const dir = await tempDir(t, 'copy-parents-');
  const ctx = join(dir, 'ctx');
  const stage = join(dir, 'stage');
  const rootfs = join(dir, 'rootfs');
  for (const d of ['ctx/foo1/foo2', 'ctx/x', 'ctx/y', 'ctx/dir1', 'ctx/dir2', 'rootfs', 'tmp', ...STAGE_DIRS.map((s) => `stage/${s}`)]) await mkdir(join(dir, d), { recursive: true, mode: 0o700 });
  await writeFile(join(ctx, 'foo1/foo2/bar'), 'testing', { mode: 0o600 });
  await writeFile(join(ctx, 'foo1/foo2/baz'), 'testing2', { mode: 0o600 });
  for (const p of ['x/a.txt', 'y/a.txt', 'dir1/a.png', 'dir1/b.txt', 'dir2/c.png', 'dir2/d.txt']) await writeFile(join(ctx, p), p);
  await utimes(join(ctx, 'foo1'), 1_000_000, 1_000_000);
  for (const f of STAGE_FILES) await writeFile(join(stage, f), f);
  await symlink('a', join(stage, 'test/link'));
  const fromCtx = { dir: ctx, isContext: true, ignore: newIgnore().add(dockerignore), hasExceptions: false };
  const base = (over: Partial<CopyRequest>): CopyRequest => ({
    kind: 'COPY', sources: [], dest: '/out/', workdir: '/', parents: true, lookup: rootfsLookup(rootfs), heredocs: [], expandHeredoc: (s) => s, epoch: 0,
    from: fromCtx, tmpDir: join(dir, 'tmp'), dispatcher: () => createTransport({ env: {} }), where: 'Dockerfile:2', ...over,
  });
  const fromStage = { dir: stage, isContext: false };
  return { base, fromStage };
}

/** The non-directory paths of a step, sorted. */
const leaves = (es: LayerEntry[]) => es.filter((e) => e.type !== 'dir').map((e) => e.path).sort();
/** The directories of a step, sorted. */
const dirs = (es: LayerEntry[]) => es.filter((e) => e.type === 'dir').map((e) => e.path).sort();

test('splitPivot: the first /./ splits directory and pattern; without one the root is the directory', () => {
  assert.deepEqual(splitPivot('./x/a.txt'), { dir: '', pattern: 'x/a.txt' });
  assert.deepEqual(splitPivot('/test/a/b/./c/d'), { dir: 'test/a/b', pattern: 'c/d' });
  assert.deepEqual(splitPivot('/test/a/./b/./c'), { dir: 'test/a', pattern: 'b/c' });
  assert.deepEqual(splitPivot('/test/a/b/c/d/.'), { dir: '', pattern: 'test/a/b/c/d' }); // a trailing /. is no pivot
  assert.deepEqual(splitPivot('x/./'), { dir: 'x', pattern: '' });
  assert.deepEqual(splitPivot('../../x/./../y'), { dir: 'x', pattern: 'y' }); // clamped at the root
});

test('context sources keep their parents, with the parents\' own metadata (testCopyParents)', async (t) => {
  const { base } = await setup(t);
  const one = await copyEntries(base({ sources: ['foo1/foo2/bar'], dest: '/' }));
  assert.deepEqual(one.map((e) => `${e.type}:${e.path}`), ['dir:foo1', 'dir:foo1/foo2', 'file:foo1/foo2/bar']);
  const foo1 = one[0] as LayerEntry & { mode: number; uid: number; mtime: number };
  assert.equal(foo1.mode, 0o700);
  assert.equal(foo1.uid, 0);
  assert.equal(foo1.mtime, 1_000_000);
  // WORKDIR /test + `COPY --parents foo1/foo2/ba* .`
  const glob = await copyEntries(base({ sources: ['foo1/foo2/ba*'], dest: '.', workdir: '/test' }));
  assert.deepEqual(leaves(glob), ['test/foo1/foo2/bar', 'test/foo1/foo2/baz']);
  assert.deepEqual(dirs(glob), ['test', 'test/foo1', 'test/foo1/foo2']);
});

test('the reference\'s examples: two sources sharing a name; a pivot; the destination is a directory even without /', async (t) => {
  const { base } = await setup(t);
  assert.deepEqual(leaves(await copyEntries(base({ sources: ['./x/a.txt', './y/a.txt'], dest: '/parents' }))), ['parents/x/a.txt', 'parents/y/a.txt']);
  assert.deepEqual(leaves(await copyEntries(base({ sources: ['./x/./a.txt'], dest: '/p' }))), ['p/a.txt']);
  // without --parents the same step is refused (several files, no trailing /)
  await assert.rejects(copyEntries(base({ parents: false, sources: ['./x/a.txt', './y/a.txt'], dest: '/parents' })), /must be a directory/);
});

test('--from stage: pivots, wildcards before and after the pivot, ** (testCopyRelativeParents)', async (t) => {
  const { base, fromStage } = await setup(t);
  const run = async (...sources: string[]) => {
    const es = await copyEntries(base({ from: fromStage, sources }));
    return { leaves: leaves(es), dirs: dirs(es) };
  };
  // middle: only what follows the pivot is kept
  const middle = await run('/test/a/b/./c/d');
  assert.deepEqual(middle.leaves, ['out/c/d/e/bay', 'out/c/d/foo']);
  assert.deepEqual(middle.dirs, ['out', 'out/c', 'out/c/d', 'out/c/d/e']);
  // end (`…/d/.`, no pivot) and start (`./test/…`): the whole path is kept
  for (const src of ['/test/a/b/c/d/.', './test/a/b/c/d']) assert.deepEqual((await run(src)).leaves, ['out/test/a/b/c/d/e/bay', 'out/test/a/b/c/d/foo'], src);
  // double: the first pivot counts
  assert.deepEqual((await run('/test/a/./b/./c')).leaves, ['out/b/c/d/e/bay', 'out/b/c/d/foo']);
  // wildcard after the pivot
  assert.deepEqual((await run('/test/a/./*/c')).leaves, ['out/b/c/d/e/bay', 'out/b/c/d/foo', 'out/b2/c/d/e/bar']);
  // doublewildcard: a wildcard before the pivot (each match is a directory of its own) and **
  assert.deepEqual((await run('/test/a/b*/./c/**/e')).leaves, ['out/c/d/e/bar', 'out/c/d/e/bay']);
  // doubleinputs: only the parents of what matched are created
  const two = await run('/test/a/b/c*/./d/**/baz', '/test/a/b*/./c/**/bar');
  assert.deepEqual(two.leaves, ['out/c/d/e/bar', 'out/d/e/baz', 'out/d/e2/baz']);
  assert.deepEqual(two.dirs, ['out', 'out/c', 'out/c/d', 'out/c/d/e', 'out/d', 'out/d/e', 'out/d/e2']);
  // ** matches zero components too
  assert.deepEqual((await run('/test/a/b/c/./**/foo')).leaves, ['out/d/foo']);
  assert.deepEqual((await run('/test/a/b/c/d/./**')).leaves, ['out/e/bay', 'out/foo']);
});

test('symlinks: followed in the directory part, copied as links (never followed) after it', async (t) => {
  const { base, fromStage } = await setup(t);
  assert.deepEqual(leaves(await copyEntries(base({ from: fromStage, sources: ['/test/link/./b/c/d/foo'] }))), ['out/b/c/d/foo']);
  const link = await copyEntries(base({ from: fromStage, sources: ['/test/link'] }));
  assert.deepEqual(link.filter((e) => e.type === 'symlink').map((e) => [e.path, (e as { target: string }).target]), [['out/test/link', 'a']]);
  await assert.rejects(copyEntries(base({ from: fromStage, sources: ['/test/link/b/c/d/foo'] })), (e: unknown) => e instanceof HtvendError && e.code === 'NOT_FOUND' && /--parents \/test\/link\/b\/c\/d\/foo: no such file/.test(e.message));
});

test('a source without wildcards must exist; a wildcard may match nothing beside another source', async (t) => {
  const { base } = await setup(t);
  await assert.rejects(copyEntries(base({ sources: ['./nonexistent-file'] })), (e: unknown) => e instanceof HtvendError && e.code === 'NOT_FOUND' && /nonexistent-file: no such file or directory in the build context/.test(e.message));
  await assert.rejects(copyEntries(base({ sources: ['x/./nonexistent-file'] })), /no such file/);
  assert.deepEqual(leaves(await copyEntries(base({ sources: ['nomatch*', 'x/a.txt'] }))), ['out/x/a.txt']);
});

test('--exclude is matched under the pivot directory, .dockerignore against context paths; --chmod and --chown reach the parents', async (t) => {
  const { base } = await setup(t, ['dir2/*.png']);
  assert.deepEqual(leaves(await copyEntries(base({ sources: ['dir*'], exclude: ['**/*.txt'] }))), ['out/dir1/a.png']); // dir2/c.png is .dockerignored
  assert.deepEqual(leaves(await copyEntries(base({ sources: ['dir*/*'], exclude: ['dir1'] }))), ['out/dir2/d.txt']);
  assert.deepEqual(leaves(await copyEntries(base({ sources: ['./dir1/./*'], exclude: ['*.png'] }))), ['out/b.txt']);
  const es = await copyEntries(base({ sources: ['foo1/foo2/bar'], dest: '/c/', chmod: 0o755 }));
  assert.deepEqual(es.map((e) => `${e.path}:${(e as { mode: number }).mode.toString(8)}`), ['c:755', 'c/foo1:755', 'c/foo1/foo2:755', 'c/foo1/foo2/bar:755']);
  // --chown too, files inside a matched directory included
  const owned = await copyEntries(base({ sources: ['foo1'], dest: '/o/', chown: { uid: 1000, gid: 1001 } }));
  assert.deepEqual(owned.map((e) => `${e.path}:${(e as { uid: number }).uid}:${(e as { gid: number }).gid}`), ['o:1000:1001', 'o/foo1:1000:1001', 'o/foo1/foo2:1000:1001', 'o/foo1/foo2/bar:1000:1001', 'o/foo1/foo2/baz:1000:1001']);
});
