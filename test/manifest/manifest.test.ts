import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile, readdir, stat, mkdir, utimes } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Manifest } from '../../src/manifest/manifest.js';
import { decodeAssets } from '../../src/manifest/codec.js';
import { writeFileAtomic } from '../../src/manifest/atomic.js';
import { HtvendError } from '../../src/util/errors.js';
import { sha256Hex } from '../../src/util/digest.js';
import type { AssetEntry } from '../../src/manifest/types.js';
import { tempDir } from '../helpers/tmp.js';

const entry = (s: string, h: Record<string, string> = {}): AssetEntry => ({ Sha256: sha256Hex(s), Headers: h });
const keys = async (p: string) => [...decodeAssets(await readFile(p), p).keys()].sort();

function isCode(code: string, re?: RegExp) {
  return (e: unknown) => e instanceof HtvendError && e.code === code && (!re || re.test(e.message));
}

test('build mode reuses previous entries and writes exactly what the run requested on close', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'assets.json');
  await writeFile(p, `{"https://x/old": {"Sha256": "${sha256Hex('old')}", "Headers": {}}, "https://x/kept": {"Sha256": "${sha256Hex('kept')}", "Headers": {}}}`);
  const m = await Manifest.open(p, { mode: 'build' });
  const kept = m.get('https://x/kept');
  assert.equal(kept?.Sha256, sha256Hex('kept'));
  m.put('https://x/kept', kept!);
  m.put('https://x/new', entry('new'));
  assert.equal(m.get('https://x/new')?.Sha256, sha256Hex('new'));
  await m.close();
  assert.deepEqual(await keys(p), ['https://x/kept', 'https://x/new']);
  assert.equal(await readFile(p, 'utf8').then((s) => s.endsWith('}') && !s.endsWith('\n')), true);
});

test('incremental saves keep the previous entries until close prunes them', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'assets.json');
  await writeFile(p, `{"https://x/old": {"Sha256": "${sha256Hex('old')}", "Headers": {}}}`);
  const m = await Manifest.open(p, { mode: 'build', saveDelayMs: 10 });
  m.put('https://x/new', entry('new'));
  await m.flush();
  assert.deepEqual(await keys(p), ['https://x/new', 'https://x/old']);
  await m.close({ prune: false });
  assert.deepEqual(await keys(p), ['https://x/new', 'https://x/old']);
});

test('forceRefresh hides previous entries from get but not this run’s', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'assets.json');
  await writeFile(p, `{"https://x/a": {"Sha256": "${sha256Hex('a')}", "Headers": {}}}`);
  const m = await Manifest.open(p, { mode: 'build', forceRefresh: true });
  assert.equal(m.get('https://x/a'), undefined);
  m.put('https://x/a', entry('a2'));
  assert.equal(m.get('https://x/a')?.Sha256, sha256Hex('a2'));
  await m.close();
  assert.equal(decodeAssets(await readFile(p), p).get('https://x/a')?.Sha256, sha256Hex('a2'));
});

test('clean starts from an empty manifest: nothing reused, nothing carried into saves', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'assets.json');
  await writeFile(p, `{"https://x/a": {"Sha256": "${sha256Hex('a')}", "Headers": {}}}`);
  const m = await Manifest.open(p, { mode: 'build', clean: true, saveDelayMs: 5 });
  assert.equal(m.get('https://x/a'), undefined);
  m.put('https://x/b', entry('b'));
  await m.flush();
  assert.deepEqual(await keys(p), ['https://x/b']);
  await m.close({ prune: false });
  assert.deepEqual(await keys(p), ['https://x/b']);
});

test('a missing file is empty in build mode and written as {}', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'assets.json');
  const m = await Manifest.open(p, { mode: 'build' });
  assert.equal(m.get('https://x/a'), undefined);
  await m.close();
  assert.equal(await readFile(p, 'utf8'), '{}');
});

test('a missing file is a NOT_FOUND error naming it in offline and read modes', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'assets.json');
  await assert.rejects(Manifest.open(p, { mode: 'offline' }), isCode('NOT_FOUND', new RegExp(`${p} does not exist`)));
  await assert.rejects(Manifest.open(p, { mode: 'read' }), isCode('NOT_FOUND'));
});

test('a read-only manifest refuses put', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'assets.json');
  await writeFile(p, '{}');
  const m = await Manifest.open(p, { mode: 'offline' });
  assert.throws(() => m.put('k', entry('k')), isCode('INTERNAL'));
  await m.close();
});

test('a second writer gets a LOCKED error naming the file; the lock is released on close', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'assets.json');
  const first = await Manifest.open(p, { mode: 'build' });
  await assert.rejects(Manifest.open(p, { mode: 'build' }), isCode('LOCKED', new RegExp(`${p} is locked`)));
  await assert.rejects(Manifest.open(p, { mode: 'update' }), isCode('LOCKED'));
  const reader = await Manifest.open(p, { mode: 'read' }).catch((e: unknown) => e);
  assert.ok(reader instanceof HtvendError && reader.code === 'NOT_FOUND', 'readers take no lock');
  await first.close();
  const second = await Manifest.open(p, { mode: 'build' });
  await second.close();
  assert.deepEqual((await readdir(dir)).sort(), ['assets.json']);
});

test('a lock file left by the Go tool is reported as LOCKED, not overwritten', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'assets.json');
  await writeFile(`${p}.lock`, '');
  await assert.rejects(Manifest.open(p, { mode: 'build' }), isCode('LOCKED', /Go htvend/));
  await utimes(`${p}.lock`, 1, 1); // even when it looks stale
  await assert.rejects(Manifest.open(p, { mode: 'build', staleLockMs: 1000 }), isCode('LOCKED', /Go htvend/));
  assert.equal((await stat(`${p}.lock`)).isFile(), true);
});

test('a malformed manifest is an error naming file:line:column, and it is left untouched and unlocked', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'assets.json');
  const bad = '{\n  "a": {\n    "Sha256": 12\n';
  await writeFile(p, bad);
  await assert.rejects(Manifest.open(p, { mode: 'build' }), isCode('INPUT', new RegExp(`^${p}:4:1: `)));
  assert.equal(await readFile(p, 'utf8'), bad);
  const m = await Manifest.open(join(dir, 'x.json'), { mode: 'build' }); // unrelated file: fine
  await m.close();
  await assert.rejects(Manifest.open(p, { mode: 'build' }), isCode('INPUT')); // not LOCKED: the lock was released
});

test('an unchanged Go-written file is not rewritten by a build that requests the same entries', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'assets.json');
  const go = `{\n  "https://x/a?b=1\\u0026c=2": {\n    "Sha256": "${sha256Hex('a')}",\n    "Headers": {}\n  }\n}`;
  await writeFile(p, go);
  const before = await stat(p);
  await sleep(20);
  const m = await Manifest.open(p, { mode: 'build' });
  m.put('https://x/a?b=1&c=2', m.get('https://x/a?b=1&c=2')!);
  await m.close();
  assert.equal(await readFile(p, 'utf8'), go);
  assert.equal((await stat(p)).mtimeMs, before.mtimeMs);
});

test('update mode keeps every entry and replaces the one put', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'assets.json');
  await writeFile(p, `{"https://x/a": {"Sha256": "${sha256Hex('a')}", "Headers": {}}, "https://x/b": {"Sha256": "${sha256Hex('b')}", "Headers": {}}}`);
  const m = await Manifest.open(p, { mode: 'update' });
  m.put('https://x/b', entry('b2', { 'Content-Type': 'x' }));
  await m.close();
  const got = decodeAssets(await readFile(p), p);
  assert.equal(got.get('https://x/a')?.Sha256, sha256Hex('a'));
  assert.deepEqual(got.get('https://x/b'), entry('b2', { 'Content-Type': 'x' }));
});

test('an unwritable directory is an IO error naming the path and leaves no temp file', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(writeFileAtomic(join(dir, 'no', 'such', 'assets.json'), '{}'), isCode('IO', /no\/such\/assets\.json/));
  await mkdir(join(dir, 'ro'), { mode: 0o500 });
  if (process.getuid?.() !== 0) {
    await assert.rejects(writeFileAtomic(join(dir, 'ro', 'assets.json'), '{}'), isCode('IO'));
  }
  await writeFileAtomic(join(dir, 'ok.json'), '{"a":1}');
  assert.deepEqual((await readdir(dir)).sort(), ['ok.json', 'ro']);
  assert.deepEqual(await readdir(join(dir, 'ro')), []);
});

test('a reader polling during rapid incremental saves only ever sees complete, valid files', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'assets.json');
  await writeFile(p, '{}');
  const m = await Manifest.open(p, { mode: 'build', saveDelayMs: 0 });
  let writing = true;
  let reads = 0;
  let lastSize = 0;
  const reader = (async () => {
    while (writing) {
      const text = await readFile(p, 'utf8');
      const got = decodeAssets(text, p); // throws on a torn file
      assert.ok(got.size >= lastSize, 'entries never go backwards');
      lastSize = got.size;
      reads++;
      await new Promise((r) => setImmediate(r));
    }
  })();
  const pad = 'y'.repeat(4000);
  for (let i = 0; i < 300; i++) {
    m.put(`https://x/${i}`, entry(String(i), { 'X-Pad': pad }));
    if (i % 10 === 0) await sleep(1);
  }
  await m.close();
  writing = false;
  await reader;
  assert.ok(reads > 10, `only ${reads} reads`);
  assert.equal(decodeAssets(await readFile(p), p).size, 300);
  assert.deepEqual(await readdir(dir), ['assets.json'], 'no temp file left');
});

test('after SIGKILL mid-build the manifest is valid JSON holding what was recorded shortly before', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'assets.json');
  await writeFile(p, `{"https://x/previous": {"Sha256": "${sha256Hex('p')}", "Headers": {}}}`);
  const here = fileURLToPath(import.meta.url);
  const fixture = join(here, '..', 'fixtures', here.endsWith('.ts') ? 'put-loop.ts' : 'put-loop.js');
  const argv = here.endsWith('.ts') ? ['--import', 'tsx', fixture, p] : [fixture, p];
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  let count = 0;
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    const lines = d.trim().split('\n');
    count = Number(lines[lines.length - 1]);
  });
  const exited = new Promise((r) => child.on('exit', r));
  while (count < 100) await sleep(10);
  await sleep(300);
  const recordedBefore = count; // everything up to here must survive: >= 300 ms before the kill
  await sleep(300);
  child.kill('SIGKILL');
  await exited;
  const got = decodeAssets(await readFile(p), p); // throws if the file is not valid JSON
  assert.ok(got.has('https://x/previous'), 'previous entries survive a crash');
  for (let i = 0; i < recordedBefore; i++) assert.ok(got.has(`https://example.com/${i}`), `entry ${i} of ${recordedBefore} missing`);
});
