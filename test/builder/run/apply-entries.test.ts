/**
 * executeRun(..., {applyTo}) moves a step's changes into the working rootfs; the result must
 * be the tree the builder gets by extracting the step's layer (fs/apply.ts applyLayer).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { applyLayer } from '../../../src/builder/fs/apply.js';
import { executeRun } from '../../../src/builder/run/execute.js';
import { tempDir } from '../../helpers/tmp.js';
import { collector, makeBusyboxRootfs, request } from './helpers.js';

/** Every path with type, mode, owner, size, link target, content hash and hard-link group (no times). */
function describeTree(root: string): string {
  return execFileSync(
    '/bin/sh',
    ['-c', 'cd "$1" && find . -mindepth 1 -printf "%p %y %m %U:%G %s %l %n\\n" | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum', 'sh', root],
    { encoding: 'utf8' },
  );
}

const script = [
  'rm /etc/victim && rm -rf /var/lib/gone', // whiteouts
  'rm -rf /opt/keep && mkdir /opt/keep && echo n > /opt/keep/new', // opaque dir
  'chmod 600 /etc/passwd && chown 1000:50 /etc/group', // metadata of existing files
  'mkdir -p /srv/a/b && echo deep > /srv/a/b/c && ln /srv/a/b/c /srv/a-link && ln -s /srv/a/b/c /srv/sym', // new tree, hard and soft links
  'rm -rf /home/app && ln -s /tmp /home/app', // a dir replaced by a symlink
  'rm /bin/vi && mkdir /bin/vi && touch /bin/vi/x', // a file replaced by a dir
].join(' && ');

for (const snapshot of ['overlay', 'copy'] as const) {
  test(`${snapshot}: applying a step by moving its files gives the same tree as extracting its layer`, async (t) => {
    const tmp = await tempDir(t, 'htvend-run-');
    const moved = await makeBusyboxRootfs(join(tmp, 'moved'));
    const extracted = join(tmp, 'extracted');
    execFileSync('cp', ['-a', moved, extracted]);
    assert.equal(describeTree(moved), describeTree(extracted));
    const r = await executeRun(request(moved, tmp, ['/bin/sh', '-c', script], { output: collector().stream }), { snapshot, applyTo: moved });
    await applyLayer(extracted, r.layer!.path, 'step layer');
    const after = describeTree(moved);
    assert.equal(after, describeTree(extracted));
    assert.match(after, /\.\/srv\/a\/b\/c f 644 0:0 5  2\n/, 'the hard link survived the move');
    assert.doesNotMatch(after, /\.\/etc\/victim|\.\/opt\/keep\/old|resolv\.conf/);
  });
}
