/**
 * htvend's own modes as an ordinary user, no root anywhere in the chain (issue 14): the
 * unprivileged test user runs `htvend build -- build-img-with-proxy` (a RUN step downloads
 * from a loopback HTTPS upstream through the proxy), `htvend verify --fetch`, `htvend export`
 * and, with the upstream stopped, `htvend offline -- build-img-with-proxy`. The offline digest
 * must equal the online one and the root build's; every file written is the user's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cliCommand, run } from '../helpers/cli.js';
import { startUpstream } from '../helpers/https-upstream.js';
import { asUser, chownR, ensureUser, installApp, userDir } from './user.js';

const isRoot = process.getuid?.() === 0;
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const PAYLOAD = 'fetched at build time by an unprivileged user\n';

test('htvend build, verify, export and offline as an ordinary user (rootless builds under both)', { skip: !isRoot && 'needs root to create the unprivileged test user', timeout: 300_000 }, async (t) => {
  const u = await ensureUser();
  const app = await installApp(t, u);
  const dir = await userDir(t, u, 'modes-');
  const up = await startUpstream(t);
  up.route('/f.txt', (_req, res) => res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(PAYLOAD) }).end(PAYLOAD));
  const url = `${up.https}/f.txt`;

  const ctx = join(dir, 'ctx');
  await mkdir(join(dir, 'bb', 'bin'), { recursive: true });
  await cp('/bin/busybox', join(dir, 'bb', 'bin', 'busybox'));
  await mkdir(join(dir, 'bb', 'etc'));
  await writeFile(join(dir, 'bb', 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await mkdir(ctx);
  const tar = await run(['tar', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-cf', join(ctx, 'bb.tar'), '-C', join(dir, 'bb'), '.']);
  assert.equal(tar.code, 0, tar.stderr);
  // busybox wget sends the https URL to https_proxy; it does not check certificates.
  await writeFile(join(ctx, 'Dockerfile'), `FROM scratch\nADD bb.tar /\nRUN ["/bin/busybox", "wget", "-q", "-O", "/f.txt", "${url}"]\n`);
  await writeFile(join(dir, 'trust.pem'), (await readFile('/etc/ssl/certs/ca-certificates.crt', 'utf8')) + up.caPem);
  await chownR(u, dir);

  const env = { PATH, SOURCE_DATE_EPOCH: '0', XDG_DATA_HOME: join(dir, 'xdg'), SSL_CERT_FILE: join(dir, 'trust.pem'), TMPDIR: '/tmp' };
  const htvend = (args: string[]) => run([...asUser(u, env), ...app.argv('htvend'), '-C', ctx, ...args], { timeoutMs: 200_000 });
  const bip = app.argv('build-img-with-proxy');
  const digestOf = async (layout: string) => (JSON.parse(await readFile(join(ctx, layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] }).manifests[0]!.digest;

  const built = await htvend(['build', '--', ...bip, '-q', '--tag', 'oci:online:x', '.']);
  assert.equal(built.code, 0, built.stderr);
  assert.equal(up.hits('/f.txt'), 1, 'the RUN step reached the upstream through the proxy');
  const assets = await readFile(join(ctx, 'assets.json'), 'utf8');
  assert.ok(assets.includes(url), `assets.json records ${url}:\n${assets}`);
  const sha = createHash('sha256').update(PAYLOAD).digest('hex');
  assert.ok(assets.includes(sha), 'with the payload digest');

  const verified = await htvend(['verify', '--fetch']);
  assert.equal(verified.code, 0, verified.stderr);
  const exported = await htvend(['export', '--dest.blobs-dir', join(dir, 'exported')]);
  assert.equal(exported.code, 0, exported.stderr);
  assert.ok((await readdir(join(dir, 'exported'), { recursive: true })).some((f) => f.endsWith(sha)), 'export wrote the blob');

  await up.close();
  const offline = await htvend(['offline', '--', ...bip, '-q', '--tag', 'oci:offline:x', '.']);
  assert.equal(offline.code, 0, offline.stderr);
  assert.equal(await digestOf('offline'), await digestOf('online'), 'offline digest == online digest');

  // The same build as root gives the same image (the upstream is gone: root replays too).
  const asRoot = await run([...cliCommand('htvend'), '-C', ctx, 'offline', '--', ...cliCommand('build-img-with-proxy'), '-q', '--tag', 'oci:root:x', '.'], { env: { ...env, XDG_DATA_HOME: join(dir, 'xdg') } });
  assert.equal(asRoot.code, 0, asRoot.stderr);
  assert.equal(await digestOf('root'), await digestOf('online'), 'rootless digest == root digest');

  for (const f of [join(ctx, 'assets.json'), join(ctx, 'online', 'index.json'), join(ctx, 'offline', 'index.json'), join(dir, 'xdg'), join(dir, 'exported')]) {
    assert.equal((await stat(f)).uid, u.uid, `${f} is ${u.name}'s`);
  }
});
