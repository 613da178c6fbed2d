/** The suite's image reader: whiteouts, opaque dirs and hard links across layers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeLayer } from '../../src/builder/fs/layer-writer.js';
import { tempDir } from '../helpers/tmp.js';
import { formatEntry, listRootfs } from './rootfs-listing.js';

test('listRootfs applies layers in order: whiteouts, opaque dirs, hard-link groups, modes and owners', async (t) => {
  const dir = await tempDir(t, 'listing-');
  const a = join(dir, 'a');
  await writeFile(a, 'aaa');
  const l1 = await writeLayer(
    [
      { type: 'dir', path: 'd', mode: 0o755 },
      { type: 'file', path: 'd/keep', source: a, mode: 0o644 },
      { type: 'file', path: 'd/gone', source: a, mode: 0o644 },
      { type: 'dir', path: 'o', mode: 0o700, uid: 5, gid: 6 },
      { type: 'file', path: 'o/hidden', source: a, mode: 0o600 },
      { type: 'file', path: 'h1', source: a, mode: 0o4755 },
      { type: 'hardlink', path: 'h2', target: 'h1' },
    ],
    { epoch: 0, dir },
  );
  const l2 = await writeLayer([{ type: 'whiteout', path: 'd/gone' }, { type: 'opaque', path: 'o' }, { type: 'symlink', path: 'o/link', target: '../h1' }], { epoch: 0, dir });
  const listing = await listRootfs([l1.path, l2.path]);
  assert.deepEqual([...listing.values()].map(formatEntry).sort(), [
    '/d dir 0755 0:0',
    '/d/keep file 0644 0:0 3 9834876dcfb05cb1',
    '/h1 file 4755 0:0 3 9834876dcfb05cb1 hl=h1',
    '/h2 file 4755 0:0 3 9834876dcfb05cb1 hl=h1',
    '/o dir 0700 5:6',
    '/o/link symlink 0777 0:0 -> ../h1',
  ]);
  assert.equal(listing.get('d/keep')?.content?.toString(), 'aaa');
});
