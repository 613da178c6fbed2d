/**
 * RUN --mount types with a real runc: bind (context, other stage, ro/rw), cache, tmpfs, secret
 * (file and env=, required). None of them may leave anything in the layer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { executeRun } from '../../../src/builder/run/execute.js';
import type { RunMount } from '../../../src/builder/run/types.js';
import { tempDir } from '../../helpers/tmp.js';
import { collector, makeBusyboxRootfs, names, readLayer, request } from './helpers.js';

async function setup(t: Parameters<typeof tempDir>[0]) {
  const tmp = await tempDir(t, 'htvend-run-');
  const rootfs = await makeBusyboxRootfs(join(tmp, 'rootfs'));
  const context = join(tmp, 'context');
  await mkdir(join(context, 'sub'), { recursive: true });
  await writeFile(join(context, 'sub', 'file.txt'), 'from context\n');
  return { tmp, rootfs, context };
}

const bind = (over: Partial<Extract<RunMount, { type: 'bind' }>>): RunMount => ({ type: 'bind', target: '/src', source: '', readonly: true, ...over });

test('bind mount of the context is read-only by default and leaves no mountpoint in the layer', async (t) => {
  const { tmp, rootfs, context } = await setup(t);
  const out = collector();
  const r = await executeRun(
    request(rootfs, tmp, ['/bin/sh', '-c', 'cat /src/sub/file.txt; touch /src/x 2>/dev/null && echo writable || echo readonly'], {
      contextDir: context,
      mounts: [bind({})],
      output: out.stream,
    }),
  );
  assert.equal(out.text(), 'from context\nreadonly\n');
  assert.equal(r.layer, null);
});

test('rw bind mount accepts writes but changes neither the context nor the layer', async (t) => {
  const { tmp, rootfs, context } = await setup(t);
  const out = collector();
  const r = await executeRun(
    request(rootfs, tmp, ['/bin/sh', '-c', 'echo w > /src/file.txt && cat /src/file.txt'], {
      contextDir: context,
      mounts: [bind({ source: 'sub', readonly: false })],
      output: out.stream,
    }),
  );
  assert.equal(out.text(), 'w\n');
  assert.equal(r.layer, null);
  assert.deepEqual(await readdir(join(context, 'sub')), ['file.txt']);
});

test('bind mount from another stage reads that stage rootfs; a missing source is an error naming it', async (t) => {
  const { tmp, rootfs } = await setup(t);
  const other = join(tmp, 'stage-builder');
  await mkdir(join(other, 'out'), { recursive: true });
  await writeFile(join(other, 'out', 'app'), 'built\n');
  const stageRootfs = async (s: string) => {
    assert.equal(s, 'builder');
    return other;
  };
  const out = collector();
  await executeRun(request(rootfs, tmp, ['/bin/cat', '/mnt/app'], { stageRootfs, mounts: [bind({ from: 'builder', source: '/out', target: '/mnt' })], output: out.stream }));
  assert.equal(out.text(), 'built\n');
  await assert.rejects(
    executeRun(request(rootfs, tmp, ['/bin/true'], { stageRootfs, mounts: [bind({ from: 'builder', source: 'nope', target: '/mnt' })] })),
    /Dockerfile:3: --mount=type=bind source nope not found in builder/,
  );
});

test('cache mount keeps its content between steps of one build and stays out of layers', async (t) => {
  const { tmp, rootfs } = await setup(t);
  const cache: RunMount = { type: 'cache', target: '/var/cache/pkg', id: 'pkgs', sharing: 'locked', readonly: false, mode: 0o755, uid: 0, gid: 0 };
  const r1 = await executeRun(request(rootfs, tmp, ['/bin/sh', '-c', 'echo cached > /var/cache/pkg/a'], { mounts: [cache] }));
  assert.equal(r1.layer, null);
  const out = collector();
  const r2 = await executeRun(request(rootfs, tmp, ['/bin/sh', '-c', 'cat /var/cache/pkg/a; echo done > /tmp/r'], { mounts: [cache], output: out.stream }));
  assert.equal(out.text(), 'cached\n');
  assert.deepEqual(names(await readLayer(r2.layer!)), ['tmp', 'tmp/r']);
  assert.deepEqual(await readdir(join(tmp, 'cache')), ['pkgs']);
});

test('tmpfs mount is a tmpfs and what is written there is not in the layer', async (t) => {
  const { tmp, rootfs } = await setup(t);
  const out = collector();
  const r = await executeRun(
    request(rootfs, tmp, ['/bin/sh', '-c', 'echo x > /scratch/f && grep " /scratch " /proc/mounts | cut -d" " -f3'], {
      mounts: [{ type: 'tmpfs', target: '/scratch', size: 1 << 20 }],
      output: out.stream,
    }),
  );
  assert.equal(out.text(), 'tmpfs\n');
  assert.equal(r.layer, null);
});

test('secret mounts: file at the default /run/secrets/<id> with its mode, env= as a variable, neither in the layer', async (t) => {
  const { tmp, rootfs } = await setup(t);
  const secretFile = join(tmp, 'token.txt');
  await writeFile(secretFile, 's3cr3t');
  const out = collector();
  const r = await executeRun(
    request(rootfs, tmp, ['/bin/sh', '-c', 'cat /run/secrets/tok; echo; stat -c %a /run/secrets/tok; echo "$API_KEY"; cat /etc/key; echo; echo "$BOTH"; cat /etc/both; test ! -e /run/secrets/key'], {
      mounts: [
        { type: 'secret', id: 'tok', required: true, mode: 0o400, uid: 0, gid: 0, source: { kind: 'file', path: secretFile } },
        { type: 'secret', id: 'key', env: 'API_KEY', required: true, mode: 0o400, uid: 0, gid: 0, source: { kind: 'value', value: 'from-env' } },
        { type: 'secret', id: 'key2', target: '/etc/key', required: false, mode: 0o444, uid: 0, gid: 0, source: { kind: 'value', value: 'k2' } },
        // env= and target= together: both (BuildKit reference, RUN --mount=type=secret)
        { type: 'secret', id: 'both', env: 'BOTH', target: '/etc/both', required: true, mode: 0o400, uid: 0, gid: 0, source: { kind: 'value', value: 'b' } },
      ],
      output: out.stream,
    }),
  );
  assert.equal(out.text(), 's3cr3t\n400\nfrom-env\nk2\nb\nb');
  assert.equal(r.layer, null);
});

test('a required secret with no --secret fails; an optional one is skipped', async (t) => {
  const { tmp, rootfs } = await setup(t);
  await assert.rejects(
    executeRun(request(rootfs, tmp, ['/bin/true'], { mounts: [{ type: 'secret', id: 'missing', required: true, mode: 0o400, uid: 0, gid: 0 }] })),
    /Dockerfile:3: secret missing is required but no --secret id=missing was given/,
  );
  const out = collector();
  await executeRun(
    request(rootfs, tmp, ['/bin/sh', '-c', 'test -e /run/secrets/opt && echo present || echo absent'], {
      mounts: [{ type: 'secret', id: 'opt', required: false, mode: 0o400, uid: 0, gid: 0 }],
      output: out.stream,
    }),
  );
  assert.equal(out.text(), 'absent\n');
});

test('a cache id of ".." still names a directory inside the cache root', async (t) => {
  const { tmp, rootfs } = await setup(t);
  const cache: RunMount = { type: 'cache', target: '/c', id: '..', sharing: 'shared', readonly: false, mode: 0o755, uid: 0, gid: 0 };
  const out = collector();
  await executeRun(request(rootfs, tmp, ['/bin/sh', '-c', 'ls /c | wc -l; touch /c/x'], { mounts: [cache], output: out.stream }));
  assert.equal(out.text().trim(), '0', 'an empty new cache dir, not the build temp dir');
  assert.deepEqual(await readdir(join(tmp, 'cache', '%2E%2E')), ['x']);
});
