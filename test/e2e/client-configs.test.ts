/**
 * Clients whose own config file names another CA (and another, dead, proxy): each must still
 * go through htvend and trust its CA, under `htvend build` and then under `htvend offline`
 * in `unshare -n`. Config files live in the test's private HOME (or CARGO_HOME); the real
 * user's files are never read or written. Servers are local (loopback): the HTTPS upstream
 * serves a pip simple index, a git repository (dumb HTTP), a cargo sparse registry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { randomBytes, createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createCa } from '../../src/tls/ca.js';
import { sendBody } from '../helpers/https-upstream.js';
import { cliCommand, run } from '../helpers/cli.js';
import { build, offlineUnshared, project, canUnshare, which, q, type Project } from './harness.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** A proxy nobody listens on: a client that obeyed its own config would fail to connect. */
const DEAD_PROXY = 'http://127.0.0.1:9';
const UA = 'htvend-test-agent/1.0';

/** A project whose HOME holds a PEM of a CA that signed nothing the client will see. */
async function withOtherCa(t: Parameters<typeof project>[0]): Promise<{ p: Project; otherCa: string }> {
  const p = await project(t);
  const otherCa = join(p.dir, 'other-ca.pem');
  await writeFile(otherCa, (await createCa({ commonName: 'some other CA' })).certPem);
  return { p, otherCa };
}

/** build, then offline in unshare -n, of the same `sh -c` script with `$OUT` set to a fresh name each time. */
async function bothModes(p: Project, script: (out: string) => string, opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<void> {
  const b = await build(p, ['--', 'sh', '-c', script('online')], opts);
  assert.equal(b.code, 0, `build:\n${b.stderr}`);
  const o = await offlineUnshared(p, ['--', 'sh', '-c', script('offline')], opts);
  assert.equal(o.code, 0, `offline:\n${o.stderr}`);
  assert.doesNotMatch(o.stderr, /missing asset/);
}

const skipUnless = (tool: string) => (!canUnshare ? 'needs unshare -n' : which(tool) ? false : `${tool} is not installed here`);

test('curl with cacert and proxy in ~/.curlrc trusts htvend; the rest of the .curlrc still applies', { skip: skipUnless('curl') }, async (t) => {
  const { p, otherCa } = await withOtherCa(t);
  const body = randomBytes(50_000);
  p.up.route('/c.bin', sendBody(body));
  await writeFile(join(p.env['HOME']!, '.curlrc'), `cacert = "${otherCa}"\nproxy = "${DEAD_PROXY}"\nuser-agent = "${UA}"\n`);
  await bothModes(p, (out) => `curl -fsS -o ${out}.bin ${q(`${p.up.https}/c.bin`)}`);
  assert.equal(sha(await readFile(join(p.dir, 'offline.bin'))), sha(body));
  assert.equal(p.up.hits('/c.bin'), 1);
  assert.equal(p.up.lastHeaders('/c.bin')?.['user-agent'], UA, 'the user agent from the .curlrc');
});

test('GNU wget with ca_certificate and https_proxy in ~/.wgetrc trusts htvend; the rest of the .wgetrc still applies', { skip: skipUnless('wget') }, async (t) => {
  const { p, otherCa } = await withOtherCa(t);
  const body = randomBytes(50_000);
  p.up.route('/w.bin', sendBody(body));
  await writeFile(join(p.env['HOME']!, '.wgetrc'), `ca_certificate = ${otherCa}\nhttps_proxy = ${DEAD_PROXY}\nuse_proxy = on\nuser_agent = ${UA}\n`);
  await bothModes(p, (out) => `wget -q -O ${out}.bin ${q(`${p.up.https}/w.bin`)}`);
  assert.equal(sha(await readFile(join(p.dir, 'offline.bin'))), sha(body));
  assert.equal(p.up.hits('/w.bin'), 1);
  assert.equal(p.up.lastHeaders('/w.bin')?.['user-agent'], UA, 'the user agent from the .wgetrc');
});

/** The real interpreter (a pyenv shim needs the real HOME, which tests never give). */
const python = which('python3') ? execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim() : '';

test('pip with cert and proxy in pip.conf downloads from a local HTTPS simple index through htvend', { skip: skipUnless('python3') }, async (t) => {
  const { p, otherCa } = await withOtherCa(t);
  // A minimal wheel, made by the zipfile module.
  const wheel = join(p.dir, 'tinypkg-1.0-py3-none-any.whl');
  execFileSync(python, [
    '-c',
    `import zipfile,sys
z=zipfile.ZipFile(sys.argv[1],'w')
z.writestr('tinypkg/__init__.py','X = 1\\n')
z.writestr('tinypkg-1.0.dist-info/METADATA','Metadata-Version: 2.1\\nName: tinypkg\\nVersion: 1.0\\n')
z.writestr('tinypkg-1.0.dist-info/WHEEL','Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')
z.writestr('tinypkg-1.0.dist-info/RECORD','')
z.close()`,
    wheel,
  ]);
  const whl = await readFile(wheel);
  p.up.route('/simple/tinypkg/', sendBody(`<!DOCTYPE html><html><body><a href="/files/tinypkg-1.0-py3-none-any.whl#sha256=${sha(whl)}">tinypkg-1.0-py3-none-any.whl</a></body></html>`, { 'content-type': 'text/html' }));
  p.up.route('/files/tinypkg-1.0-py3-none-any.whl', sendBody(whl));
  const conf = join(p.env['HOME']!, '.config', 'pip');
  await mkdir(conf, { recursive: true });
  await writeFile(join(conf, 'pip.conf'), `[global]\ncert = ${otherCa}\nproxy = ${DEAD_PROXY}\nindex-url = ${p.up.https}/simple/\ndisable-pip-version-check = true\nno-cache-dir = true\n`);
  await bothModes(p, (out) => `${q(python)} -m pip download -q --no-deps -d ${out} tinypkg==1.0`);
  assert.deepEqual(await readFile(join(p.dir, 'offline', 'tinypkg-1.0-py3-none-any.whl')), whl);
  assert.equal(p.up.hits('/files/tinypkg-1.0-py3-none-any.whl'), 1);
});

test('git with http.sslCAInfo and http.proxy in ~/.gitconfig clones through htvend (dumb HTTP)', { skip: skipUnless('git') }, async (t) => {
  const { p, otherCa } = await withOtherCa(t);
  const env = { ...p.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' };
  const git = (args: string[], cwd: string) => execFileSync('git', args, { cwd, env, encoding: 'utf8' });
  const work = join(p.dir, 'src-work');
  git(['init', '-q', '-b', 'main', work], p.dir);
  await writeFile(join(work, 'README'), 'hello from git\n');
  git(['add', '.'], work);
  git(['commit', '-qm', 'first'], work);
  const bare = join(p.dir, 'repo.git');
  git(['clone', '-q', '--bare', work, bare], p.dir);
  git(['update-server-info'], bare);
  // Smart HTTP needs POST /git-upload-pack, which htvend does not record (GET/HEAD only), so
  // the repository is served the dumb way: its files as they are.
  for (const f of execFileSync('find', ['.', '-type', 'f'], { cwd: bare, encoding: 'utf8' }).split('\n').filter(Boolean)) {
    p.up.route(`/repo.git/${f.slice(2)}`, sendBody(await readFile(join(bare, f))));
  }
  const head = git(['rev-parse', 'HEAD'], work).trim();
  await writeFile(join(p.env['HOME']!, '.gitconfig'), `[http]\n\tsslCAInfo = ${otherCa}\n\tproxy = ${DEAD_PROXY}\n[user]\n\tname = t\n`);
  await bothModes(p, (out) => `git clone -q ${q(`${p.up.https}/repo.git`)} ${out} && git -C ${out} rev-parse HEAD > ${out}.head`);
  assert.equal((await readFile(join(p.dir, 'offline.head'), 'utf8')).trim(), head);
  assert.equal(await readFile(join(p.dir, 'offline', 'README'), 'utf8'), 'hello from git\n');
});

test('cargo with http.cainfo and http.proxy in its config fetches a crate from a local sparse registry through htvend', { skip: skipUnless('cargo') }, async (t) => {
  const { p, otherCa } = await withOtherCa(t);
  // The crate: a .crate is a gzipped tar of NAME-VERSION/.
  const src = join(p.dir, 'crate-src', 'tinycrate-1.0.0');
  await mkdir(join(src, 'src'), { recursive: true });
  await writeFile(join(src, 'Cargo.toml'), '[package]\nname = "tinycrate"\nversion = "1.0.0"\nedition = "2021"\n');
  await writeFile(join(src, 'src', 'lib.rs'), 'pub const X: u32 = 1;\n');
  execFileSync('tar', ['czf', join(p.dir, 'tinycrate.crate'), '-C', join(p.dir, 'crate-src'), 'tinycrate-1.0.0']);
  const crate = await readFile(join(p.dir, 'tinycrate.crate'));
  p.up.route('/index/config.json', sendBody(JSON.stringify({ dl: `${p.up.https}/dl/{crate}/{version}/download` }), { 'content-type': 'application/json' }));
  p.up.route('/index/ti/ny/tinycrate', sendBody(`${JSON.stringify({ name: 'tinycrate', vers: '1.0.0', deps: [], cksum: sha(crate), features: {}, yanked: false })}\n`));
  p.up.route('/dl/tinycrate/1.0.0/download', sendBody(crate));
  // A consumer project and a CARGO_HOME per mode (a fresh registry cache offline).
  for (const mode of ['online', 'offline']) {
    const home = join(p.dir, `cargo-home-${mode}`);
    await mkdir(home);
    await writeFile(
      join(home, 'config.toml'),
      `[source.crates-io]\nreplace-with = "local"\n[source.local]\nregistry = "sparse+${p.up.https}/index/"\n[http]\ncainfo = "${otherCa}"\nproxy = "${DEAD_PROXY}"\n`,
    );
    await mkdir(join(p.dir, mode, 'src'), { recursive: true });
    await writeFile(join(p.dir, mode, 'Cargo.toml'), '[package]\nname = "consumer"\nversion = "0.1.0"\nedition = "2021"\n[dependencies]\ntinycrate = "1.0.0"\n');
    await writeFile(join(p.dir, mode, 'src', 'lib.rs'), '');
  }
  const env = { RUSTUP_HOME: process.env['RUSTUP_HOME'] ?? join(homedir(), '.rustup'), RUSTUP_TOOLCHAIN: process.env['RUSTUP_TOOLCHAIN'] ?? '' };
  if (!env.RUSTUP_TOOLCHAIN) delete (env as Record<string, string>)['RUSTUP_TOOLCHAIN'];
  await bothModes(p, (out) => `cd ${out} && CARGO_HOME=../cargo-home-${out} cargo fetch -q`, { env, timeoutMs: 180_000 });
  const lock = await readFile(join(p.dir, 'offline', 'Cargo.lock'), 'utf8');
  assert.match(lock, /name = "tinycrate"\nversion = "1.0.0"\n/);
  assert.ok(lock.includes(`checksum = "${sha(crate)}"`), lock);
  assert.equal(p.up.hits('/dl/tinycrate/1.0.0/download'), 1);
});

test('Maven with a mirror in ~/.m2/settings.xml resolves a build extension from a local HTTPS repository through htvend', { skip: skipUnless('mvn') || (python ? false : 'needs python3 to make a jar'), timeout: 300_000 }, async (t) => {
  const { p } = await withOtherCa(t);
  // A build extension is resolved when the project is loaded, so even `mvn validate` (no
  // plugins at all) downloads it: an empty jar and its pom.
  const g = 'com/example/tinyext/1.0';
  const pom = '<project><modelVersion>4.0.0</modelVersion><groupId>com.example</groupId><artifactId>tinyext</artifactId><version>1.0</version></project>\n';
  const jarDir = join(p.dir, 'jar');
  await mkdir(join(jarDir, 'META-INF'), { recursive: true });
  await writeFile(join(jarDir, 'META-INF', 'MANIFEST.MF'), 'Manifest-Version: 1.0\n');
  execFileSync(python, ['-c', 'import shutil,sys; shutil.make_archive(sys.argv[1], "zip", sys.argv[2])', join(p.dir, 'tinyext'), jarDir]);
  const jar = await readFile(join(p.dir, 'tinyext.zip'));
  const sha1 = (b: Buffer | string) => createHash('sha1').update(b).digest('hex');
  p.up.route(`/maven2/${g}/tinyext-1.0.pom`, sendBody(pom, { 'content-type': 'text/xml' }));
  p.up.route(`/maven2/${g}/tinyext-1.0.pom.sha1`, sendBody(sha1(pom)));
  p.up.route(`/maven2/${g}/tinyext-1.0.jar`, sendBody(jar, { 'content-type': 'application/java-archive' }));
  p.up.route(`/maven2/${g}/tinyext-1.0.jar.sha1`, sendBody(sha1(jar)));
  // Maven adds plexus-utils 1.1 to every extension's realm (for old plugins): an empty jar will do.
  p.up.route('/maven2/org/codehaus/plexus/plexus-utils/1.1/plexus-utils-1.1.jar', sendBody(jar));
  p.up.route('/maven2/org/codehaus/plexus/plexus-utils/1.1/plexus-utils-1.1.jar.sha1', sendBody(sha1(jar)));
  await mkdir(join(p.env['HOME']!, '.m2'));
  await writeFile(
    join(p.env['HOME']!, '.m2', 'settings.xml'),
    `<settings><mirrors><mirror><id>corp</id><mirrorOf>*</mirrorOf><url>${p.up.https}/maven2</url></mirror></mirrors></settings>\n`,
  );
  for (const mode of ['online', 'offline']) {
    await mkdir(join(p.dir, mode));
    await writeFile(
      join(p.dir, mode, 'pom.xml'),
      `<project><modelVersion>4.0.0</modelVersion><groupId>x</groupId><artifactId>consumer</artifactId><version>1</version><packaging>pom</packaging><build><extensions><extension><groupId>com.example</groupId><artifactId>tinyext</artifactId><version>1.0</version></extension></extensions></build></project>\n`,
    );
  }
  // Java takes user.home from the passwd entry, not HOME: point it at the test's HOME so
  // Maven reads the settings.xml above (and never the real user's).
  const env = { MAVEN_OPTS: `-Duser.home=${p.env['HOME']}` };
  await bothModes(p, (out) => `cd ${out} && mvn -B -q -ntp -Dmaven.repo.local=../repo-${out} validate`, { env, timeoutMs: 240_000 });
  assert.deepEqual(await readFile(join(p.dir, 'repo-offline', g, 'tinyext-1.0.jar')), jar);
  assert.equal(p.up.hits(`/maven2/${g}/tinyext-1.0.jar`), 1);
});

test('Go modules with GOPROXY and GOFLAGS in its env file download through htvend from a local module proxy', { skip: skipUnless('go') || (python ? false : 'needs python3 to make a module zip'), timeout: 300_000 }, async (t) => {
  const { p } = await withOtherCa(t);
  // Go never proxies loopback names or IPs, so the module proxy gets a name of its own, mapped
  // to 127.0.0.1 by an /etc/hosts bind-mounted in a private mount namespace (the real file
  // is never touched). htvend runs in that namespace too, and so resolves it the same way.
  const host = 'goproxy.test';
  const hosts = join(p.dir, 'hosts');
  await writeFile(hosts, `127.0.0.1 localhost ${host}\n::1 localhost\n`);
  const base = `https://${host}:${new URL(p.up.https).port}`;
  const mod = 'example.test/tiny';
  const zipPath = join(p.dir, 'tiny.zip');
  execFileSync(python, [
    '-c',
    'import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1],"w")\nz.writestr(sys.argv[2]+"@v1.0.0/go.mod","module "+sys.argv[2]+"\\n\\ngo 1.19\\n")\nz.writestr(sys.argv[2]+"@v1.0.0/tiny.go","package tiny\\n\\nconst X = 1\\n")\nz.close()',
    zipPath,
    mod,
  ]);
  const zip = await readFile(zipPath);
  p.up.route(`/${mod}/@v/list`, sendBody('v1.0.0\n'));
  p.up.route(`/${mod}/@v/v1.0.0.info`, sendBody(JSON.stringify({ Version: 'v1.0.0', Time: '2024-01-01T00:00:00Z' }), { 'content-type': 'application/json' }));
  p.up.route(`/${mod}/@v/v1.0.0.mod`, sendBody(`module ${mod}\n\ngo 1.19\n`));
  p.up.route(`/${mod}/@v/v1.0.0.zip`, sendBody(zip, { 'content-type': 'application/zip' }));
  // The user's go env file (`go env -w` writes it): where modules come from, and flags.
  await mkdir(join(p.env['HOME']!, '.config', 'go'), { recursive: true });
  await writeFile(join(p.env['HOME']!, '.config', 'go', 'env'), `GOPROXY=${base}\nGOSUMDB=off\nGOFLAGS=-modcacherw\n`);
  for (const mode of ['online', 'offline']) {
    await mkdir(join(p.dir, mode));
    await writeFile(join(p.dir, mode, 'go.mod'), 'module consumer\n\ngo 1.19\n');
  }
  const script = (out: string) => `cd ${out} && GOMODCACHE=$PWD/../modcache-${out} GOCACHE=$PWD/../gocache-${out} go mod download ${mod}@v1.0.0`;
  const htvend = (mode: string, out: string) => [...cliCommand('htvend'), '-C', p.dir, mode, '--blobs-dir', p.blobs, '--', 'sh', '-c', script(out)].map(q).join(' ');
  const b = await run(['unshare', '-m', 'sh', '-c', `mount --bind ${q(hosts)} /etc/hosts && exec ${htvend('build', 'online')}`], { env: p.env, timeoutMs: 240_000 });
  assert.equal(b.code, 0, `build:\n${b.stderr}`);
  const o = await run(['unshare', '-n', '-m', 'sh', '-c', `mount --bind ${q(hosts)} /etc/hosts && ip link set lo up && exec ${htvend('offline', 'offline')}`], { env: p.env, timeoutMs: 240_000 });
  assert.equal(o.code, 0, `offline:\n${o.stderr}`);
  assert.equal(await readFile(join(p.dir, 'modcache-offline', 'example.test', 'tiny@v1.0.0', 'tiny.go'), 'utf8'), 'package tiny\n\nconst X = 1\n');
  assert.equal(p.up.hits(`/${mod}/@v/v1.0.0.zip`), 1);
});
