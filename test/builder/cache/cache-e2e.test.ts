/**
 * The build cache under htvend (SPEC §9, docs/build-cache.md), end to end with the real CLIs,
 * runc, a TLS docker-registry and an HTTPS upstream: a cached RUN's download is asked for
 * again before reuse, so assets.json and offline builds cannot tell a cached step from one
 * that ran.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canUnshare, which } from '../../e2e/harness.js';
import { builder, digestOf, hostTool, offline, online, proj, reportSteps, sharedWorld, type Proj, type World } from './harness.js';
import { cliCommand, run } from '../../helpers/cli.js';
import { q } from '../../e2e/harness.js';

/** `htvend build -- sh -c 'unset HTVEND_CONTROL_URL HTVEND_SESSION_SECRET; build-img-with-proxy …'` */
function runPlain(p: Proj, out: string, extra: string[]) {
  const inner = builder(p, out, extra).map(q).join(' ');
  return run([...cliCommand('htvend'), '-C', p.dir, 'build', '--blobs-dir', p.blobs, '--', 'sh', '-c', `unset HTVEND_CONTROL_URL HTVEND_SESSION_SECRET; exec ${inner}`], { env: p.env, timeoutMs: 180_000 });
}

const world = sharedWorld();

const dockerfile = (w: World) => [`FROM ${w.bb.ref}`, `RUN wget -q -O /data.txt ${w.up.https}/data.txt && echo ran >> /runs`, 'COPY src.txt /src.txt', ''].join('\n');

test('cold, then warm after a COPY source changed: the RUN is cached and assets.json is byte-identical', async (t) => {
  const w = world();
  const p = await proj(t, w, dockerfile(w), { 'src.txt': 'one\n' });
  const cold = await online(p, 'cold.tar', ['--report', join(p.dir, 'cold.json')]);
  assert.equal(cold.code, 0, cold.stderr);
  const coldAssets = await readFile(join(p.dir, 'assets.json'));
  const coldSteps = await reportSteps(join(p.dir, 'cold.json'));
  const coldRun = coldSteps.find((s) => s.kind === 'RUN')!;
  assert.equal(coldRun.status, 'run');
  assert.deepEqual(coldRun.assets.map((a) => a.url), [`${w.up.https}/data.txt`], 'the RUN step is credited with its download');
  assert.ok(coldSteps.find((s) => s.kind === 'FROM')!.assets.some((a) => a.url.includes('/v2/busybox/manifests/latest')), 'the pull is credited to FROM');

  await writeFile(join(p.ctx, 'src.txt'), 'two\n');
  const warm = await online(p, 'warm.tar', ['--report', join(p.dir, 'warm.json')]);
  assert.equal(warm.code, 0, warm.stderr);
  const warmSteps = await reportSteps(join(p.dir, 'warm.json'));
  assert.equal(warmSteps.find((s) => s.kind === 'RUN')!.status, 'cached', warm.stderr);
  assert.equal(warmSteps.find((s) => s.kind === 'COPY')!.status, 'run');
  assert.deepEqual(warmSteps.find((s) => s.kind === 'RUN')!.assets, coldRun.assets);
  assert.deepEqual(await readFile(join(p.dir, 'assets.json')), coldAssets);
  assert.equal(w.up.hits('/data.txt'), 1, 'downloaded once, replayed after');

  // assets.json deleted: the cached RUN's download is recorded again by its probe.
  await rm(join(p.dir, 'assets.json'));
  const again = await online(p, 'again.tar', ['--report', join(p.dir, 'again.json')]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((await reportSteps(join(p.dir, 'again.json'))).find((s) => s.kind === 'RUN')!.status, 'cached');
  assert.deepEqual(await readFile(join(p.dir, 'assets.json')), coldAssets);
  assert.equal(digestOf(again), digestOf(warm));
});

test('offline: warm gives the digest of cold; with the download gone from assets.json the build fails naming it', { skip: canUnshare ? false : 'unshare -n unavailable' }, async (t) => {
  const w = world();
  const p = await proj(t, w, dockerfile(w), { 'src.txt': 'one\n' });
  const rec = await online(p, 'rec.tar', ['--no-cache']);
  assert.equal(rec.code, 0, rec.stderr);
  await rm(p.cache, { recursive: true, force: true });
  const cold = await offline(p, 'cold.tar', ['--report', join(p.dir, 'cold.json')]);
  assert.equal(cold.code, 0, cold.stderr);
  assert.equal((await reportSteps(join(p.dir, 'cold.json'))).find((s) => s.kind === 'RUN')!.status, 'run');
  const warm = await offline(p, 'warm.tar', ['--report', join(p.dir, 'warm.json')]);
  assert.equal(warm.code, 0, warm.stderr);
  assert.equal((await reportSteps(join(p.dir, 'warm.json'))).find((s) => s.kind === 'RUN')!.status, 'cached');
  assert.equal(digestOf(warm), digestOf(cold));
  assert.deepEqual(await readFile(join(p.dir, 'warm.tar')), await readFile(join(p.dir, 'cold.tar')));

  const url = `${w.up.https}/data.txt`;
  const assets = JSON.parse(await readFile(join(p.dir, 'assets.json'), 'utf8')) as Record<string, unknown>;
  delete assets[url];
  await writeFile(join(p.dir, 'assets.json'), JSON.stringify(assets));
  const gone = await offline(p, 'gone.tar');
  assert.notEqual(gone.code, 0, 'a cached step cannot hide a missing asset');
  assert.ok(gone.stderr.includes(url), gone.stderr);
  assert.match(gone.stderr, /Dockerfile:2: .*not available/);
});

test('--force-refresh with changed upstream content is a cache miss; the step runs on the new bytes', async (t) => {
  const w = world();
  const p = await proj(t, w, dockerfile(w), { 'src.txt': 'one\n' });
  const cold = await online(p, 'cold.tar');
  assert.equal(cold.code, 0, cold.stderr);
  w.data.body = 'version two, longer\n';
  t.after(() => void (w.data.body = 'version one\n'));
  const same = await online(p, 'same.tar', ['--report', join(p.dir, 'same.json')]);
  assert.equal((await reportSteps(join(p.dir, 'same.json'))).find((s) => s.kind === 'RUN')!.status, 'cached', 'without --force-refresh the recorded bytes stand');
  const fresh = await online(p, 'fresh.tar', ['--report', join(p.dir, 'fresh.json')], ['--force-refresh']);
  assert.equal(fresh.code, 0, fresh.stderr);
  const run = (await reportSteps(join(p.dir, 'fresh.json'))).find((s) => s.kind === 'RUN')!;
  assert.equal(run.status, 'run', fresh.stderr);
  assert.match(run.note ?? '', /changed/);
  assert.equal(run.assets[0]!.size, Buffer.byteLength('version two, longer\n'));
  assert.notEqual(digestOf(fresh), digestOf(same));
});

test('a corrupted cache entry is found by digest, thrown away with a warning, and the step runs again', async (t) => {
  const w = world();
  const p = await proj(t, w, dockerfile(w), { 'src.txt': 'one\n' });
  const cold = await online(p, 'cold.tar');
  assert.equal(cold.code, 0, cold.stderr);
  const blobs = join(p.cache, 'v1', 'blobs');
  const layers = (await readdir(blobs)).filter((n) => !n.endsWith('.ok'));
  for (const l of layers) {
    const bytes = await readFile(join(blobs, l));
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    await writeFile(join(blobs, l), bytes);
  }
  const entries = join(p.cache, 'v1', 'entries');
  const names = await readdir(entries);
  assert.ok(names.length >= 2);
  const warm = await online(p, 'warm.tar', ['--report', join(p.dir, 'warm.json')]);
  assert.equal(warm.code, 0, warm.stderr);
  assert.match(warm.stderr, /build cache: entry [0-9a-f]{12} thrown away: layer blob sha256:[0-9a-f]{64} does not match its digest/);
  assert.equal((await reportSteps(join(p.dir, 'warm.json'))).find((s) => s.kind === 'RUN')!.status, 'run');
  assert.equal(digestOf(warm), digestOf(cold));
  // A truncated entry file too.
  const truncated = (await readdir(entries))[0]!;
  const text = await readFile(join(entries, truncated), 'utf8');
  await writeFile(join(entries, truncated), text.slice(0, text.length >> 1));
  const third = await online(p, 'third.tar');
  assert.equal(third.code, 0, third.stderr);
  assert.match(third.stderr, /thrown away: its digest does not match/);
  assert.equal(digestOf(third), digestOf(cold));
});

test('--cache-to and --cache-from share steps between two cache dirs through a registry', async (t) => {
  const w = world();
  const p = await proj(t, w, dockerfile(w), { 'src.txt': 'one\n' });
  const repo = `docker://${w.bb.registry.host}/build-cache`;
  const first = await online(p, 'first.tar', ['--cert-dir', w.certDir, '--cache-to', repo]);
  assert.equal(first.code, 0, first.stderr);
  const other = join(p.dir, 'other-cache');
  const second = await online({ ...p, cache: other }, 'second.tar', ['--cert-dir', w.certDir, '--cache-from', repo, '--report', join(p.dir, 'second.json')]);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /fetched from docker:\/\//);
  const steps = await reportSteps(join(p.dir, 'second.json'));
  assert.equal(steps.find((s) => s.kind === 'RUN')!.status, 'cached', second.stderr);
  assert.equal(digestOf(second), digestOf(first));
  // An unreachable --cache-from is a warning.
  const third = await online({ ...p, cache: join(p.dir, 'third-cache') }, 'third.tar', ['--cache-from', 'docker://127.0.0.1:9/nothing']);
  assert.equal(third.code, 0, third.stderr);
  assert.match(third.stderr, /(warning|WARN).*--cache-from docker:\/\/127\.0\.0\.1:9\/nothing/);
});

test('behind a proxy that cannot attribute, a step that fetched is not served from the cache, with one line saying why', async (t) => {
  const w = world();
  const p = await proj(t, w, dockerfile(w), { 'src.txt': 'one\n' });
  const cold = await online(p, 'cold.tar');
  assert.equal(cold.code, 0, cold.stderr);
  // The same session, but the builder gets no control channel (as under the Go htvend).
  const plain = await runPlain(p, 'plain.tar', ['--report', join(p.dir, 'plain.json')]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal((await reportSteps(join(p.dir, 'plain.json'))).find((s) => s.kind === 'RUN')!.status, 'run');
  assert.equal(plain.stderr.match(/cannot attribute requests to steps/g)?.length, 1, plain.stderr);
});

test('attribution inside RUN: curl and GNU wget are each credited with their downloads, and cached', { skip: which('curl') && which('wget') ? false : 'curl/wget missing' }, async (t) => {
  const w = world();
  w.up.route('/for-curl.txt', (_q, s) => s.writeHead(200, { 'content-length': '5' }).end('curl\n'));
  w.up.route('/for-wget.txt', (_q, s) => s.writeHead(200, { 'content-length': '5' }).end('wget\n'));
  const df = [
    `FROM ${w.bb.ref}`,
    'COPY root/ /',
    `RUN /usr/bin/curl -sSf -o /c.txt ${w.up.https}/for-curl.txt`,
    `RUN /usr/bin/wget -q --ca-certificate="$SSL_CERT_FILE" -O /w.txt ${w.up.https}/for-wget.txt && /usr/bin/wget -q -O /w2.txt ${w.up.http}/for-wget.txt`,
    'COPY src.txt /src.txt',
    '',
  ].join('\n');
  const p = await proj(t, w, df, { 'src.txt': 'one\n' });
  await hostTool(join(p.ctx, 'root'), '/usr/bin/curl');
  await hostTool(join(p.ctx, 'root'), '/usr/bin/wget');
  const cold = await online(p, 'cold.tar', ['--report', join(p.dir, 'cold.json')]);
  assert.equal(cold.code, 0, cold.stderr);
  const runs = (await reportSteps(join(p.dir, 'cold.json'))).filter((s) => s.kind === 'RUN');
  assert.deepEqual(runs.map((s) => s.assets.map((a) => a.url)), [[`${w.up.https}/for-curl.txt`], [`${w.up.http}/for-wget.txt`, `${w.up.https}/for-wget.txt`]]);
  await writeFile(join(p.ctx, 'src.txt'), 'two\n');
  const warm = await online(p, 'warm.tar', ['--report', join(p.dir, 'warm.json')]);
  assert.equal(warm.code, 0, warm.stderr);
  assert.deepEqual((await reportSteps(join(p.dir, 'warm.json'))).filter((s) => s.kind === 'RUN').map((s) => s.status), ['cached', 'cached'], cold.stderr + warm.stderr);
});
