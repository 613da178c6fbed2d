/**
 * npm against the real npm registry (needs network: skipped with HTVEND_TEST_NO_NETWORK=1).
 * `npm install is-number@7.0.0` under `htvend build` with zero npm configuration, then again
 * under `htvend offline` inside `unshare -n` with a fresh cache and a fresh project: npm
 * must install the same package from the replayed packument and tarball.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { build, offlineUnshared, project, canUnshare, noNetwork, which } from './harness.js';

const npmArgs = (cache: string, prefix: string) => ['npm', 'install', 'is-number@7.0.0', '--cache', cache, '--prefix', prefix, '--no-audit', '--no-fund', '--no-update-notifier', '--registry', 'https://registry.npmjs.org/'];

test(
  'npm install from registry.npmjs.org is recorded, then replayed offline with a fresh cache',
  { skip: noNetwork ? 'HTVEND_TEST_NO_NETWORK=1' : !canUnshare || !which('npm') ? 'needs npm and unshare -n' : false, timeout: 240_000 },
  async (t) => {
    const p = await project(t, { upstream: false });
    // htvend's own upstream trusts the system bundle (this machine reaches the registry through
    // a transparent proxy whose CA is in it).
    p.env['SSL_CERT_FILE'] = '/etc/ssl/certs/ca-certificates.crt';
    for (const d of ['online', 'offline']) await mkdir(join(p.dir, d));

    const b = await build(p, ['--', ...npmArgs(join(p.dir, 'cache-online'), join(p.dir, 'online'))], { timeoutMs: 180_000 });
    assert.equal(b.code, 0, b.stderr);
    const assets = JSON.parse(await readFile(join(p.dir, 'assets.json'), 'utf8')) as Record<string, unknown>;
    assert.ok(assets['https://registry.npmjs.org/is-number'], Object.keys(assets).join('\n'));
    assert.ok(assets['https://registry.npmjs.org/is-number/-/is-number-7.0.0.tgz'], Object.keys(assets).join('\n'));

    const o = await offlineUnshared(p, ['--', ...npmArgs(join(p.dir, 'cache-offline'), join(p.dir, 'offline'))], { timeoutMs: 180_000 });
    assert.equal(o.code, 0, o.stderr);
    assert.doesNotMatch(o.stderr, /missing asset/);
    const online = await readFile(join(p.dir, 'online', 'node_modules', 'is-number', 'index.js'));
    const offline = await readFile(join(p.dir, 'offline', 'node_modules', 'is-number', 'index.js'));
    assert.deepEqual(offline, online);
    assert.equal(JSON.parse(await readFile(join(p.dir, 'offline', 'node_modules', 'is-number', 'package.json'), 'utf8')).version, '7.0.0');
  },
);
