/**
 * RUN semantics with a real runc on a busybox rootfs: argv/env/user/workdir, exit codes,
 * whiteouts and opaque dirs in the resulting layer, abort, and the copy fallback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { executeRun } from '../../../src/builder/run/execute.js';
import { HtvendError } from '../../../src/util/errors.js';
import { tempDir } from '../../helpers/tmp.js';
import { addHostBinary } from '../../helpers/host-binary.js';
import { collector, makeBusyboxRootfs, names, readLayer, request, readFile } from './helpers.js';

async function setup(t: Parameters<typeof tempDir>[0]) {
  const tmp = await tempDir(t, 'htvend-run-');
  const rootfs = await makeBusyboxRootfs(join(tmp, 'rootfs'));
  return { tmp, rootfs };
}

test('shell form runs in the rootfs as root in / and its new file is the layer', async (t) => {
  const { tmp, rootfs } = await setup(t);
  const out = collector();
  const r = await executeRun(request(rootfs, tmp, ['/bin/sh', '-c', 'id -u; pwd; echo hello > /tmp/made'], { output: out.stream }));
  assert.equal(out.text(), '0\n/\n');
  assert.ok(r.layer);
  const members = await readLayer(r.layer);
  assert.deepEqual(names(members), ['tmp', 'tmp/made']);
  assert.equal(members.find((m) => m.name === 'tmp/made')!.body, 'hello\n');
  assert.equal(members.find((m) => m.name === 'tmp')!.mode, 0o1777);
  // The rootfs the builder owns is never written.
  await assert.rejects(readFile(join(rootfs, 'tmp', 'made')));
});

test('exec form passes argv untouched and env, workdir and SOURCE_DATE_EPOCH reach the process', async (t) => {
  const { tmp, rootfs } = await setup(t);
  const out = collector();
  const r = await executeRun(
    request(rootfs, tmp, ['/bin/sh', '-c', 'echo "$1|$FOO|$(pwd)|$SOURCE_DATE_EPOCH|$HOME|$PATH"', 'sh', 'a  b'], {
      env: ['FOO=bar baz'],
      workdir: '/opt/keep',
      epoch: 1700000000,
      output: out.stream,
    }),
  );
  assert.equal(out.text(), 'a  b|bar baz|/opt/keep|1700000000|/root|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n');
  assert.equal(r.layer, null, 'a step that changes nothing gives no layer');
});

test('USER by name gets the uid, primary gid and supplementary groups from the image', async (t) => {
  const { tmp, rootfs } = await setup(t);
  const out = collector();
  await executeRun(request(rootfs, tmp, ['/bin/sh', '-c', 'id -u; id -g; id -G; echo $HOME'], { user: 'app', output: out.stream }));
  assert.equal(out.text(), '1000\n1000\n1000 50\n/home/app\n');
});

test('USER uid:gid is used as is, and files it creates are owned by it in the layer', async (t) => {
  const { tmp, rootfs } = await setup(t);
  const out = collector();
  const r = await executeRun(request(rootfs, tmp, ['/bin/sh', '-c', 'id -u; id -g; touch /tmp/owned'], { user: '4242:50', output: out.stream }));
  assert.equal(out.text(), '4242\n50\n');
  const f = (await readLayer(r.layer!)).find((m) => m.name === 'tmp/owned')!;
  assert.deepEqual([f.uid, f.gid], [4242, 50]);
});

test('an unknown USER name fails naming the Dockerfile line', async (t) => {
  const { tmp, rootfs } = await setup(t);
  await assert.rejects(executeRun(request(rootfs, tmp, ['/bin/true'], { user: 'nobody-here' })), /Dockerfile:3: unable to find user nobody-here/);
});

test('a failing step rejects with CHILD naming the line, the command and the exit code', async (t) => {
  const { tmp, rootfs } = await setup(t);
  const err = await executeRun(request(rootfs, tmp, ['/bin/sh', '-c', 'exit 3'], { output: collector().stream })).catch((e: unknown) => e);
  assert.ok(err instanceof HtvendError);
  assert.equal(err.code, 'CHILD');
  assert.match(err.message, /^Dockerfile:3: RUN \["\/bin\/sh","-c","exit 3"\] failed: exit code 3$/);
});

for (const snapshot of ['overlay', 'copy'] as const) {
  test(`${snapshot} snapshot: deleted files and dirs become whiteouts, a recreated dir hides its old content`, async (t) => {
    const { tmp, rootfs } = await setup(t);
    const r = await executeRun(
      request(rootfs, tmp, ['/bin/sh', '-c', 'rm /etc/victim && rm -rf /var/lib/gone && rm -rf /opt/keep && mkdir /opt/keep && echo new > /opt/keep/new && chmod 600 /etc/passwd'], {
        output: collector().stream,
      }),
      { snapshot },
    );
    const got = names(await readLayer(r.layer!));
    const expected = ['etc', 'etc/.wh.victim', 'etc/passwd', 'opt', 'opt/keep', 'opt/keep/new', 'var', 'var/lib', 'var/lib/.wh.gone'];
    // Overlay records the rm -rf + mkdir as an opaque dir; the copy snapshot sees the dir's birth
    // time after its copy and writes it opaque too, so both give the same layer bytes.
    expected.push('opt/keep/.wh..wh..opq');
    assert.deepEqual(got, expected.sort());
    const passwd = (await readLayer(r.layer!)).find((m) => m.name === 'etc/passwd')!;
    assert.equal(passwd.mode, 0o600);
  });

  test(`${snapshot} snapshot: a file rewritten with the same size and mtime is still seen`, async (t) => {
    const { tmp, rootfs } = await setup(t);
    // `old\n` → `new\n`, then the original mtime put back: only the content tells.
    const r = await executeRun(
      request(rootfs, tmp, ['/bin/sh', '-c', 'touch -r /opt/keep/old /tmp/ref && echo new > /opt/keep/old && touch -r /tmp/ref /opt/keep/old && rm /tmp/ref'], {
        output: collector().stream,
      }),
      { snapshot },
    );
    const m = (await readLayer(r.layer!)).find((x) => x.name === 'opt/keep/old');
    assert.equal(m?.body, 'new\n');
  });

  test(`${snapshot} snapshot: an xattr set on an unchanged file and on a dir is in the layer`, async (t) => {
    const { tmp, rootfs } = await setup(t);
    await addHostBinary(rootfs, '/usr/bin/setfattr');
    // setfattr moves only the ctime: content, size, mode and mtime all stay as they were.
    const r = await executeRun(
      request(rootfs, tmp, ['/bin/sh', '-c', '/usr/bin/setfattr -n user.k -v v /opt/keep/old && /usr/bin/setfattr -n user.d -v dv /opt/keep'], { output: collector().stream }),
      { snapshot },
    );
    const members = await readLayer(r.layer!);
    assert.deepEqual(names(members), ['opt', 'opt/keep', 'opt/keep/old']);
    assert.equal(members.find((x) => x.name === 'opt/keep/old')!.pax['SCHILY.xattr.user.k'], 'v');
    assert.equal(members.find((x) => x.name === 'opt/keep')!.pax['SCHILY.xattr.user.d'], 'dv');
    assert.equal(members.find((x) => x.name === 'opt/keep/old')!.body, 'old\n');
  });
}

test('the step runs under crun too', { skip: !hasCrunWorking() }, async (t) => {
  const { tmp, rootfs } = await setup(t);
  const out = collector();
  const r = await executeRun(request(rootfs, tmp, ['/bin/sh', '-c', 'echo crun > /tmp/who; cat /tmp/who'], { output: out.stream }), { runtime: 'crun' });
  assert.equal(out.text(), 'crun\n');
  assert.deepEqual(names(await readLayer(r.layer!)), ['tmp', 'tmp/who']);
});

test('aborting kills the container promptly and leaves no container behind', async (t) => {
  const { tmp, rootfs } = await setup(t);
  const ac = new AbortController();
  const started = Date.now();
  setTimeout(() => ac.abort(), 700);
  await assert.rejects(executeRun(request(rootfs, tmp, ['/bin/sleep', '60'], { signal: ac.signal })), (e: unknown) => e instanceof HtvendError && e.code === 'ABORTED');
  assert.ok(Date.now() - started < 10_000);
  const list = execFileSync('runc', ['--root', join(tmp, 'runtime-state'), 'list', '-q'], { encoding: 'utf8' });
  assert.equal(list.trim(), '');
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  assert.ok(!mounts.includes(tmp), 'the overlay is unmounted');
});

test('--network none gives the step only a loopback interface; host network shows the host interfaces', async (t) => {
  const { tmp, rootfs } = await setup(t);
  const none = collector();
  await executeRun(request(rootfs, tmp, ['/bin/sh', '-c', 'ls /sys/class/net'], { network: 'none', output: none.stream }));
  assert.equal(none.text(), 'lo\n');
  const host = collector();
  await executeRun(request(rootfs, tmp, ['/bin/sh', '-c', 'ls /sys/class/net'], { network: 'host', output: host.stream }));
  assert.notEqual(host.text(), 'lo\n');
});

function hasCrunWorking(): boolean {
  try {
    execFileSync('crun', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('a privileged step (RUN --security=insecure) has every capability and may mount; a normal one may not', async (t) => {
  const { tmp, rootfs } = await setup(t);
  // Every capability the builder holds (its bounding set) is passed on.
  const all = /^CapBnd:\s*([0-9a-f]+)$/m.exec(await readFile('/proc/self/status', 'utf8'))![1]!;
  const script = 'grep CapEff /proc/self/status; mkdir -p /mnt/t && mount -t tmpfs none /mnt/t && echo mounted; umount /mnt/t 2>/dev/null; true';
  const privileged = collector();
  await executeRun(request(rootfs, tmp, ['/bin/sh', '-c', script], { privileged: true, output: privileged.stream }));
  assert.match(privileged.text(), new RegExp(`CapEff:\\s+${all}\\n`));
  assert.match(privileged.text(), /mounted/);
  const sandboxed = collector();
  await executeRun(request(rootfs, tmp, ['/bin/sh', '-c', script], { output: sandboxed.stream }));
  assert.doesNotMatch(sandboxed.text(), new RegExp(`CapEff:\\s+${all}\\n`));
  assert.doesNotMatch(sandboxed.text(), /mounted/);
});
