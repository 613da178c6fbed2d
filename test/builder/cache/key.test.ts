/**
 * Step cache keys (docs/build-cache.md, "The key"): every input a step can see changes its
 * key; what it cannot see (a file .dockerignore excludes, a secret's value, the session's
 * proxy address and CA path, mtimes above SOURCE_DATE_EPOCH) does not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copyEntries } from '../../../src/builder/copy/copy.js';
import { loadDockerignore } from '../../../src/builder/copy/sources.js';
import { copyStepKey, runStepKey } from '../../../src/builder/cache/hooks.js';
import { chainId } from '../../../src/builder/cache/key.js';
import { scratchImage, appendLayer, type Image } from '../../../src/builder/image/image.js';
import type { ProxyInjection, RunMount, RunStepRequest } from '../../../src/builder/run/types.js';
import { parseDigest } from '../../../src/util/digest.js';
import { tempDir } from '../../helpers/tmp.js';

const d = (c: string) => parseDigest(c.repeat(64));
const base: Image = appendLayer(scratchImage({ os: 'linux', architecture: 'amd64' }), { digest: d('a'), diffId: d('b'), size: 1, path: '/x', mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' }, { created_by: 'x' });
const proxy: ProxyInjection = { caFile: '/tmp/htvend-1/ca.pem', caTarget: '/tmp/htvend-1/ca.pem', certFileVars: ['SSL_CERT_FILE'], env: { HTTP_PROXY: 'http://127.0.0.1:1111', NO_PROXY: '' } };
const ac = new AbortController();

function step(over: Partial<Omit<RunStepRequest, 'rootfsLayers' | 'stageRootfs'>> = {}): Omit<RunStepRequest, 'rootfsLayers' | 'stageRootfs'> {
  return { argv: ['/bin/sh', '-c', 'make'], env: ['PATH=/bin', 'V=1'], user: '', workdir: '/', mounts: [], network: 'host', privileged: false, platform: { os: 'linux', architecture: 'amd64' }, epoch: 0, proxyEnv: proxy, contextDir: '/nonexistent', cacheRoot: '/c', tmpDir: '/t', signal: ac.signal, dockerfileLine: 'Dockerfile:2', ...over };
}
const noImage = async (): Promise<Image> => base;
const key = (over: Partial<ReturnType<typeof step>> = {}, image = base, p = proxy) => runStepKey(step(over), image, p, noImage);

test('RUN: each input it can see changes the key', async () => {
  const k0 = await key();
  const other = appendLayer(base, { digest: d('c'), diffId: d('d'), size: 1, path: '/y', mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' }, { created_by: 'y' });
  const variants = [
    key({ argv: ['/bin/sh', '-c', 'make all'] }),
    key({ env: ['PATH=/bin', 'V=2'] }),
    key({ user: 'nobody' }),
    key({ workdir: '/src' }),
    key({ network: 'none' }),
    key({ privileged: true }),
    key({ platform: { os: 'linux', architecture: 'arm64' } }),
    key({ epoch: 1 }),
    key({ mounts: [{ type: 'tmpfs', target: '/scratch' }] }),
    key({ mounts: [{ type: 'secret', id: 'npmrc', required: false, mode: 0o400, uid: 0, gid: 0, source: { kind: 'value', value: 'a' } }] }),
    key({}, other),
    key({}, base, { ...proxy, certFileVars: ['SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS'] }),
    key({}, base, { ...proxy, aptConfig: { hostFile: '/tmp/htvend-1/apt.conf', target: '/run/htvend/apt.conf' } }),
  ];
  const keys = await Promise.all(variants);
  assert.equal(new Set([k0, ...keys]).size, keys.length + 1, 'all distinct');
});

test('RUN: a secret value, the proxy address and the CA path do not change the key', async () => {
  const secret = (value: string): RunMount => ({ type: 'secret', id: 'tok', required: true, mode: 0o400, uid: 0, gid: 0, source: { kind: 'value', value } });
  assert.equal(await key({ mounts: [secret('one')] }), await key({ mounts: [secret('two')] }));
  const otherSession = { ...proxy, caFile: '/tmp/htvend-2/ca.pem', caTarget: '/tmp/htvend-2/ca.pem', env: { HTTP_PROXY: 'http://127.0.0.1:2222', NO_PROXY: '' } };
  assert.equal(await key({}, base, otherSession), await key());
});

test('RUN: the apt config is keyed by where it is mounted, not its host path, and not when the step sets APT_CONFIG itself', async () => {
  const apt = (hostFile: string): ProxyInjection => ({ ...proxy, aptConfig: { hostFile, target: '/run/htvend/apt.conf' } });
  assert.equal(await key({}, base, apt('/tmp/htvend-1/apt.conf')), await key({}, base, apt('/tmp/htvend-2/apt.conf')));
  const own = ['PATH=/bin', 'V=1', 'APT_CONFIG=/etc/my-apt.conf'];
  assert.equal(await key({ env: own }, base, apt('/tmp/htvend-1/apt.conf')), await key({ env: own }), 'not given one: same key as without');
});

test('RUN: a bind mount of the context is keyed by its content, not its mtimes', async (t) => {
  const ctx = await tempDir(t);
  await mkdir(join(ctx, 'src'));
  await writeFile(join(ctx, 'src', 'a.c'), 'int main;\n');
  const m: RunMount = { type: 'bind', target: '/src', source: 'src', readonly: true };
  const withCtx = () => key({ mounts: [m], contextDir: ctx });
  const k1 = await withCtx();
  await utimes(join(ctx, 'src', 'a.c'), 1000, 1000);
  assert.equal(await withCtx(), k1);
  await writeFile(join(ctx, 'src', 'a.c'), 'int main();\n');
  assert.notEqual(await withCtx(), k1);
});

test('COPY: keyed by the copied bytes after .dockerignore; mtimes past the epoch are clamped', async (t) => {
  const ctx = await tempDir(t);
  await writeFile(join(ctx, '.dockerignore'), 'ignored.log\n');
  await writeFile(join(ctx, 'app.js'), 'console.log(1)\n');
  await writeFile(join(ctx, 'ignored.log'), 'noise 1\n');
  const copyKeyNow = async (epoch = 0) => {
    const di = await loadDockerignore(ctx);
    const entries = await copyEntries({
      kind: 'COPY', sources: ['.'], dest: '/app/', workdir: '/', from: { dir: ctx, isContext: true, ignore: di.ignore, hasExceptions: di.hasExceptions },
      lookup: async () => undefined, heredocs: [], expandHeredoc: (s) => s, epoch, tmpDir: ctx, dispatcher: () => Promise.reject(new Error('no network')), where: 'Dockerfile:3',
    });
    return copyStepKey('COPY', entries, base, epoch, ac.signal);
  };
  const k1 = await copyKeyNow();
  await writeFile(join(ctx, 'ignored.log'), 'noise 2, longer\n');
  assert.equal(await copyKeyNow(), k1, 'an ignored file does not count');
  await utimes(join(ctx, 'app.js'), 5000, 5000);
  assert.equal(await copyKeyNow(), k1, 'mtime clamped to SOURCE_DATE_EPOCH=0');
  assert.notEqual(await copyKeyNow(10_000), k1, 'another epoch is another layer');
  await writeFile(join(ctx, 'app.js'), 'console.log(2)\n');
  assert.notEqual(await copyKeyNow(), k1);
});

test('chainId follows the OCI image spec', () => {
  assert.equal(chainId([]), '');
  assert.equal(chainId(['b'.repeat(64)]), 'b'.repeat(64));
  assert.notEqual(chainId(['b'.repeat(64), 'c'.repeat(64)]), chainId(['c'.repeat(64), 'b'.repeat(64)]));
});
