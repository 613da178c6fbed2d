/**
 * npm, pnpm and yarn (classic and berry) against the real npm registry (needs network:
 * skipped with HTVEND_TEST_NO_NETWORK=1), run the way people run them: a plain
 * `npm install PKG` in a project directory, with no flags that move npm's config away.
 * npm's global config (`${prefix}/etc/npmrc`) applies as on any machine, and the user config
 * in the test's HOME names another CA (`cafile=`) and a dead proxy, as corporate machines'
 * npmrc files do. Under `htvend build`, then under `htvend offline` in `unshare -n` with
 * empty caches and a fresh project, each client must install the same package.
 *
 * pnpm and yarn are installed for the test from the registry into a temp prefix (outside
 * htvend, with the machine's own npm config).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdir, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa } from '../../src/tls/ca.js';
import { run } from '../helpers/cli.js';
import { build, offlineUnshared, project, canUnshare, noNetwork, which, q, type Project } from './harness.js';

const REGISTRY = 'https://registry.npmjs.org/';
const DEAD_PROXY = 'http://127.0.0.1:9';
const skip = noNetwork ? 'HTVEND_TEST_NO_NETWORK=1' : !canUnshare || !which('npm') ? 'needs npm and unshare -n' : false;

/** pnpm, yarn classic and yarn berry, installed once for the file (or why not). */
const tools: { dir?: string; error?: string } = {};
before(async () => {
  if (skip) return;
  const dir = await mkdtemp(join(tmpdir(), 'htvend-npm-tools-'));
  process.once('exit', () => void rm(dir, { recursive: true, force: true }));
  for (const [sub, pkgs] of [
    ['pnpm', ['pnpm@9.15.9']],
    ['yarn1', ['yarn@1.22.22']],
    ['berry', ['@yarnpkg/cli-dist@4.18.1']],
  ] as const) {
    const r = await run(['npm', 'install', '-g', '--prefix', join(dir, sub), '--no-audit', '--no-fund', '--loglevel=error', ...pkgs], { timeoutMs: 180_000 });
    if (r.code !== 0) tools.error = `npm install ${pkgs.join(' ')} failed: ${r.stderr}`;
  }
  tools.dir = dir;
});

/** A project with HOME/.npmrc naming another CA and a dead proxy; htvend's upstream trusts the system bundle. */
async function npmProject(t: Parameters<typeof project>[0]): Promise<Project> {
  const p = await project(t, { upstream: false });
  // This machine reaches the registry through a transparent proxy whose CA is in the bundle.
  p.env['SSL_CERT_FILE'] = '/etc/ssl/certs/ca-certificates.crt';
  const otherCa = join(p.dir, 'other-ca.pem');
  await writeFile(otherCa, (await createCa({ commonName: 'some other CA' })).certPem);
  await writeFile(join(p.env['HOME']!, '.npmrc'), `cafile=${otherCa}\nhttps-proxy=${DEAD_PROXY}\nproxy=${DEAD_PROXY}\nregistry=${REGISTRY}\nupdate-notifier=false\nfund=false\naudit=false\n`);
  for (const d of ['online', 'offline']) {
    await mkdir(join(p.dir, d));
    await writeFile(join(p.dir, d, 'package.json'), JSON.stringify({ name: `demo-${d}`, version: '1.0.0', private: true }));
  }
  return p;
}

/** Runs `script(dir)` in online/ under build, then, with the caches in HOME emptied, in offline/ offline. */
async function bothModes(p: Project, script: (dir: string) => string): Promise<void> {
  const b = await build(p, ['--', 'sh', '-c', `cd online && ${script('online')}`], { timeoutMs: 240_000 });
  assert.equal(b.code, 0, `build:\n${b.stderr}`);
  const assets = JSON.parse(await readFile(join(p.dir, 'assets.json'), 'utf8')) as Record<string, unknown>;
  assert.ok(assets['https://registry.npmjs.org/is-number/-/is-number-7.0.0.tgz'], Object.keys(assets).join('\n'));
  // Empty every client cache: offline must be served by htvend alone.
  const home = p.env['HOME']!;
  for (const c of ['.npm', '.cache', '.local', '.yarn']) await rm(join(home, c), { recursive: true, force: true });
  const o = await offlineUnshared(p, ['--', 'sh', '-c', `cd offline && ${script('offline')}`], { timeoutMs: 240_000 });
  assert.equal(o.code, 0, `offline:\n${o.stderr}`);
  assert.doesNotMatch(o.stderr, /missing asset/);
  const online = await readFile(join(p.dir, 'online', 'node_modules', 'is-number', 'index.js'));
  const offline = await readFile(join(p.dir, 'offline', 'node_modules', 'is-number', 'index.js'));
  assert.deepEqual(offline, online);
  assert.equal(JSON.parse(await readFile(join(p.dir, 'offline', 'node_modules', 'is-number', 'package.json'), 'utf8')).version, '7.0.0');
}

test('a plain `npm install` in a project, with cafile and proxy in the npmrc, is recorded and replayed offline', { skip, timeout: 300_000 }, async (t) => {
  const p = await npmProject(t);
  await bothModes(p, () => 'npm install is-number@7.0.0');
  // And `npm pack` of a registry package, another everyday command, offline too.
  const o = await offlineUnshared(p, ['--', 'sh', '-c', 'cd offline && npm pack -q is-number@7.0.0']);
  assert.equal(o.code, 0, o.stderr);
  assert.match(o.stdout, /is-number-7\.0\.0\.tgz/);
});

test('pnpm with cafile and proxy in the npmrc installs through htvend, then offline', { skip, timeout: 300_000 }, async (t) => {
  if (tools.error) return t.skip(tools.error);
  const p = await npmProject(t);
  const pnpm = q(join(tools.dir!, 'pnpm', 'bin', 'pnpm'));
  await bothModes(p, () => `${pnpm} add --reporter=silent is-number@7.0.0`);
});

test('yarn classic with cafile in the npmrc and https-proxy in .yarnrc installs through htvend, then offline', { skip, timeout: 300_000 }, async (t) => {
  if (tools.error) return t.skip(tools.error);
  const p = await npmProject(t);
  // yarn classic's default registry is registry.yarnpkg.com (not reachable here): use npm's.
  await writeFile(join(p.env['HOME']!, '.yarnrc'), `registry "${REGISTRY}"\nhttps-proxy "${DEAD_PROXY}"\n`);
  const yarn = q(join(tools.dir!, 'yarn1', 'bin', 'yarn'));
  await bothModes(p, () => `${yarn} add --silent --no-progress --non-interactive is-number@7.0.0`);
});

test('yarn berry with httpsCaFilePath and httpsProxy in .yarnrc.yml installs through htvend, then offline', { skip, timeout: 300_000 }, async (t) => {
  if (tools.error) return t.skip(tools.error);
  const p = await npmProject(t);
  const otherCa = join(p.dir, 'other-ca.pem');
  for (const d of ['online', 'offline']) {
    await writeFile(
      join(p.dir, d, '.yarnrc.yml'),
      `npmRegistryServer: "${REGISTRY.replace(/\/$/, '')}"\nhttpsCaFilePath: "${otherCa}"\nhttpsProxy: "${DEAD_PROXY}"\nnodeLinker: node-modules\nenableGlobalCache: false\nenableTelemetry: false\n`,
    );
  }
  const yarn = q(join(tools.dir!, 'berry', 'lib', 'node_modules', '@yarnpkg', 'cli-dist', 'bin', 'yarn.js'));
  await bothModes(p, () => `node ${yarn} add is-number@7.0.0 > yarn.log || { cat yarn.log >&2; exit 1; }`);
});
