import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { exportBlobs, exportSummary, canFinalizeExport } from '../../src/commands/export.js';
import { DirStore } from '../../src/store/dir/index.js';
import type { BlobStore, IoOptions, PutOptions } from '../../src/store/store.js';
import { encodeAssets } from '../../src/manifest/codec.js';
import { sha256Hex, type Digest } from '../../src/util/digest.js';
import { HtvendError } from '../../src/util/errors.js';
import { silentLogger, type Logger } from '../../src/util/log.js';
import type { AssetEntry } from '../../src/manifest/types.js';
import { tempDir } from '../helpers/tmp.js';

const fast = { baseDelayMs: 1, maxDelayMs: 5 };

async function setup(t: TestContext, assets: Record<string, string>, opts: { notInSource?: string[] } = {}) {
  const dir = await tempDir(t);
  const from = await DirStore.open(join(dir, 'src'));
  const to = await DirStore.open(join(dir, 'dst'));
  const entries = new Map<string, AssetEntry>();
  for (const [url, body] of Object.entries(assets)) {
    if (!opts.notInSource?.includes(url)) {
      const w = await from.put();
      await pipeline(Readable.from([Buffer.from(body)]), w.stream);
      await w.commit();
    }
    entries.set(url, { Sha256: sha256Hex(body), Headers: {} });
  }
  const manifestPath = join(dir, 'assets.json');
  await writeFile(manifestPath, encodeAssets(entries));
  return { dir, from, to, manifestPath };
}

/** Wraps a store, delegating everything; `hooks` may replace single methods. */
function wrap<T extends BlobStore>(inner: T, hooks: Partial<BlobStore> & Record<string, unknown> = {}): BlobStore {
  return {
    description: `wrapped ${inner.description}`,
    stat: (d: Digest, o?: IoOptions) => inner.stat(d, o),
    get: (d: Digest, o?: IoOptions) => inner.get(d, o),
    put: (o?: PutOptions) => inner.put(o),
    ...hooks,
  };
}

test('export copies every distinct blob, and a second run skips them all', async (t) => {
  const s = await setup(t, { 'https://x/a': 'aaa', 'https://x/a2': 'aaa', 'https://x/b': 'bbbb', 'https://x/empty': '' });
  const r = await exportBlobs({ manifestPath: s.manifestPath, from: s.from, to: s.to, jobs: 2, log: silentLogger, progress: false });
  assert.deepEqual({ blobs: r.blobs, copied: r.copied, skipped: r.skipped, bytes: r.bytes, exitCode: r.exitCode }, { blobs: 3, copied: 3, skipped: 0, bytes: 7, exitCode: 0 });
  assert.deepEqual((await readdir(join(s.dir, 'dst'))).sort(), [sha256Hex('aaa'), sha256Hex('bbbb'), sha256Hex('')].sort());
  assert.equal(await readFile(s.to.pathOf(sha256Hex('bbbb')), 'utf8'), 'bbbb');
  const again = await exportBlobs({ manifestPath: s.manifestPath, from: s.from, to: s.to, log: silentLogger, progress: false });
  assert.deepEqual([again.copied, again.skipped, again.exitCode], [0, 3, 0]);
});

test('a blob missing from the source is reported by digest and URL; the others are still copied', async (t) => {
  const s = await setup(t, { 'https://x/here': 'here', 'https://x/gone': 'gone' }, { notInSource: ['https://x/gone'] });
  const lines: string[] = [];
  const log: Logger = { ...silentLogger, error: (m) => lines.push(m) };
  let gets = 0;
  const from = wrap(s.from, { get: (d: Digest, o?: IoOptions) => (gets++, s.from.get(d, o)) });
  const r = await exportBlobs({ manifestPath: s.manifestPath, from, to: s.to, log, progress: false, retry: fast });
  assert.equal(r.exitCode, 1);
  assert.equal(r.copied, 1);
  assert.deepEqual(r.failures.map((f) => [f.digest, f.urls]), [[sha256Hex('gone'), ['https://x/gone']]]);
  assert.equal(gets, 2, 'NOT_FOUND is not retried');
  assert.match(lines.join('\n'), /https:\/\/x\/gone/);
  assert.deepEqual(lines, exportSummary(r));
});

test('a source blob with wrong bytes is not copied', async (t) => {
  const s = await setup(t, { 'https://x/a': 'right' });
  await writeFile(s.from.pathOf(sha256Hex('right')), 'wrong');
  const r = await exportBlobs({ manifestPath: s.manifestPath, from: s.from, to: s.to, log: silentLogger, progress: false, retry: fast });
  assert.equal(r.exitCode, 1);
  assert.match(r.failures[0]!.message, /does not match/);
  assert.deepEqual(await readdir(join(s.dir, 'dst')), []);
});

test('transient destination failures are retried with backoff', async (t) => {
  const s = await setup(t, { 'https://x/a': 'aaa', 'https://x/b': 'bbb' });
  let failuresLeft = 3;
  const to = wrap(s.to, {
    put: async (o?: PutOptions) => {
      if (failuresLeft-- > 0) throw new HtvendError('STORE', 'HTTP 503 from the destination');
      return s.to.put(o);
    },
  });
  const warnings: string[] = [];
  const r = await exportBlobs({ manifestPath: s.manifestPath, from: s.from, to, jobs: 1, log: { ...silentLogger, warn: (m) => warnings.push(m) }, progress: false, retry: fast });
  assert.equal(r.exitCode, 0, exportSummary(r).join('\n'));
  assert.equal(r.copied, 2);
  assert.equal(warnings.filter((w) => /retry/.test(w)).length, 3);
});

test('an interrupted export leaves only complete blobs and a re-run finishes the job', async (t) => {
  const bodies = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`https://x/${i}`, `content ${i} `.repeat(50_000)]));
  const s = await setup(t, bodies);
  const ac = new AbortController();
  let started = 0;
  const from = wrap(s.from, {
    get: async (d: Digest, o?: IoOptions) => {
      if (++started === 3) ac.abort(new Error('interrupted'));
      return s.from.get(d, o);
    },
  });
  await assert.rejects(exportBlobs({ manifestPath: s.manifestPath, from, to: s.to, jobs: 2, log: silentLogger, progress: false, signal: ac.signal }));
  const partial = await readdir(join(s.dir, 'dst'));
  assert.ok(partial.length < 8);
  for (const name of partial) {
    assert.match(name, /^[0-9a-f]{64}$/, `half-written file ${name} left in the destination`);
    assert.equal(sha256Hex(await readFile(join(s.dir, 'dst', name))), name);
  }
  const r = await exportBlobs({ manifestPath: s.manifestPath, from: s.from, to: s.to, log: silentLogger, progress: false });
  assert.equal(r.exitCode, 0);
  assert.equal(r.copied + r.skipped, 8);
  assert.equal(r.skipped, partial.length);
});

test('the destination finalizeExport ability is called once with every digest, only on success', async (t) => {
  const s = await setup(t, { 'https://x/a': 'aaa', 'https://x/b': 'bbb', 'https://x/b2': 'bbb' });
  const calls: Digest[][] = [];
  const to = wrap(s.to, { finalizeExport: async (bs: { digest: Digest; size?: number }[]) => void calls.push(bs.map((b) => `${b.digest}:${b.size}`).sort() as Digest[]) });
  assert.ok(canFinalizeExport(to));
  assert.ok(!canFinalizeExport(s.to));
  const r = await exportBlobs({ manifestPath: s.manifestPath, from: s.from, to, log: silentLogger, progress: false });
  assert.equal(r.finalized, true);
  assert.deepEqual(calls, [[`${sha256Hex('aaa')}:3`, `${sha256Hex('bbb')}:3`].sort()]);

  const bad = await setup(t, { 'https://x/gone': 'gone' }, { notInSource: ['https://x/gone'] });
  const calls2: Digest[][] = [];
  const to2 = wrap(bad.to, { finalizeExport: async (ds: Digest[]) => void calls2.push(ds) });
  const r2 = await exportBlobs({ manifestPath: bad.manifestPath, from: bad.from, to: to2, log: silentLogger, progress: false });
  assert.equal(r2.finalized, false);
  assert.deepEqual(calls2, []);
});
