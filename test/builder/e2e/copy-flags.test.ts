/**
 * COPY/ADD flags end to end (the whole builder, unpacked result): `--exclude` relative to each
 * source for the context and a `--from` stage (BuildKit's testExcludedFilesOnCopy), and
 * `COPY --parents` (BuildKit's testCopyParents and testCopyRelativeParents).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { buildIn } from './fidelity-helpers.js';

/** Every non-directory path under `dir`, sorted. */
async function leaves(dir: string): Promise<string[]> {
  const out = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((d) => !d.isDirectory()).map((d) => relative(dir, join(d.parentPath, d.name)));
  return out.sort();
}

const CONTEXT = {
  'dir1/a.png': '1', 'dir1/b.txt': '2', 'dir3/c.mp3': '3', 'dir3/d.mpeg': '4',
};

test('COPY/ADD --exclude: patterns are matched under each source, context and --from stage alike', async () => {
  const { rootfs } = await buildIn([
    'FROM scratch AS base',
    'COPY . /src/',
    'FROM scratch',
    'COPY --exclude=*/*.png . /1/',
    'ADD --exclude=*.mp3 dir3/ /3/',
    'COPY --exclude=*.txt --exclude=*.mp3 dir* /4/',
    'COPY --from=base --exclude=*.mp3 /src/dir3 /5/',
    'COPY --from=base --exclude=dir1 --exclude=*/*.mpeg /src/ /6/',
  ].join('\n'), CONTEXT);
  assert.deepEqual(await leaves(join(rootfs, '1')), ['dir1/b.txt', 'dir3/c.mp3', 'dir3/d.mpeg']);
  assert.deepEqual(await leaves(join(rootfs, '3')), ['d.mpeg']);
  assert.deepEqual(await leaves(join(rootfs, '4')), ['a.png', 'd.mpeg']);
  assert.deepEqual(await leaves(join(rootfs, '5')), ['d.mpeg']);
  assert.deepEqual(await leaves(join(rootfs, '6')), ['dir3/c.mp3']);
});

test('COPY --parents: context and --from stage, pivots, wildcards and ** (BuildKit testCopyParents / testCopyRelativeParents)', async () => {
  const { rootfs } = await buildIn([
    'FROM scratch AS base',
    'COPY . /src/',
    'FROM scratch',
    'WORKDIR /1',
    'COPY --parents foo1/foo2/ba* x/./a.txt .',
    'COPY --from=base --parents /src/a/b*/./c/**/e /2/',
    'COPY --from=base --parents --exclude=**/*.png /src/dir1 /3',
  ].join('\n'), {
    'foo1/foo2/bar': 'testing', 'foo1/foo2/baz': 'testing2', 'x/a.txt': 'a',
    'a/b/c/d/foo': '1', 'a/b/c/d/e/bay': '2', 'a/b2/c/d/e/bar': '3', 'dir1/a.png': '4', 'dir1/b.txt': '5',
  });
  assert.deepEqual(await leaves(join(rootfs, '1')), ['a.txt', 'foo1/foo2/bar', 'foo1/foo2/baz']);
  assert.deepEqual(await leaves(join(rootfs, '2')), ['c/d/e/bar', 'c/d/e/bay']);
  assert.deepEqual(await leaves(join(rootfs, '3')), ['src/dir1/b.txt']);
});
