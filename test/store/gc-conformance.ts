/**
 * `htvend gc` on a backend, run inside the store conformance suite (conformance.ts calls
 * `gcConformance(makeStore)` for every backend): exactly the orphans go, young blobs stay,
 * dry-run deletes nothing, every kept lockfile still verifies, and a missing or malformed
 * kept lockfile stops gc before it deletes anything.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canFinalizeExport, canList, type BlobStore } from '../../src/store/store.js';
import type { Digest } from '../../src/util/digest.js';
import { gc } from '../../src/lifecycle/gc.js';
import { silentLogger } from '../../src/util/log.js';
import { verify } from '../../src/commands/verify.js';
import { tempDir } from '../helpers/tmp.js';
import { putBytes } from '../helpers/store.js';

async function seed(t: TestContext, makeStore: (t: TestContext) => Promise<BlobStore>) {
  const store = await makeStore(t);
  assert.ok(canList(store), `${store.description} can list and delete`);
  const put = () => putBytes(store, randomBytes(2000 + Math.floor(Math.random() * 1000)));
  const [a, b, c, d] = [await put(), await put(), await put(), await put()];
  // The registry store only knows blobs some listing names (what export leaves).
  if (canFinalizeExport(store)) await store.finalizeExport([a, b, c, d]);
  const dir = await tempDir(t, 'htvend-gc-');
  const lock = join(dir, 'kept.json');
  await writeFile(lock, JSON.stringify({ 'https://example.com/a': { Sha256: a, Headers: {} }, 'https://example.com/b': { Sha256: b, Headers: {} } }));
  return { store, a, b, c, d, dir, lock };
}

async function present(store: BlobStore, ds: Digest[]): Promise<boolean[]> {
  return Promise.all(ds.map(async (x) => (await store.stat(x)) !== undefined));
}

export function gcConformance(makeStore: (t: TestContext) => Promise<BlobStore>): void {
  test('gc: dry-run deletes nothing; young blobs stay; then exactly the orphans go and the kept lockfile verifies', async (t) => {
    const { store, a, b, c, d, dir, lock } = await seed(t, makeStore);
    const lines: string[] = [];
    const dry = await gc({ store, keep: [lock], minAgeMs: 0, dryRun: true, log: silentLogger, write: (l) => lines.push(l) });
    assert.equal(dry.deleted, 2);
    assert.deepEqual(lines.map((l) => /sha256:[0-9a-f]{64}/.exec(l)?.[0]).sort(), [`sha256:${c}`, `sha256:${d}`].sort());
    assert.match(lines[0]!, /^would delete /);
    assert.deepEqual(await present(store, [a, b, c, d]), [true, true, true, true]);

    const young = await gc({ store, keep: [lock], minAgeMs: 24 * 3600_000, dryRun: false, log: silentLogger, write: () => {} });
    assert.deepEqual([young.deleted, young.young, young.kept], [0, 2, 2]);
    assert.deepEqual(await present(store, [a, b, c, d]), [true, true, true, true]);

    const out: string[] = [];
    const real = await gc({ store, keep: [join(dir, '*.json')], minAgeMs: 0, dryRun: false, log: silentLogger, write: (l) => out.push(l) });
    assert.deepEqual([real.deleted, real.kept, real.missing], [2, 2, 0]);
    assert.ok(real.bytesFreed >= 4000);
    assert.deepEqual(await present(store, [a, b, c, d]), [true, true, false, false]);
    const v = await verify({ manifestPath: lock, store, jobs: 2 });
    assert.deepEqual([v.exitCode, v.ok, v.missing, v.corrupt], [0, 2, 0, 0]);

    const again = await gc({ store, keep: [lock], minAgeMs: 0, dryRun: false, log: silentLogger, write: () => {} });
    assert.deepEqual([again.listed, again.deleted], [2, 0]);
  });

  test('gc: a missing, malformed or unmatched kept lockfile stops gc before anything is deleted', async (t) => {
    const { store, a, b, c, d, dir, lock } = await seed(t, makeStore);
    await writeFile(join(dir, 'broken.json'), '{"x": ');
    for (const [keep, re] of [
      [[lock, join(dir, 'gone.json')], /gone\.json: cannot read/],
      [[lock, join(dir, 'broken.json')], /broken\.json:1:/],
      [[lock, join(dir, 'none-*.lock')], /matches no file/],
    ] as [string[], RegExp][]) {
      await assert.rejects(gc({ store, keep, minAgeMs: 0, dryRun: false, log: silentLogger, write: () => {} }), (e: Error) => re.test(e.message) && /nothing was deleted/.test(e.message));
    }
    assert.deepEqual(await present(store, [a, b, c, d]), [true, true, true, true]);
  });
}
