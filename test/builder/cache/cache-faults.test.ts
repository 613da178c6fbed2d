/**
 * Build-cache faults (SPEC §9 "Bad input and faults", docs/build-cache.md "Faults"), end to end
 * with the real CLIs and runc: two builds at once on one cache directory are both correct, and
 * a full disk while an entry is written is a warning, the build succeeds and no half entry is
 * left (a small tmpfs as --cache-dir; needs root to mount).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf, online, proj, reportSteps, sharedWorld } from './harness.js';
import { run } from '../../helpers/cli.js';

const world = sharedWorld();

const isRoot = process.getuid?.() === 0;

/** Every file under `dir`, relative, sorted. */
async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) if (e.isFile()) out.push(join(e.parentPath ?? (e as unknown as { path: string }).path, e.name).slice(dir.length + 1));
  return out.sort();
}

test('two builds at once on one cache directory are both correct, and the next build is served from what they stored', async (t) => {
  const w = world();
  const df = [`FROM ${w.bb.ref}`, `RUN wget -q -O /data.txt ${w.up.https}/data.txt && echo ran >> /runs`, 'RUN echo second > /second', 'COPY src.txt /src.txt', ''].join('\n');
  const a = await proj(t, w, df, { 'src.txt': 'one\n' });
  const b = await proj(t, w, df, { 'src.txt': 'one\n' });
  const shared = join(a.dir, 'shared-cache');
  const [ra, rb] = await Promise.all([
    online({ ...a, cache: shared }, 'a.tar', ['--report', join(a.dir, 'a.json')]),
    online({ ...b, cache: shared }, 'b.tar', ['--report', join(b.dir, 'b.json')]),
  ]);
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(rb.code, 0, rb.stderr);
  assert.ok(digestOf(ra), ra.stdout);
  assert.equal(digestOf(ra), digestOf(rb), 'both builds give the same image');
  assert.deepEqual(await readFile(join(a.dir, 'a.tar')), await readFile(join(b.dir, 'b.tar')));
  assert.deepEqual(await readFile(join(a.dir, 'assets.json')), await readFile(join(b.dir, 'assets.json')), 'both record the download, whichever ran or hit');
  for (const r of [ra, rb]) assert.doesNotMatch(r.stderr, /thrown away|could not store/, r.stderr);
  assert.deepEqual(await readdir(join(shared, 'v1', 'tmp')).catch(() => []), [], 'no temp file left behind');
  // A third build on the shared directory: every RUN from the cache, same image.
  const c = await proj(t, w, df, { 'src.txt': 'one\n' });
  const rc = await online({ ...c, cache: shared }, 'c.tar', ['--report', join(c.dir, 'c.json')]);
  assert.equal(rc.code, 0, rc.stderr);
  assert.deepEqual((await reportSteps(join(c.dir, 'c.json'))).filter((s) => s.kind === 'RUN').map((s) => s.status), ['cached', 'cached'], rc.stderr);
  assert.equal(digestOf(rc), digestOf(ra));
  assert.deepEqual(await readFile(join(c.dir, 'assets.json')), await readFile(join(a.dir, 'assets.json')));
});

test('a full disk while writing a cache entry is a warning: the build succeeds and no half entry is left', { skip: isRoot ? false : 'needs root to mount a tmpfs' }, async (t) => {
  const w = world();
  // A RUN whose layer (incompressible, ~384 KiB) cannot fit in a 256 KiB tmpfs cache dir.
  const df = [`FROM ${w.bb.ref}`, `RUN wget -q -O /data.txt ${w.up.https}/data.txt && head -c 393216 /dev/urandom > /big`, 'COPY src.txt /src.txt', ''].join('\n');
  const p = await proj(t, w, df, { 'src.txt': 'one\n' });
  await mkdir(p.cache);
  const m = await run(['mount', '-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', p.cache]);
  if (m.code !== 0) return t.skip(`cannot mount a tmpfs: ${m.stderr.trim()}`);
  // Unmounted here, not in t.after: tempDir's cleanup must not meet a mounted tmpfs.
  try {
    const r = await online(p, 'full.tar', ['--report', join(p.dir, 'full.json')]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(digestOf(r), r.stdout);
    assert.match(r.stderr, /warning: build cache: could not store the step \(.*(ENOSPC|no space)/i, r.stderr);
    assert.equal(r.stderr.match(/could not store the step/g)?.length, 1, 'one warning for the one step that did not fit');
    const left = await files(p.cache);
    assert.deepEqual(left.filter((f) => f.startsWith('v1/tmp/')), [], `no temp file left: ${left.join(', ')}`);
    // The COPY's small entry may fit; what must not exist is an entry for the RUN or a blob without its bytes.
    const entries = await readdir(join(p.cache, 'v1', 'entries')).catch(() => [] as string[]);
    for (const e of entries) {
      const parsed = JSON.parse(await readFile(join(p.cache, 'v1', 'entries', e), 'utf8')) as { entry: { layer?: { digest: string; size: number } } };
      const l = parsed.entry.layer;
      if (l) assert.equal((await readFile(join(p.cache, 'v1', 'blobs', l.digest))).length, l.size, `entry ${e} has its whole blob`);
    }
    assert.equal((await reportSteps(join(p.dir, 'full.json'))).find((s) => s.kind === 'RUN')!.status, 'run');
    // The next build still works (the RUN runs again, nothing half-written is served).
    const again = await online(p, 'again.tar', ['--report', join(p.dir, 'again.json')]);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /thrown away/);
    assert.equal((await reportSteps(join(p.dir, 'again.json'))).find((s) => s.kind === 'RUN')!.status, 'run');
  } finally {
    await run(['umount', p.cache]);
  }
});
