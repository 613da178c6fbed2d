/**
 * apt inside RUN (SPEC §9, docs/build-cache.md): the host's apt-get (with its http method,
 * libraries and dpkg's CPU tables) copied onto the busybox base, `apt-get update` and
 * `apt-get download` against a `[trusted=yes]` flat repository on the loopback test upstream.
 * apt takes the step's credentials from `http_proxy` and sends them as Proxy-Authorization,
 * so the Release, Packages and .deb requests are credited to the step; the step is cached, and
 * a warm build with assets.json deleted records them again.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostLibs, hostTool, online, proj, reportSteps, sharedWorld } from './harness.js';
import { run } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/tmp.js';
import { which } from '../../e2e/harness.js';

const world = sharedWorld();

const aptFiles = ['/usr/bin/apt-get', '/usr/lib/apt/methods/http'];
const cpuTables = ['/usr/share/dpkg/cputable', '/usr/share/dpkg/ostable', '/usr/share/dpkg/tupletable'];
const haveApt = aptFiles.every((f) => existsSync(f)) && cpuTables.every((f) => existsSync(f)) && !!which('dpkg-deb') && !!which('ldd');

/** A one-package flat repository (`deb [trusted=yes] URL ./`): Release, Packages, the .deb. */
async function aptRepo(dir: string, scheme: 'http' | 'https', prefix: string): Promise<{ base: string; deb: string; debPath: string }> {
  const w = world();
  const pkg = join(dir, 'pkg');
  await mkdir(join(pkg, 'DEBIAN'), { recursive: true });
  await mkdir(join(pkg, 'usr', 'share', 'htvend-tiny'), { recursive: true });
  await writeFile(join(pkg, 'DEBIAN', 'control'), 'Package: htvend-tiny\nVersion: 1.0\nArchitecture: all\nMaintainer: htvend tests <tests@example.invalid>\nDescription: a tiny package for the apt attribution test\n');
  await writeFile(join(pkg, 'usr', 'share', 'htvend-tiny', 'hello.txt'), 'hello from apt\n');
  const debFile = join(dir, 'htvend-tiny_1.0_all.deb');
  const b = await run(['dpkg-deb', '--root-owner-group', '-Zgzip', '--build', pkg, debFile]);
  assert.equal(b.code, 0, b.stderr);
  const deb = await readFile(debFile);
  const sha = (x: Buffer | string) => createHash('sha256').update(x).digest('hex');
  const packages = [
    'Package: htvend-tiny',
    'Version: 1.0',
    'Architecture: all',
    'Maintainer: htvend tests <tests@example.invalid>',
    'Filename: ./htvend-tiny_1.0_all.deb',
    `Size: ${deb.length}`,
    `SHA256: ${sha(deb)}`,
    'Description: a tiny package for the apt attribution test',
    '',
  ].join('\n');
  const release = ['Origin: htvend-test', 'Suite: stable', 'Codename: stable', 'Architectures: amd64 all', 'Date: Thu, 01 Jan 2026 00:00:00 UTC', 'SHA256:', ` ${sha(packages)} ${Buffer.byteLength(packages)} Packages`, ''].join('\n');
  const serve = (path: string, body: Buffer | string) => w.up.route(path, (_q, s) => s.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': Buffer.byteLength(body) }).end(body));
  // apt asks for `<base>/./<file>` for a flat repository.
  serve(`/${prefix}/./Release`, release);
  serve(`/${prefix}/./Packages`, packages);
  serve(`/${prefix}/./htvend-tiny_1.0_all.deb`, deb);
  const base = `${w.up[scheme]}/${prefix}/`;
  return { base, deb: `${base}./htvend-tiny_1.0_all.deb`, debPath: `/${prefix}/./htvend-tiny_1.0_all.deb` };
}

const skip = haveApt ? false : 'apt-get, its http method, dpkg CPU tables or dpkg-deb missing';

test('apt inside RUN (plain HTTP): apt-get update + download through the step credentials in http_proxy, credited, cached, recorded again with assets.json deleted', { skip }, (t) => aptStep(t, 'http'));

test('apt inside RUN (HTTPS through CONNECT): the step credentials from https_proxy, credited, cached, recorded again with assets.json deleted', { skip }, (t) => aptStep(t, 'https'));

async function aptStep(t: TestContext, scheme: 'http' | 'https'): Promise<void> {
  const w = world();
  const repo = await aptRepo(await tempDir(t, 'htvend-aptrepo-'), scheme, `apt-${scheme}`);
  // apt's https method trusts its own CA list only (not SSL_CERT_FILE): point it at the injected one.
  const apt = `/usr/bin/apt-get -q -o APT::Sandbox::User=root -o Dir::Bin::dpkg=/bin/true -o Acquire::Languages=none${scheme === 'https' ? ' -o Acquire::https::CaInfo="$SSL_CERT_FILE"' : ''}`;
  const df = [
    `FROM ${w.bb.ref}`,
    'COPY root/ /',
    // apt reads the step's proxy URL (with its credentials) from http_proxy / https_proxy.
    `RUN mkdir -p /etc/apt/apt.conf.d /etc/apt/preferences.d /etc/apt/sources.list.d /var/lib/apt/lists/partial /var/cache/apt/archives/partial /var/lib/dpkg /tmp/deb && touch /var/lib/dpkg/status && echo 'deb [trusted=yes] ${repo.base} ./' > /etc/apt/sources.list && test -n "$${scheme}_proxy" && ${apt} update && cd /tmp/deb && ${apt} download htvend-tiny && ar x htvend-tiny_1.0_all.deb data.tar.gz && tar -xzf data.tar.gz -C / && cat /usr/share/htvend-tiny/hello.txt && cd / && rm -rf /tmp/deb /var/lib/apt/lists /var/cache/apt`,
    'COPY src.txt /src.txt',
    '',
  ].join('\n');
  const p = await proj(t, w, df, { 'src.txt': 'one\n' });
  const root = join(p.ctx, 'root');
  await hostTool(root, '/usr/bin/apt-get');
  await hostTool(root, '/usr/lib/apt/methods/http');
  await hostLibs(root, aptFiles);
  await symlink('http', join(root, 'usr/lib/apt/methods/https'));
  await mkdir(join(root, 'usr/share/dpkg'), { recursive: true });
  for (const f of cpuTables) await copyFile(f, join(root, f));

  const cold = await online(p, 'cold.tar', ['--report', join(p.dir, 'cold.json')]);
  assert.equal(cold.code, 0, cold.stderr);
  const coldRun = (await reportSteps(join(p.dir, 'cold.json'))).find((s) => s.kind === 'RUN')!;
  const log = cold.stderr;
  const urls = coldRun.assets.map((a) => a.url);
  for (const u of [`${repo.base}./Release`, `${repo.base}./Packages`, repo.deb]) assert.ok(urls.includes(u), `${u} credited to the apt step: ${JSON.stringify(urls)}\n${log}`);
  assert.equal(coldRun.note, undefined, log);
  assert.match(log, /hello from apt/);
  const coldAssets = JSON.parse(await readFile(join(p.dir, 'assets.json'), 'utf8')) as Record<string, unknown>;
  for (const u of [`${repo.base}./Packages`, repo.deb]) assert.ok(u in coldAssets, `${u} in assets.json`);

  await writeFile(join(p.ctx, 'src.txt'), 'two\n');
  const warm = await online(p, 'warm.tar', ['--report', join(p.dir, 'warm.json')]);
  assert.equal(warm.code, 0, warm.stderr);
  const warmRun = (await reportSteps(join(p.dir, 'warm.json'))).find((s) => s.kind === 'RUN')!;
  assert.equal(warmRun.status, 'cached', warm.stderr);
  assert.deepEqual(warmRun.assets, coldRun.assets);
  assert.equal(w.up.hits(repo.debPath), 1, 'the .deb downloaded once, replayed after');

  await rm(join(p.dir, 'assets.json'));
  const again = await online(p, 'again.tar', ['--report', join(p.dir, 'again.json')]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((await reportSteps(join(p.dir, 'again.json'))).find((s) => s.kind === 'RUN')!.status, 'cached', again.stderr);
  const againAssets = JSON.parse(await readFile(join(p.dir, 'assets.json'), 'utf8')) as Record<string, unknown>;
  for (const u of [`${repo.base}./Release`, `${repo.base}./Packages`, repo.deb]) assert.ok(u in againAssets, `${u} recorded again by the cached step's probe`);
  assert.doesNotMatch(cold.stderr + warm.stderr + again.stderr, /[0-9a-f]{32}@/, 'no step credentials in the build output');
}
