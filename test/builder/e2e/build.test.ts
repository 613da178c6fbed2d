/**
 * End-to-end builds with the real CLI against a real registry (token auth, anonymous pull),
 * each output checked by tools nobody here wrote: skopeo, umoci, runc.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { tempDir } from '../../helpers/tmp.js';
import { cliCommand, run, runCli } from '../../helpers/cli.js';
import { startBusyboxRegistry } from '../../helpers/busybox-image.js';

async function mkCtx(dir: string, files: Record<string, string>): Promise<string> {
  for (const [p, c] of Object.entries(files)) {
    await mkdir(join(dir, p, '..'), { recursive: true });
    await writeFile(join(dir, p), c);
  }
  return dir;
}

async function ok(argv: string[]): Promise<string> {
  // No stdin: avoids EPIPE races with tools that exit before reading it.
  const r = await run(argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** umoci unpack + runc run; returns stdout of the container. */
async function runImage(layout: string, tag: string, work: string): Promise<{ out: string; rootfs: string }> {
  const bundle = join(work, `bundle-${tag}`);
  await ok(['umoci', 'unpack', '--image', `${layout}:${tag}`, bundle]);
  const cfgPath = join(bundle, 'config.json');
  const cfg = JSON.parse(await readFile(cfgPath, 'utf8'));
  cfg.process.terminal = false;
  await writeFile(cfgPath, JSON.stringify(cfg));
  const id = `htvend-bld-${process.pid}-${tag}`;
  const r = await run(['runc', 'run', '-b', bundle, id], { timeoutMs: 60_000 });
  await run(['runc', 'delete', '-f', id]);
  assert.equal(r.code, 0, r.stderr);
  return { out: r.stdout, rootfs: join(bundle, 'rootfs') };
}

test('build-img-with-proxy against a token-auth registry', async (t) => {
  const bb = await startBusyboxRegistry(t, { auth: 'token', multiArch: true });
  const work = await tempDir(t, 'bip-e2e-');
  const tmpForChild = join(work, 'child-tmp');
  await mkdir(tmpForChild);
  // Push credentials the way buildah users give them: an auth file.
  const [user, pass] = Object.entries(bb.registry.users)[0]!;
  const authFile = join(work, 'auth.json');
  await writeFile(authFile, JSON.stringify({ auths: { [bb.registry.host]: { auth: Buffer.from(`${user}:${pass}`).toString('base64') } } }));
  const env = { ...process.env, TMPDIR: tmpForChild, SOURCE_DATE_EPOCH: '1700000000', REGISTRY_AUTH_FILE: authFile };
  const cli = (args: string[]) => runCli('build-img-with-proxy', ['--tls-verify=false', ...args], { env, timeoutMs: 180_000 });

  const ctx = await mkCtx(join(work, 'ctx'), {
    'Dockerfile': [
      `ARG BASE=${bb.ref}`,
      'FROM ${BASE} AS base',
      'FROM base',
      'ARG WHO=world',
      'ENV GREETING="hello ${WHO}"',
      'WORKDIR /app',
      'COPY --chown=app:appgroup --chmod=640 msg.txt ./',
      'COPY dir/ /data/',
      'USER app',
      'LABEL org.example.k=v',
      'EXPOSE 8080',
      'ENTRYPOINT ["/bin/sh", "-c"]',
      'CMD ["echo \\"$GREETING\\" from $(pwd) as $(id -u):$(id -g); cat /app/msg.txt; ls /data"]',
    ].join('\n'),
    'msg.txt': 'the message\n',
    'dir/a': 'a', 'dir/sub/b': 'b', 'dir/skip.log': 'ignored',
    '.dockerignore': '**/*.log\n',
  });

  await t.test('COPY/ENV/WORKDIR/USER/CMD image runs under runc as written, base layer kept byte for byte', async () => {
    const r = await cli(['--platform', 'linux/amd64', '--build-arg', 'WHO=tests', '-t', `oci:${work}/layout:v1`, ctx]);
    assert.equal(r.code, 0, r.stderr);
    const digest = r.stdout.trim();
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
    const inspect = JSON.parse(await ok(['skopeo', 'inspect', `oci:${work}/layout:v1`]));
    assert.equal(inspect.Digest, digest);
    assert.equal(inspect.Created, '2023-11-14T22:13:20Z');
    assert.deepEqual(inspect.Labels, { 'org.example.k': 'v' });
    const base = JSON.parse(await ok(['skopeo', 'inspect', '--tls-verify=false', '--override-arch', 'amd64', `docker://${bb.ref}`]));
    assert.equal(inspect.Layers[0], base.Layers[0]);
    const { out, rootfs } = await runImage(`${work}/layout`, 'v1', work);
    assert.equal(out, 'hello tests from /app as 1000:1001\nthe message\na\nsub\n');
    const st = await stat(join(rootfs, 'app/msg.txt'));
    assert.equal(st.mode & 0o777, 0o640);
    assert.ok(!existsSync(join(rootfs, 'data/skip.log')), '.dockerignore respected');
    assert.deepEqual((await readdir(tmpForChild)).filter((n) => !n.startsWith('tsx-')), [], 'private temp dir removed');
  });

  await t.test('two builds of the same inputs give the same digest, whatever the context mtimes', async () => {
    const a = await cli(['--platform', 'linux/amd64', '-t', `oci-archive:${work}/a.tar`, ctx]);
    await utimes(join(ctx, 'msg.txt'), new Date(), new Date());
    const b = await cli(['--platform', 'linux/amd64', '-t', `oci-archive:${work}/b.tar`, ctx]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(a.stdout, b.stdout);
    assert.deepEqual(await readFile(`${work}/a.tar`), await readFile(`${work}/b.tar`));
    const inspect = JSON.parse(await ok(['skopeo', 'inspect', `oci-archive:${work}/a.tar`]));
    assert.equal(inspect.Digest, a.stdout.trim());
  });

  await t.test('multi-platform build writes an index of every platform (default oci/ output)', { skip: bb.arm64 ? false : 'busybox-static:arm64 unavailable (no Debian mirror?)' }, async () => {
    const out = join(work, 'mp');
    await mkdir(out);
    const r = await run([...cliCommand('build-img-with-proxy'), '--tls-verify=false', ctx], { env: { ...env, PLATFORMS: 'linux/amd64 linux/arm64' }, cwd: out, timeoutMs: 180_000 });
    assert.equal(r.code, 0, r.stderr);
    // --platform as a comma list, pushed as an index
    const p = await cli(['--platform', 'linux/amd64,linux/arm64', '-t', `docker://${bb.registry.host}/multi:1`, ctx]);
    assert.equal(p.code, 0, p.stderr);
    const pushed = JSON.parse(await ok(['skopeo', 'inspect', '--raw', '--tls-verify=false', '--creds', `${user}:${pass}`, `docker://${bb.registry.host}/multi:1`]));
    assert.equal(pushed.manifests.length, 2);
    assert.equal(`sha256:${(await ok(['sh', '-c', `skopeo inspect --raw --tls-verify=false --creds ${user}:${pass} docker://${bb.registry.host}/multi:1 | sha256sum`])).split(' ')[0]}`, p.stdout.trim());
    const index = JSON.parse(await ok(['skopeo', 'inspect', '--raw', `oci:${out}/oci`]));
    assert.deepEqual(index.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture), ['amd64', 'arm64']);
    const arm = JSON.parse(await ok(['skopeo', 'inspect', '--override-arch', 'arm64', `oci:${out}/oci`]));
    assert.equal(arm.Architecture, 'arm64');
  });

  await t.test('docker-archive output is readable by skopeo and docker:// pushes to a registry', async () => {
    const r = await cli(['--platform', 'linux/amd64', '-t', `docker-archive:${work}/d.tar:example/app:1`, '-t', `docker://${bb.registry.host}/pushed:1`, ctx]);
    assert.equal(r.code, 0, r.stderr);
    const d = JSON.parse(await ok(['skopeo', 'inspect', `docker-archive:${work}/d.tar`]));
    assert.deepEqual(d.Env.filter((e: string) => e.startsWith('GREETING')), ['GREETING=hello world']);
    const dm = JSON.parse(await ok(['tar', '-xOf', `${work}/d.tar`, 'manifest.json']));
    assert.deepEqual(dm[0].RepoTags, ['example/app:1']);
    // A full copy makes skopeo read every layer and check it against the config's diff_ids.
    await ok(['skopeo', 'copy', '-q', `docker-archive:${work}/d.tar`, `oci:${work}/from-docker-archive:x`]);
    const pushed = JSON.parse(await ok(['skopeo', 'inspect', '--tls-verify=false', '--creds', `${user}:${pass}`, `docker://${bb.registry.host}/pushed:1`]));
    assert.equal(pushed.Digest, r.stdout.trim());
  });

  await t.test('a base image with zstd layers is pulled and built on: RUN runs on its rootfs, its layers are kept', async () => {
    const creds = `${user}:${pass}`;
    const zstdRef = `${bb.registry.host}/busybox:zstd`;
    // skopeo 1.9 reuses the gzip blob whatever --dest-compress-format says, so the layers are
    // recompressed here: an amd64 OCI layout whose manifest names zstd layers, then pushed as is.
    const lay = join(work, 'zstd-src');
    await ok(['skopeo', '--override-arch', 'amd64', 'copy', '-q', '--src-tls-verify=false', '--src-creds', creds, `docker://${bb.ref}`, `oci:${lay}:x`]);
    const blob = (d: string) => join(lay, 'blobs', 'sha256', d.replace('sha256:', ''));
    const index = JSON.parse(await readFile(join(lay, 'index.json'), 'utf8'));
    const manifest = JSON.parse(await readFile(blob(index.manifests[0].digest), 'utf8'));
    for (const l of manifest.layers) {
      const out = join(work, 'layer.zst');
      await ok(['sh', '-c', `gzip -dc "$1" | zstd -q -c > "$2"`, 'sh', blob(l.digest), out]);
      const bytes = await readFile(out);
      l.digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      l.size = bytes.length;
      l.mediaType = 'application/vnd.oci.image.layer.v1.tar+zstd';
      await writeFile(blob(l.digest), bytes);
    }
    const mBytes = Buffer.from(JSON.stringify(manifest));
    index.manifests[0].digest = `sha256:${createHash('sha256').update(mBytes).digest('hex')}`;
    index.manifests[0].size = mBytes.length;
    await writeFile(blob(index.manifests[0].digest), mBytes);
    await writeFile(join(lay, 'index.json'), JSON.stringify(index));
    await ok(['skopeo', 'copy', '-q', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${lay}:x`, `docker://${zstdRef}`]);
    const raw = JSON.parse(await ok(['skopeo', 'inspect', '--raw', '--tls-verify=false', '--creds', creds, `docker://${zstdRef}`]));
    assert.ok(raw.layers.every((l: { mediaType: string }) => l.mediaType.endsWith('+zstd')), JSON.stringify(raw.layers));
    const zc = await mkCtx(join(work, 'zstd'), { 'Dockerfile': `FROM ${zstdRef}\nRUN echo zstd-base-ok > /z.txt\nCMD ["cat", "/z.txt"]\n` });
    const r = await cli(['--platform', 'linux/amd64', '-t', `oci:${work}/zstd-layout:z`, zc]);
    assert.equal(r.code, 0, r.stderr);
    // umoci cannot unpack zstd layers, so the image is read directly: base layers kept as they
    // were (zstd), and the RUN step's layer (gzip) holds what busybox from the zstd base wrote.
    const out = join(work, 'zstd-layout');
    const outIndex = JSON.parse(await readFile(join(out, 'index.json'), 'utf8'));
    const outManifest = JSON.parse(await readFile(join(out, 'blobs', 'sha256', outIndex.manifests[0].digest.slice(7)), 'utf8'));
    const types = outManifest.layers.map((l: { mediaType: string }) => l.mediaType);
    assert.deepEqual(types, [...manifest.layers.map((l: { mediaType: string }) => l.mediaType), 'application/vnd.oci.image.layer.v1.tar+gzip']);
    const top = join(out, 'blobs', 'sha256', outManifest.layers.at(-1).digest.slice(7));
    assert.equal(await ok(['tar', '-xzOf', top, 'z.txt']), 'zstd-base-ok\n');
  });

  await t.test('multi-stage: COPY --from a stage, only the target\'s stages are built', async () => {
    const ms = await mkCtx(join(work, 'ms'), {
      'Dockerfile': [
        `FROM ${bb.ref} AS tools`,
        'COPY tool.sh /usr/local/bin/tool',
        'FROM scratch AS never',
        'COPY does-not-exist /x',
        'FROM scratch',
        'COPY --from=tools /usr/local/bin/tool /tool',
        'COPY --from=tools /bin/busybox /bin/busybox',
        'ENTRYPOINT ["/bin/busybox", "sh", "/tool"]',
      ].join('\n'),
      'tool.sh': 'echo tool ran\n',
    });
    const r = await cli(['--platform', 'linux/amd64', '-t', `oci:${work}/ms-layout:ms`, ms]);
    assert.equal(r.code, 0, r.stderr);
    const { out } = await runImage(`${work}/ms-layout`, 'ms', work);
    assert.equal(out, 'tool ran\n');
  });

  await t.test('RUN steps (runc) add layers with their deletions; secrets and global --mount stay out of the image; ONBUILD triggers fire; --allow security.insecure lets a step mount', async () => {
    const rc = await mkCtx(join(work, 'run'), {
      'Dockerfile': [
        `FROM ${bb.ref} AS parent`,
        'ONBUILD RUN echo from-onbuild > /onbuild.txt',
        'FROM parent',
        'RUN echo built > /built.txt && rm /bin/ls',
        'RUN --mount=type=secret,id=tok,env=TOKEN echo "len=${#TOKEN}" > /secret-len',
        'RUN test -f /run/secrets/glob && echo global-mount-seen > /global.txt',
        'RUN --security=insecure mkdir /m && mount -t tmpfs none /m && echo privileged > /privileged.txt && umount /m && rmdir /m',
        'CMD ["cat", "/built.txt", "/onbuild.txt", "/secret-len", "/global.txt", "/privileged.txt"]',
      ].join('\n'),
    });
    const secretFile = join(work, 'glob-secret');
    await writeFile(secretFile, 'zzz');
    const r = await runCli('build-img-with-proxy', ['--tls-verify=false', '--platform', 'linux/amd64', '--secret', 'id=tok,type=env,env=TOK', '--secret', `id=glob,src=${secretFile}`, '--mount', 'type=secret,id=glob', '--allow', 'security.insecure', '-t', `oci:${work}/run-layout:run`, rc], { env: { ...env, TOK: 'abcdef' }, timeoutMs: 180_000 });
    assert.equal(r.code, 0, r.stderr);
    const { out, rootfs } = await runImage(`${work}/run-layout`, 'run', work);
    assert.equal(out, 'built\nfrom-onbuild\nlen=6\nglobal-mount-seen\nprivileged\n');
    assert.ok(!existsSync(join(rootfs, 'bin/ls')), 'whiteout of a base file applied');
    assert.ok(!existsSync(join(rootfs, 'run/secrets/glob')), 'secret mountpoint not in the image');
    const cfg = JSON.parse(await ok(['skopeo', 'inspect', '--config', `oci:${work}/run-layout:run`]));
    assert.equal(cfg.config.OnBuild ?? null, null);
  });

  const bad: [string, string, string[], RegExp][] = [
    ['an unknown instruction', `FROM ${bb.ref}\nFOO bar\n`, [], /Dockerfile:2: unknown instruction: FOO/],
    ['a missing --target stage', `FROM ${bb.ref} AS a\n`, ['--target', 'nope'], /--target nope: no stage/],
    ['COPY of a missing file', `FROM ${bb.ref}\nENV A=1\nCOPY missing.txt /x\n`, [], /Dockerfile:3: COPY missing.txt: no such file or directory in the build context/],
    ['a bad FROM --platform', `FROM --platform=linux ${bb.ref}\n`, [], /Dockerfile:1: FROM --platform=linux: invalid platform/],
    ['a base image that does not exist', `FROM ${bb.registry.host}/nope:1\n`, [], /Dockerfile:1: pulling .*nope:1/],
  ];
  for (const [what, dockerfile, args, re] of bad) {
    await t.test(`a Dockerfile with ${what} fails citing file:line and leaves no output`, async () => {
      const dir = await mkCtx(join(work, `bad-${what.replace(/\W+/g, '-')}`), { Dockerfile: dockerfile });
      const r = await cli(['--platform', 'linux/amd64', ...args, '-t', `oci-archive:${dir}/out.tar`, dir]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, re);
      assert.deepEqual((await readdir(dir)).sort(), ['Dockerfile']);
      assert.deepEqual((await readdir(tmpForChild)).filter((n) => !n.startsWith('tsx-')), []);
    });
  }
});
