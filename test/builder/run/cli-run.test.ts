/**
 * RUN semantics through the real CLI: SHELL + shell form, exec form, USER by name, WORKDIR,
 * ENV, deletes of base files and dirs; the image is unpacked by umoci and run by runc. The
 * same build with the copy fallback forced (BUILD_IMG_SNAPSHOT=copy) gives the same digest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startBusyboxRegistry } from '../../helpers/busybox-image.js';
import { run, runCli } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/tmp.js';

test('RUN steps built by the CLI behave as written, in overlay and copy snapshot modes alike', async (t) => {
  const bb = await startBusyboxRegistry(t);
  const work = await tempDir(t, 'htvend-clirun-');
  const ctx = join(work, 'ctx');
  await mkdir(ctx);
  await writeFile(
    join(ctx, 'Dockerfile'),
    [
      `FROM ${bb.ref}`,
      'ENV GREETING=hi',
      'SHELL ["/bin/sh", "-e", "-c"]',
      'RUN echo "$GREETING from $0" > /shell.txt',
      'RUN ["/bin/sh", "-c", "echo exec > /exec.txt"]',
      'RUN rm -f /etc/group.bak; rm -rf /home && rm /bin/ls',
      'WORKDIR /work',
      'USER app',
      'RUN id -u > /tmp/ids.txt && id -g >> /tmp/ids.txt && pwd >> /tmp/ids.txt',
      'USER root',
      'CMD ["/bin/sh", "-c", "cat /shell.txt /exec.txt /tmp/ids.txt; test -e /home || echo no-home; test -e /bin/ls || echo no-ls"]',
    ].join('\n'),
  );
  const build = async (tag: string, extraEnv: Record<string, string>) => {
    const r = await runCli('build-img-with-proxy', ['--tls-verify=false', '--platform', 'linux/amd64', '-t', `oci:${work}/layout-${tag}:img`, ctx], {
      env: { ...process.env, SOURCE_DATE_EPOCH: '0', ...extraEnv },
      timeoutMs: 180_000,
    });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  const overlay = await build('overlay', { BUILD_IMG_SNAPSHOT: 'overlay' });
  const copy = await build('copy', { BUILD_IMG_SNAPSHOT: 'copy' });
  assert.equal(copy, overlay, 'the copy fallback records the same changes as overlay');

  const bundle = join(work, 'bundle');
  const unpack = await run(['umoci', 'unpack', '--image', `${work}/layout-overlay:img`, bundle]);
  assert.equal(unpack.code, 0, unpack.stderr);
  const cfg = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8'));
  cfg.process.terminal = false;
  await writeFile(join(bundle, 'config.json'), JSON.stringify(cfg));
  const id = `htvend-clirun-${process.pid}`;
  const r = await run(['runc', 'run', '-b', bundle, id], { timeoutMs: 60_000 });
  await run(['runc', 'delete', '-f', id]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hi from /bin/sh\nexec\n1000\n1001\n/work\nno-home\nno-ls\n');
  assert.ok(!existsSync(join(bundle, 'rootfs', 'etc', 'resolv.conf')), 'no runtime mountpoint in the image');
});

test('a failing RUN makes the CLI exit non-zero naming Dockerfile:LINE, the command and its exit code', async (t) => {
  const bb = await startBusyboxRegistry(t);
  const ctx = await tempDir(t, 'htvend-clirun-');
  await writeFile(join(ctx, 'Dockerfile'), `FROM ${bb.ref}\nRUN true\nRUN echo about to fail && exit 7\n`);
  const r = await runCli('build-img-with-proxy', ['--tls-verify=false', '--platform', 'linux/amd64', '-t', `oci:${ctx}/out:x`, ctx], { timeoutMs: 120_000 });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /about to fail/);
  assert.match(r.stderr, /Dockerfile:3: RUN \["\/bin\/sh","-c","echo about to fail && exit 7"\] failed: exit code 7/);
});
