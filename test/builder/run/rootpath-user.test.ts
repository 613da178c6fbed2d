/** Path resolution inside a rootfs (symlinks never leave it) and USER resolution against the image's files. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveInRoot } from '../../../src/builder/run/rootpath.js';
import { resolveUser } from '../../../src/builder/run/user.js';
import { tempDir } from '../../helpers/tmp.js';

test('symlinks are followed inside the root: absolute targets restart at the root and .. stops there', async (t) => {
  const root = await tempDir(t);
  await mkdir(join(root, 'etc', 'ssl'), { recursive: true });
  await symlink('/run/resolv.conf', join(root, 'etc', 'resolv.conf'));
  await symlink('../../../../../../etc/ssl', join(root, 'etc', 'escape'));
  assert.deepEqual(await resolveInRoot(root, '/etc/resolv.conf'), { rel: 'run/resolv.conf', exists: false, missing: ['run', 'run/resolv.conf'] });
  assert.deepEqual(await resolveInRoot(root, '/etc/escape/certs/ca.pem'), { rel: 'etc/ssl/certs/ca.pem', exists: false, missing: ['etc/ssl/certs', 'etc/ssl/certs/ca.pem'] });
  assert.deepEqual(await resolveInRoot(root, '//etc/./ssl/'), { rel: 'etc/ssl', exists: true, missing: [] });
});

test('a symlink loop is an error, not a hang', async (t) => {
  const root = await tempDir(t);
  await symlink('/b', join(root, 'a'));
  await symlink('/a', join(root, 'b'));
  await assert.rejects(resolveInRoot(root, '/a/x'), /too many levels of symbolic links/);
});

test('USER forms: name:group, uid:group name, unknown group, uid not in passwd', async (t) => {
  const root = await tempDir(t);
  await mkdir(join(root, 'etc'));
  await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nsvc:x:100:101:svc:/srv:/bin/false\n');
  await writeFile(join(root, 'etc', 'group'), 'root:x:0:\nsvc:x:101:\nweb:x:200:svc\nextra:x:300:svc\n');
  assert.deepEqual(await resolveUser(root, 'svc', 'D:1'), { uid: 100, gid: 101, additionalGids: [101, 200, 300], home: '/srv' });
  assert.deepEqual(await resolveUser(root, 'svc:web', 'D:1'), { uid: 100, gid: 200, additionalGids: [200], home: '/srv' });
  assert.deepEqual(await resolveUser(root, '100:extra', 'D:1'), { uid: 100, gid: 300, additionalGids: [300], home: '/srv' });
  assert.deepEqual(await resolveUser(root, '4000', 'D:1'), { uid: 4000, gid: 0, additionalGids: [0], home: '/' });
  assert.deepEqual(await resolveUser(root, '', 'D:1'), { uid: 0, gid: 0, additionalGids: [0], home: '/root' });
  await assert.rejects(resolveUser(root, 'svc:nogroup', 'D:1'), /D:1: unable to find group nogroup/);
});
