/**
 * Foreign-architecture RUN: an arm64 rootfs runs under qemu-aarch64 through binfmt_misc
 * (scripts/setup.sh enables it). Needs the Debian mirror for busybox-static:arm64.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { executeRun } from '../../../src/builder/run/execute.js';
import { checkPlatform } from '../../../src/builder/run/platform.js';
import { tempDir } from '../../helpers/tmp.js';
import { arm64Busybox } from '../../helpers/busybox-image.js';
import { collector, makeBusyboxRootfs, names, readLayer, request } from './helpers.js';

test('an arm64 RUN step runs under qemu and its layer is recorded like any other', { skip: process.env.HTVEND_TEST_NO_NETWORK === '1' ? 'needs the Debian mirror' : false }, async (t) => {
  const busybox = await arm64Busybox();
  if (!busybox) return t.skip('busybox-static:arm64 unavailable (no Debian mirror?)');
  const tmp = await tempDir(t, 'htvend-run-');
  const rootfs = await makeBusyboxRootfs(join(tmp, 'rootfs'), busybox);
  const out = collector();
  const r = await executeRun(
    request(rootfs, tmp, ['/bin/sh', '-c', 'uname -m; uname -m > /tmp/arch'], { platform: { os: 'linux', architecture: 'arm64' }, output: out.stream }),
  );
  assert.equal(out.text(), 'aarch64\n');
  assert.deepEqual(names(await readLayer(r.layer!)), ['tmp', 'tmp/arch']);
});

test('a platform with no binfmt handler or another OS is refused before anything runs', async () => {
  await assert.rejects(checkPlatform({ os: 'windows', architecture: 'amd64' }, 'Dockerfile:2'), /Dockerfile:2: cannot RUN for os windows/);
  await assert.rejects(checkPlatform({ os: 'linux', architecture: 'no-such-arch' }, 'Dockerfile:2'), /needs qemu-no-such-arch registered in binfmt_misc/);
});
