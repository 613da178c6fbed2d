/**
 * Per-step attribution with real clients inside RUN (SPEC §9, docs/build-cache.md): Java 17,
 * npm and apt, each run in a runc container on the busybox base under `htvend build`, each
 * fetching from the loopback test upstream. The clients come from the host (nothing here may
 * reach the internet): the binaries are bind-mounted from the context, their shared libraries
 * copied in with `COPY root/ /`. A step is cached on the next build only when everything it
 * fetched was credited to it, and the report lists each URL under its step.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostLibs, online, proj, reportSteps, sharedWorld, type ReportStep } from './harness.js';
import { run } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/tmp.js';
import { writeJavaClient } from '../../helpers/java-client.js';
import { which } from '../../e2e/harness.js';

const world = sharedWorld();

/** cold build, change the COPY source, warm build: both reports' RUN records. */
async function coldThenWarm(t: Parameters<typeof proj>[0], df: string, prepare: (ctx: string) => Promise<void>): Promise<{ cold: ReportStep[]; warm: ReportStep[]; log: string }> {
  const p = await proj(t, world(), df, { 'src.txt': 'one\n' });
  await prepare(p.ctx);
  const cold = await online(p, 'cold.tar', ['--report', join(p.dir, 'cold.json')]);
  assert.equal(cold.code, 0, cold.stderr);
  await writeFile(join(p.ctx, 'src.txt'), 'two\n');
  const warm = await online(p, 'warm.tar', ['--report', join(p.dir, 'warm.json')]);
  assert.equal(warm.code, 0, warm.stderr);
  const runs = async (f: string) => (await reportSteps(join(p.dir, f))).filter((s) => s.kind === 'RUN');
  return { cold: await runs('cold.json'), warm: await runs('warm.json'), log: `--- cold\n${cold.stderr}\n--- warm\n${warm.stderr}` };
}

const urls = (s: ReportStep) => s.assets.map((a) => a.url);

// ---- Java ----------------------------------------------------------------------------------

/**
 * A small runtime of the host JDK (jlink; ~45 MiB, made once per machine and JDK): java.base,
 * plus jdk.crypto.ec, without which Java 17 cannot speak TLS to htvend's ECDSA certificates.
 */
async function javaRuntime(): Promise<string | undefined> {
  if (!which('jlink') || !which('javac')) return undefined;
  const version = (await run(['java', '-version'])).stderr.match(/version "([^"]+)"/)?.[1] ?? 'unknown';
  const modules = 'java.base,jdk.crypto.ec';
  const dir = `/var/cache/htvend-test/jre-${version}-${modules.replace(/,/g, '+')}`;
  if (existsSync(join(dir, 'bin', 'java'))) return dir;
  await mkdir('/var/cache/htvend-test', { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  const r = await run(['jlink', '--add-modules', modules, '--output', tmp, '--strip-debug', '--no-man-pages', '--no-header-files'], { timeoutMs: 300_000 });
  assert.equal(r.code, 0, r.stderr);
  await rename(tmp, dir).catch(async (e: NodeJS.ErrnoException) => {
    // Another test process made it first.
    if (!existsSync(join(dir, 'bin', 'java'))) throw e;
    await rm(tmp, { recursive: true, force: true });
  });
  return dir;
}

test('Java inside RUN: credited through its step forwarder, cached, listed under its step; a Java request around the forwarder keeps its step out of the cache', { skip: which('java') && which('jlink') && which('javac') ? false : 'no JDK (java, javac, jlink) on this machine' }, async (t) => {
  const w = world();
  w.up.route('/for-java.txt', (_q, s) => s.writeHead(200, { 'content-length': '5' }).end('java\n'));
  w.up.route('/for-java-plain.txt', (_q, s) => s.writeHead(200, { 'content-length': '6' }).end('plain\n'));
  w.up.route('/around.txt', (_q, s) => s.writeHead(200, { 'content-length': '7' }).end('around\n'));
  const jre = await javaRuntime();
  const java = '/opt/jre/bin/java -cp /opt/app Client';
  const mounts = '--mount=type=bind,source=jre,target=/opt/jre --mount=type=bind,source=app,target=/opt/app';
  const df = [
    `FROM ${w.bb.ref}`,
    'COPY root/ /',
    // Java takes its proxy from JAVA_TOOL_OPTIONS, which the builder points at the step's forwarder.
    `RUN ${mounts} ${java} ${w.up.https}/for-java.txt /j.txt && ${java} ${w.up.http}/for-java-plain.txt /j2.txt`,
    // The same client sent straight to the proxy (command-line -D beats JAVA_TOOL_OPTIONS): no credentials.
    `RUN ${mounts} /opt/jre/bin/java -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=\${HTTPS_PROXY##*:} -cp /opt/app Client ${w.up.https}/around.txt /a.txt`,
    'COPY src.txt /src.txt',
    '',
  ].join('\n');
  const { cold, warm, log } = await coldThenWarm(t, df, async (ctx) => {
    await cp(jre!, join(ctx, 'jre'), { recursive: true });
    await mkdir(join(ctx, 'app'));
    const c = await run(['javac', '--release', '17', '-d', join(ctx, 'app'), await writeJavaClient(join(ctx, 'app'))], { timeoutMs: 120_000 });
    assert.equal(c.code, 0, c.stderr);
    await rm(join(ctx, 'app', 'Client.java'));
    const libs = (await readdir(join(ctx, 'jre', 'lib'))).filter((f) => f.endsWith('.so')).map((f) => join(ctx, 'jre', 'lib', f));
    await hostLibs(join(ctx, 'root'), [join(ctx, 'jre', 'bin', 'java'), join(ctx, 'jre', 'lib', 'server', 'libjvm.so'), ...libs]);
  });
  assert.deepEqual(urls(cold[0]!), [`${w.up.http}/for-java-plain.txt`, `${w.up.https}/for-java.txt`], log);
  assert.equal(cold[0]!.note, undefined, log);
  assert.equal(warm[0]!.status, 'cached', log);
  assert.deepEqual(warm[0]!.assets, cold[0]!.assets);
  // The step that went around its forwarder: not credited, so never served from the cache.
  assert.deepEqual(urls(cold[1]!), [], log);
  assert.match(cold[1]!.note ?? '', /not stored: 1 request\(s\) during the step came without its step credentials/, log);
  assert.equal(warm[1]!.status, 'run', log);
  assert.doesNotMatch(log, /[0-9a-f]{32}@/, 'no step credentials in the build output');
});

// ---- npm -----------------------------------------------------------------------------------

/** A one-package npm registry on the test upstream: packument + tarball, as registry.npmjs.org serves them. */
async function npmRegistry(dir: string): Promise<{ registry: string }> {
  const w = world();
  const pkg = join(dir, 'pkg', 'package');
  await mkdir(pkg, { recursive: true });
  await writeFile(join(pkg, 'package.json'), JSON.stringify({ name: 'tiny-dep', version: '1.0.0', main: 'index.js' }));
  await writeFile(join(pkg, 'index.js'), "module.exports = 'tiny';\n");
  const tgz = join(dir, 'tiny-dep-1.0.0.tgz');
  const tar = await run(['tar', '-czf', tgz, '-C', join(dir, 'pkg'), 'package']);
  assert.equal(tar.code, 0, tar.stderr);
  const bytes = await readFile(tgz);
  const registry = `${w.up.https}/npm/`;
  const tarball = `${registry}tiny-dep/-/tiny-dep-1.0.0.tgz`;
  const packument = JSON.stringify({
    name: 'tiny-dep',
    'dist-tags': { latest: '1.0.0' },
    versions: { '1.0.0': { name: 'tiny-dep', version: '1.0.0', main: 'index.js', dist: { tarball, integrity: `sha512-${createHash('sha512').update(bytes).digest('base64')}`, shasum: createHash('sha1').update(bytes).digest('hex') } } },
  });
  w.up.route('/npm/tiny-dep', (_q, s) => s.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(packument) }).end(packument));
  w.up.route('/npm/tiny-dep/-/tiny-dep-1.0.0.tgz', (_q, s) => s.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length }).end(bytes));
  return { registry };
}

const npmDir = '/usr/lib/node_modules/npm';

test('npm inside RUN: `npm install` from a registry is credited with the packument and the tarball, cached, listed under its step', { skip: which('node') && existsSync(npmDir) ? false : `node or ${npmDir} missing` }, async (t) => {
  const w = world();
  const { registry } = await npmRegistry(await tempDir(t, 'htvend-npmreg-'));
  const npm = '/opt/node/bin/node /opt/node/npm/bin/npm-cli.js';
  const df = [
    `FROM ${w.bb.ref}`,
    'COPY root/ /',
    // npm reads HTTPS_PROXY (with the step's credentials) and trusts NODE_EXTRA_CA_CERTS.
    `RUN --mount=type=bind,source=node,target=/opt/node mkdir -p /app && cd /app && ${npm} install --registry ${registry} --no-audit --no-fund --no-update-notifier --cache /tmp/npm-cache --logs-dir /tmp/npm-logs tiny-dep && test -f node_modules/tiny-dep/index.js && rm -rf /tmp/npm-cache /tmp/npm-logs`,
    'COPY src.txt /src.txt',
    '',
  ].join('\n');
  const { cold, warm, log } = await coldThenWarm(t, df, async (ctx) => {
    await mkdir(join(ctx, 'node', 'bin'), { recursive: true });
    await cp(process.execPath, join(ctx, 'node', 'bin', 'node'));
    await cp(npmDir, join(ctx, 'node', 'npm'), { recursive: true });
    await hostLibs(join(ctx, 'root'), [process.execPath]);
  });
  assert.deepEqual(urls(cold[0]!), [`${registry}tiny-dep`, `${registry}tiny-dep/-/tiny-dep-1.0.0.tgz`], log);
  assert.equal(cold[0]!.note, undefined, log);
  assert.equal(warm[0]!.status, 'cached', log);
  assert.deepEqual(warm[0]!.assets, cold[0]!.assets);
});
