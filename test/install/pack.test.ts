/**
 * The npm package as a newcomer gets it: `npm pack` in the repository, then
 * `npm install -g --offline --prefix EMPTY` of the tarball inside `unshare -n` with an empty
 * npm cache (the air-gapped install: every runtime dependency must travel in the tarball),
 * then the installed bins, run by name from a directory outside the repository, record a
 * download under `htvend build -- curl` and replay it under `htvend offline` in `unshare -n`.
 * One install serves both: an install that works with no network and no cache is the online
 * one as well (a bundled tarball asks the registry for nothing).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import { repoRoot, run } from '../helpers/cli.js';
import { startUpstream, sendBody, type Upstream } from '../helpers/https-upstream.js';
import { canUnshare, q, which } from '../e2e/harness.js';

const skip = !canUnshare || !which('npm') || !which('curl') ? 'needs npm, curl and unshare -n' : false;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let work = '';
let tarball = '';
let prefix = '';
let packOutput = '';
const version = (JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'htvend-pack-'));
  for (const d of ['out', 'cache', 'prefix', 'home', 'project']) await mkdir(join(work, d));
  prefix = join(work, 'prefix');
  // The npm environment of a user: HOME of its own, npm's global config left where it is.
  const env = { PATH: process.env['PATH'], HOME: join(work, 'home'), LANG: 'C.UTF-8' };
  const p = await run(['npm', 'pack', '--json', '--pack-destination', join(work, 'out'), '--loglevel=error'], { cwd: repoRoot, env, timeoutMs: 240_000 });
  assert.equal(p.code, 0, p.stderr);
  packOutput = p.stdout;
  tarball = join(work, 'out', `htvend-${version}.tgz`);
  const install = ['npm', 'install', '-g', '--offline', '--cache', join(work, 'cache'), '--prefix', prefix, '--no-audit', '--no-fund', '--no-update-notifier', '--loglevel=error', tarball];
  const i = await run(['unshare', '-n', 'sh', '-c', `ip link set lo up && exec ${install.map(q).join(' ')}`], { cwd: join(work, 'project'), env, timeoutMs: 240_000 });
  assert.equal(i.code, 0, `offline install failed:\n${i.stderr}`);
});
after(() => (work ? rm(work, { recursive: true, force: true }) : undefined));

test('npm pack ships the bundled CLIs, bin, README, LICENSE and bundled runtime deps, and nothing else', { skip }, async () => {
  const [info] = JSON.parse(packOutput) as Array<{ files: Array<{ path: string }>; size: number; unpackedSize: number }>;
  const files = info!.files.map((f) => f.path);
  for (const f of ['bin/htvend.js', 'bin/build-img-with-proxy.js', 'dist/bundle/htvend.js', 'dist/bundle/build-img-with-proxy.js', 'README.md', 'LICENSE', 'package.json']) {
    assert.ok(files.includes(f), `${f} missing from the tarball`);
  }
  const stray = files.filter((f) => !/^(node_modules\/|bin\/|dist\/bundle\/.*\.js$|README\.md$|LICENSE$|package\.json$)/.test(f));
  assert.deepEqual(stray, [], 'only what runs is shipped (the bundle: no dist/src, tests, bench, sources or maps)');
  const bundled = await run(['tar', 'tzf', tarball]);
  assert.match(bundled.stdout, /^package\/node_modules\/commander\/package\.json$/m);
  assert.match(bundled.stdout, /^package\/node_modules\/undici\/package\.json$/m);
  assert.doesNotMatch(bundled.stdout, /node_modules\/(typescript|s3rver|tsx)\//, 'dev dependencies are not bundled');
  const size = (await stat(tarball)).size;
  assert.ok(size < 4 * 1024 * 1024, `tarball is ${size} bytes: keep it lean (README says about 2.4 MB)`);
});

test('the tarball installs with --offline and an empty cache inside unshare -n, and both bins answer --version there', { skip }, async () => {
  assert.deepEqual(await readdir(join(prefix, 'bin')), ['build-img-with-proxy', 'htvend']);
  for (const bin of ['htvend', 'build-img-with-proxy']) {
    const r = await run(['unshare', '-n', join(prefix, 'bin', bin), '--version'], { cwd: work, env: { PATH: process.env['PATH'], HOME: join(work, 'home') } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), version);
  }
});

test('the installed htvend records a curl download, then replays it offline in unshare -n', { skip }, async (t) => {
  const up: Upstream = await startUpstream(t);
  const body = randomBytes(200_000);
  up.route('/demo/asset.bin', sendBody(body));
  const dir = join(work, 'project');
  await writeFile(join(work, 'upstream-ca.pem'), up.caPem);
  const env = { PATH: `${join(prefix, 'bin')}:${process.env['PATH']}`, HOME: join(work, 'home'), LANG: 'C.UTF-8', SSL_CERT_FILE: join(work, 'upstream-ca.pem') };
  const url = `${up.https}/demo/asset.bin`;
  const blobs = join(work, 'blobs');

  const b = await run(['htvend', 'build', '--blobs-dir', blobs, '--', 'curl', '-fsS', '-o', 'online.bin', url], { cwd: dir, env });
  assert.equal(b.code, 0, b.stderr);
  assert.equal(sha(await readFile(join(dir, 'online.bin'))), sha(body));
  assert.equal(JSON.parse(await readFile(join(dir, 'assets.json'), 'utf8'))[url]?.Sha256, sha(body));

  const offline = ['htvend', 'offline', '--blobs-dir', blobs, '--', 'curl', '-fsS', '-o', 'offline.bin', url].map(q).join(' ');
  const o = await run(['unshare', '-n', 'sh', '-c', `ip link set lo up && exec ${offline}`], { cwd: dir, env });
  assert.equal(o.code, 0, o.stderr);
  assert.equal(sha(await readFile(join(dir, 'offline.bin'))), sha(body));
  assert.equal(up.hits('/demo/asset.bin'), 1, 'the replay never reached the upstream');
});
