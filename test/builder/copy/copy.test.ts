import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest } from 'node:http';
import { once } from 'node:events';
import { connect, type AddressInfo } from 'node:net';
import { link, mkdir, writeFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { tempDir } from '../../helpers/tmp.js';
import { run as runWithStdin } from '../../helpers/cli.js';

/** Commands here read no stdin; not opening it avoids EPIPE races with fast-exiting tools. */
const run = (argv: string[]) => runWithStdin(argv, { stdio: ['ignore', 'pipe', 'pipe'] });
import { copyEntries, resolveChown, rootfsLookup, rootfsReadlink, type CopyRequest } from '../../../src/builder/copy/copy.js';
import { newIgnore } from '../../../src/builder/copy/sources.js';
import { createTransport } from '../../../src/registry/index.js';
import type { LayerEntry } from '../../../src/builder/fs/types.js';

async function setup(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t, 'copy-');
  const ctx = join(dir, 'ctx');
  const rootfs = join(dir, 'rootfs');
  for (const d of ['ctx/src/sub', 'rootfs/existing', 'rootfs/etc', 'tmp']) await mkdir(join(dir, d), { recursive: true });
  for (const [p, c] of Object.entries({ 'a.txt': 'a', 'b.txt': 'b', 'c.md': 'c', 'src/x.js': 'x', 'src/sub/y.js': 'y', 'src/debug.log': 'log' })) await writeFile(join(ctx, p), c);
  await writeFile(join(rootfs, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\nweb:x:33:44::/var/www:/bin/sh\n');
  await writeFile(join(rootfs, 'etc/group'), 'root:x:0:\nstaff:x:50:\n');
  await symlink('/existing', join(rootfs, 'linked'));
  const base = (over: Partial<CopyRequest>): CopyRequest => ({
    kind: 'COPY', sources: [], dest: '/', workdir: '/', lookup: rootfsLookup(rootfs), heredocs: [], expandHeredoc: (s) => s, epoch: 0,
    from: { dir: ctx, isContext: true, ignore: newIgnore().add(['**/*.log']) },
    tmpDir: join(dir, 'tmp'), dispatcher: () => createTransport({ env: {} }), where: 'Dockerfile:3', ...over,
  });
  return { dir, ctx, rootfs, base };
}

const paths = (es: LayerEntry[]) => es.map((e) => `${e.type}:${e.path}`).sort();

test('a directory source copies its contents; new parents are created once, existing ones are not touched', async (t) => {
  const { base } = await setup(t);
  assert.deepEqual(paths(await copyEntries(base({ sources: ['src'], dest: '/app/code' }))), ['dir:app', 'dir:app/code', 'dir:app/code/sub', 'file:app/code/sub/y.js', 'file:app/code/x.js']);
  assert.deepEqual(paths(await copyEntries(base({ sources: ['src/x.js'], dest: '/existing/' }))), ['file:existing/x.js']);
});

test('destination rules: rename without a slash, into a dir with one, into an existing dir (through a symlink) and WORKDIR-relative', async (t) => {
  const { base } = await setup(t);
  assert.deepEqual(paths(await copyEntries(base({ sources: ['a.txt'], dest: '/existing/renamed' }))), ['file:existing/renamed']);
  assert.deepEqual(paths(await copyEntries(base({ sources: ['a.txt'], dest: '/new/' }))), ['dir:new', 'file:new/a.txt']);
  assert.deepEqual(paths(await copyEntries(base({ sources: ['a.txt'], dest: '/existing' }))), ['file:existing/a.txt']);
  assert.deepEqual(paths(await copyEntries(base({ sources: ['a.txt'], dest: 'rel', workdir: '/existing' }))), ['file:existing/rel']);
});

test('globs follow Docker semantics and several sources need a directory destination', async (t) => {
  const { base } = await setup(t);
  assert.deepEqual(paths(await copyEntries(base({ sources: ['*.txt'], dest: '/d/' }))), ['dir:d', 'file:d/a.txt', 'file:d/b.txt']);
  assert.deepEqual(paths(await copyEntries(base({ sources: ['src/*.js'], dest: '/d/' }))), ['dir:d', 'file:d/x.js']);
  await assert.rejects(copyEntries(base({ sources: ['a.txt', 'b.txt'], dest: '/notadir' })), /Dockerfile:3: .*destination must be a directory and end with a \//);
  await assert.rejects(copyEntries(base({ sources: ['*.none'], dest: '/d/' })), /Dockerfile:3: COPY \*\.none: no source files matched in the build context/);
});

test('.dockerignore hides files from directory copies and from explicit sources', async (t) => {
  const { base } = await setup(t);
  const es = await copyEntries(base({ sources: ['.'], dest: '/w/' }));
  assert.ok(!paths(es).includes('file:w/src/debug.log'));
  assert.ok(paths(es).includes('file:w/src/x.js'));
  await assert.rejects(copyEntries(base({ sources: ['src/debug.log'], dest: '/x' })), /excluded by \.dockerignore/);
});

test('a .dockerignore exception re-includes a file inside an ignored directory', async (t) => {
  const { base, ctx } = await setup(t);
  const ignore = newIgnore().add(['src', '!src/sub/y.js']);
  const es = await copyEntries(base({ sources: ['.'], dest: '/w/', from: { dir: ctx, isContext: true, ignore, hasExceptions: true } }));
  const files = paths(es).filter((p) => p.startsWith('file:'));
  assert.ok(files.includes('file:w/src/sub/y.js'));
  assert.ok(!files.includes('file:w/src/x.js'));
});

test('context files belong to root unless --chown, names resolve in the image, --chmod applies', async (t) => {
  const { base, rootfs } = await setup(t);
  const [plain] = await copyEntries(base({ sources: ['a.txt'], dest: '/existing/a' }));
  assert.ok(plain?.type === 'file');
  assert.deepEqual([plain.uid, plain.gid], [0, 0]);
  const chown = await resolveChown(rootfs, 'web:staff', 'Dockerfile:3');
  assert.deepEqual(chown, { uid: 33, gid: 50 });
  assert.deepEqual(await resolveChown(rootfs, 'web', 'Dockerfile:3'), { uid: 33, gid: 44 });
  assert.deepEqual(await resolveChown(rootfs, '7', 'Dockerfile:3'), { uid: 7, gid: 7 });
  await assert.rejects(resolveChown(rootfs, 'nobody', 'Dockerfile:3'), /Dockerfile:3: --chown=nobody: no user nobody/);
  const [f] = await copyEntries(base({ sources: ['a.txt'], dest: '/existing/a', chown, chmod: 0o600 }));
  assert.ok(f?.type === 'file');
  assert.deepEqual([f.uid, f.gid, f.mode], [33, 50, 0o600]);
});

test('ADD extracts a local tar.gz into the destination', async (t) => {
  const { base, ctx, dir } = await setup(t);
  await mkdir(join(dir, 'tarsrc/pkg'), { recursive: true });
  await writeFile(join(dir, 'tarsrc/pkg/file'), 'in tar');
  const r = await run(['tar', '-czf', join(ctx, 'pkg.tar.gz'), '-C', join(dir, 'tarsrc'), 'pkg']);
  assert.equal(r.code, 0);
  assert.deepEqual(paths(await copyEntries(base({ kind: 'ADD', sources: ['pkg.tar.gz'], dest: '/opt/' }))), ['dir:opt', 'dir:opt/pkg', 'file:opt/pkg/file']);
  // COPY never extracts
  assert.deepEqual(paths(await copyEntries(base({ sources: ['pkg.tar.gz'], dest: '/opt/' }))), ['dir:opt', 'file:opt/pkg.tar.gz']);
});

test('ADD <url> goes through the HTTP proxy of the environment and checks --checksum', async (t) => {
  const { base } = await setup(t);
  const body = 'downloaded body\n';
  const origin = createServer((req, res) => res.end(req.url === '/files/tool.sh' ? body : ''));
  origin.listen(0, '127.0.0.1');
  await once(origin, 'listening');
  const seen: string[] = [];
  // A minimal forward proxy (absolute-form requests), like htvend's for plain HTTP.
  const proxy = createServer((req, res) => {
    seen.push(req.url!);
    const up = httpRequest(req.url!, { method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    req.pipe(up);
  });
  // undici's proxy agent may tunnel plain HTTP too: accept CONNECT like htvend's proxy does.
  proxy.on('connect', (req, sock, head) => {
    seen.push(`CONNECT ${req.url}`);
    const [host, port] = req.url!.split(':');
    const up = connect(Number(port), host!, () => {
      sock.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head);
      up.pipe(sock).pipe(up);
    });
    up.on('error', () => sock.destroy());
    sock.on('error', () => up.destroy());
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  t.after(() => { origin.closeAllConnections(); origin.close(); proxy.closeAllConnections(); proxy.close(); });
  const url = `http://127.0.0.1:${(origin.address() as AddressInfo).port}/files/tool.sh`;
  const env = { HTTP_PROXY: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, NO_PROXY: '' };
  const sha = createHash('sha256').update(body).digest('hex');
  const es = await copyEntries(base({ kind: 'ADD', sources: [url], dest: '/usr/local/bin/', checksum: `sha256:${sha}`, epoch: 1234, dispatcher: () => createTransport({ env }) }));
  const originHost = new URL(url).host;
  assert.ok(seen.length === 1 && (seen[0] === url || seen[0] === `CONNECT ${originHost}`), `proxy saw ${seen.join(', ')}`);
  const f = es.find((e) => e.path === 'usr/local/bin/tool.sh');
  assert.ok(f && f.type === 'file');
  assert.deepEqual([f.mode, f.mtime], [0o600, 1234]);
  await assert.rejects(copyEntries(base({ kind: 'ADD', sources: [url], dest: '/x', checksum: `sha256:${'0'.repeat(64)}`, dispatcher: () => createTransport({ env }) })), /Dockerfile:3: ADD .*--checksum=.* does not match/);
});

test('issue 9: a wildcard matching nothing is fine next to another source; all sources matching nothing is an error', async (t) => {
  const { base } = await setup(t);
  assert.deepEqual(paths(await copyEntries(base({ sources: ['a.txt', 'nomatch*'], dest: '/' }))), ['file:a.txt']);
  await assert.rejects(copyEntries(base({ sources: ['nomatch*', 'none?'], dest: '/' })), /Dockerfile:3: COPY nomatch\* none\?: no source files matched/);
  await assert.rejects(copyEntries(base({ sources: ['a.txt', 'missing.txt'], dest: '/' })), /COPY missing\.txt: no such file/);
});

test('issue 9: ADD *.tar with two archives extracts both into the destination directory', async (t) => {
  const { base, ctx, dir } = await setup(t);
  for (const n of ['one', 'two']) {
    await mkdir(join(dir, n));
    await writeFile(join(dir, n, `${n}.txt`), n);
    assert.equal((await run(['tar', '-cf', join(ctx, `${n}.tar`), '-C', join(dir, n), `${n}.txt`])).code, 0);
  }
  assert.deepEqual(paths(await copyEntries(base({ kind: 'ADD', sources: ['*.tar'], dest: '/dest' }))), ['dir:dest', 'file:dest/one.txt', 'file:dest/two.txt']);
});

test('issue 9: an ignored directory walked for a `!` exception is not created empty; one holding a re-included file is', async (t) => {
  const { base, ctx } = await setup(t);
  await mkdir(join(ctx, 'other', 'deep'), { recursive: true });
  await writeFile(join(ctx, 'other', 'deep', 'z'), 'z');
  const ignore = newIgnore().add(['src', 'other', '!src/sub/y.js']);
  const es = paths(await copyEntries(base({ sources: ['.'], dest: '/w/', from: { dir: ctx, isContext: true, ignore, hasExceptions: true } })));
  assert.ok(!es.some((p) => p.includes('w/other')), es.join(' '));
  assert.ok(es.includes('dir:w/src') && es.includes('dir:w/src/sub') && es.includes('file:w/src/sub/y.js'));
  assert.ok(!es.includes('file:w/src/x.js'));
});

test('issue 9: hard links among single-file sources stay hard links in the layer', async (t) => {
  const { base, ctx } = await setup(t);
  await link(join(ctx, 'a.txt'), join(ctx, 'a-link.txt'));
  const es = await copyEntries(base({ sources: ['a.txt', 'a-link.txt'], dest: '/y/' }));
  assert.deepEqual(es.find((e) => e.path === 'y/a-link.txt'), { type: 'hardlink', path: 'y/a-link.txt', target: 'y/a.txt', uid: 0, gid: 0, mtime: (es.find((e) => e.path === 'y/a-link.txt') as { mtime: number }).mtime });
});

test('issue 9: COPY into a dangling symlink follows it and creates the target; a file destination keeps its parent links', async (t) => {
  const { base, rootfs } = await setup(t);
  await symlink('/real/target', join(rootfs, 'dangling'));
  const withLinks = (o: Partial<CopyRequest>) => base({ readlink: rootfsReadlink(rootfs), ...o });
  assert.deepEqual(paths(await copyEntries(withLinks({ sources: ['a.txt'], dest: '/dangling/' }))), ['dir:real', 'dir:real/target', 'file:real/target/a.txt']);
  assert.deepEqual(paths(await copyEntries(withLinks({ sources: ['src'], dest: '/dangling/in' }))), ['dir:real', 'dir:real/target', 'dir:real/target/in', 'dir:real/target/in/sub', 'file:real/target/in/sub/y.js', 'file:real/target/in/x.js']);
  // through an existing link to a directory: entries land in the real directory
  assert.deepEqual(paths(await copyEntries(withLinks({ sources: ['a.txt'], dest: '/linked/a' }))), ['file:existing/a']);
});
