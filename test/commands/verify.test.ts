import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { verify, verifySummary } from '../../src/commands/verify.js';
import { DirStore } from '../../src/store/dir/index.js';
import { encodeAssets, decodeAssets } from '../../src/manifest/codec.js';
import { createUpstreamClient } from '../../src/upstream/client.js';
import { sha256Hex, type Digest } from '../../src/util/digest.js';
import { HtvendError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/log.js';
import type { AssetEntry } from '../../src/manifest/types.js';
import { startUpstream, sendBody, bearerProtected, tokenEndpoint, type Upstream } from '../helpers/https-upstream.js';
import { tempDir } from '../helpers/tmp.js';

const fast = { baseDelayMs: 1, maxDelayMs: 5 };

async function setup(t: TestContext, assets: Record<string, { body?: string; sha?: Digest; headers?: Record<string, string> }>) {
  const dir = await tempDir(t);
  const store = await DirStore.open(join(dir, 'blobs'));
  const manifestPath = join(dir, 'assets.json');
  const entries = new Map<string, AssetEntry>();
  for (const [url, a] of Object.entries(assets)) {
    if (a.body !== undefined) {
      const w = await store.put();
      await pipeline(Readable.from([Buffer.from(a.body)]), w.stream);
      await w.commit();
    }
    entries.set(url, { Sha256: a.sha ?? sha256Hex(a.body ?? ''), Headers: a.headers ?? {} });
  }
  const text = encodeAssets(entries);
  await writeFile(manifestPath, text);
  return { dir, store, manifestPath, text };
}

async function client(t: TestContext, up: Upstream) {
  const c = await createUpstreamClient({ env: {}, log: silentLogger, extraRoots: [up.caPem], systemBundles: [] });
  t.after(() => c.close());
  return c;
}

test('verify passes when every blob is present and hashes correctly', async (t) => {
  const s = await setup(t, { 'https://x/a': { body: 'aaa' }, 'https://x/b': { body: 'bbb' }, 'https://x/a-again': { body: 'aaa' } });
  const r = await verify({ manifestPath: s.manifestPath, store: s.store, log: silentLogger, progress: false });
  assert.equal(r.exitCode, 0);
  assert.deepEqual({ entries: r.entries, blobs: r.blobs, ok: r.ok, bytes: r.bytes, problems: r.problems }, { entries: 3, blobs: 2, ok: 2, bytes: 6, problems: [] });
});

test('verify reports a missing and a corrupt blob by URL and exits non-zero', async (t) => {
  const s = await setup(t, { 'https://x/missing': { sha: sha256Hex('never stored') }, 'https://x/bad': { body: 'good bytes' }, 'https://x/fine': { body: 'fine' } });
  await writeFile(s.store.pathOf(sha256Hex('good bytes')), 'evil bytes');
  const lines: string[] = [];
  const log = { ...silentLogger, error: (m: string) => lines.push(m) };
  const r = await verify({ manifestPath: s.manifestPath, store: s.store, log, progress: false });
  assert.equal(r.exitCode, 1);
  assert.deepEqual([r.ok, r.missing, r.corrupt], [1, 1, 1]);
  assert.deepEqual(r.problems.map((p) => [p.kind, p.urls]).sort(), [
    ['corrupt', ['https://x/bad']],
    ['missing', ['https://x/missing']],
  ]);
  const summary = verifySummary(r).join('\n');
  assert.match(summary, /https:\/\/x\/missing/);
  assert.match(summary, /https:\/\/x\/bad/);
  assert.match(summary, new RegExp(sha256Hex('never stored')));
  assert.deepEqual(lines, verifySummary(r));
});

test('verify --fetch downloads missing and corrupt blobs again and leaves assets.json untouched', async (t) => {
  const up = await startUpstream(t);
  up.route('/missing', sendBody('missing content', { 'content-type': 'text/plain' }));
  up.route('/corrupt', sendBody('corrupt content'));
  const s = await setup(t, {
    [`${up.https}/missing`]: { sha: sha256Hex('missing content'), headers: { 'Content-Type': 'text/plain' } },
    [`${up.http}/corrupt`]: { body: 'corrupt content' },
  });
  await writeFile(s.store.pathOf(sha256Hex('corrupt content')), 'c0rrupt content');
  const r = await verify({ manifestPath: s.manifestPath, store: s.store, fetch: true, upstream: await client(t, up), log: silentLogger, progress: false });
  assert.deepEqual(r.problems, []);
  assert.equal(r.exitCode, 0);
  assert.deepEqual([r.missing, r.corrupt, r.fetched], [1, 1, 2]);
  assert.equal(await readFile(s.store.pathOf(sha256Hex('missing content')), 'utf8'), 'missing content');
  assert.equal(await readFile(s.store.pathOf(sha256Hex('corrupt content')), 'utf8'), 'corrupt content');
  assert.equal(await readFile(s.manifestPath, 'utf8'), s.text);
  const again = await verify({ manifestPath: s.manifestPath, store: s.store, log: silentLogger, progress: false });
  assert.equal(again.exitCode, 0);
});

test('verify --fetch answers a registry bearer challenge like the proxy did', async (t) => {
  const up = await startUpstream(t);
  up.route('/token', tokenEndpoint('tok'));
  up.route('/v2/lib/x/blobs/sha256:abc', bearerProtected(() => up.http, '/token', 'tok', sendBody('layer bytes')));
  const url = `${up.http}/v2/lib/x/blobs/sha256:abc`;
  const s = await setup(t, { [url]: { sha: sha256Hex('layer bytes') } });
  const r = await verify({ manifestPath: s.manifestPath, store: s.store, fetch: true, upstream: await client(t, up), log: silentLogger, progress: false });
  assert.equal(r.exitCode, 0, verifySummary(r).join('\n'));
  assert.equal(r.fetched, 1);
});

test('verify --fetch refuses content that changed upstream, naming the URL and both digests', async (t) => {
  const up = await startUpstream(t);
  up.route('/changed', sendBody('new content'));
  const url = `${up.http}/changed`;
  const s = await setup(t, { [url]: { sha: sha256Hex('old content') } });
  const r = await verify({ manifestPath: s.manifestPath, store: s.store, fetch: true, upstream: await client(t, up), log: silentLogger, progress: false });
  assert.equal(r.exitCode, 1);
  assert.equal(r.problems.length, 1);
  const p = r.problems[0]!;
  assert.equal(p.kind, 'changed');
  assert.match(p.message, new RegExp(`${url}.*${sha256Hex('new content')}.*${sha256Hex('old content')}`));
  assert.equal(await s.store.stat(sha256Hex('new content')), undefined, 'rejected bytes are not stored');
  assert.equal(await readFile(s.manifestPath, 'utf8'), s.text);
  assert.equal(up.hits('/changed'), 1, 'a digest mismatch is not retried');
});

test('verify --repair accepts changed content and rewrites only that entry', async (t) => {
  const up = await startUpstream(t);
  up.route('/changed', sendBody('new content', { 'content-type': 'text/x-new', 'x-secret': 'no' }));
  const url = `${up.http}/changed`;
  const s = await setup(t, { [url]: { sha: sha256Hex('old content'), headers: { 'Content-Type': 'text/x-old' } }, 'https://x/kept': { body: 'kept' } });
  const r = await verify({
    manifestPath: s.manifestPath,
    store: s.store,
    repair: true,
    cacheHeaders: ['Content-Type', 'Content-Encoding'],
    upstream: await client(t, up),
    log: silentLogger,
    progress: false,
  });
  assert.equal(r.exitCode, 0, verifySummary(r).join('\n'));
  assert.equal(r.repaired, 1);
  const after = decodeAssets(await readFile(s.manifestPath), s.manifestPath);
  assert.deepEqual(after.get(url), { Sha256: sha256Hex('new content'), Headers: { 'Content-Type': 'text/x-new' } });
  assert.deepEqual(after.get('https://x/kept'), { Sha256: sha256Hex('kept'), Headers: {} });
  assert.equal(await readFile(s.store.pathOf(sha256Hex('new content')), 'utf8'), 'new content');
});

test('verify --fetch retries a 503 but not a 404, and names the failing URL', async (t) => {
  const up = await startUpstream(t);
  let calls = 0;
  up.route('/flaky', (req, res) => (++calls === 1 ? res.writeHead(503).end() : sendBody('flaky')(req, res)));
  up.route('/gone', (_req, res) => res.writeHead(404).end());
  const s = await setup(t, { [`${up.http}/flaky`]: { sha: sha256Hex('flaky') }, [`${up.http}/gone`]: { sha: sha256Hex('gone') } });
  const r = await verify({ manifestPath: s.manifestPath, store: s.store, fetch: true, upstream: await client(t, up), log: silentLogger, progress: false, retry: fast });
  assert.equal(r.exitCode, 1);
  assert.equal(r.fetched, 1);
  assert.equal(up.hits('/flaky'), 2);
  assert.equal(up.hits('/gone'), 1);
  assert.deepEqual(
    r.problems.map((p) => [p.kind, p.urls[0]]),
    [['fetch-failed', `${up.http}/gone`]],
  );
  assert.match(r.problems[0]!.message, /HTTP 404/);
});

test('verify of a malformed assets.json fails with file:line:column and a missing one with NOT_FOUND', async (t) => {
  const dir = await tempDir(t);
  const store = await DirStore.open(join(dir, 'blobs'));
  await writeFile(join(dir, 'assets.json'), '{\n  "a": \n}');
  await assert.rejects(verify({ manifestPath: join(dir, 'assets.json'), store, progress: false }), (e: unknown) => e instanceof HtvendError && e.code === 'INPUT' && e.message.includes(`${join(dir, 'assets.json')}:3:1`));
  await assert.rejects(verify({ manifestPath: join(dir, 'nope.json'), store, progress: false }), (e: unknown) => e instanceof HtvendError && e.code === 'NOT_FOUND');
});
