/** `htvend diff`: hand-made lockfiles with additions, removals, version bumps and content changes; exit codes; git:REV:PATH. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { run, runCli } from '../helpers/cli.js';

const sha = (c: string) => c.repeat(64);
const entry = (s: string, len?: number) => ({ Sha256: sha(s), Headers: len === undefined ? {} : { 'Content-Length': String(len) } });

const OLD = {
  'https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz': entry('1', 4100),
  'https://registry.npmjs.org/left-pad': entry('2'),
  'http://deb.debian.org/debian/pool/main/c/curl/curl_7.88.1-10_amd64.deb': entry('3', 300000),
  'https://registry.npmjs.org/same/-/same-2.0.0.tgz': entry('4', 10),
  'https://example.com/tool.tar.gz': entry('5', 2000),
  'https://example.com/unchanged.txt': entry('6', 1),
  'https://example.com/typed.json': { Sha256: sha('7'), Headers: { 'Content-Type': 'text/plain' } },
};
const NEW = {
  'https://registry.npmjs.org/left-pad/-/left-pad-1.3.1.tgz': entry('a', 4200),
  'https://registry.npmjs.org/left-pad': entry('b'),
  'https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz': entry('c', 540000),
  'https://registry.npmjs.org/same/-/same-2.0.0.tgz': entry('d', 11),
  'https://example.com/tool.tar.gz': entry('e', 2100),
  'https://example.com/unchanged.txt': entry('6', 1),
  'https://example.com/typed.json': { Sha256: sha('7'), Headers: { 'Content-Type': 'application/json' } },
};

async function files(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t, 'htvend-diff-');
  const oldF = join(dir, 'old.json');
  const newF = join(dir, 'new.json');
  await writeFile(oldF, JSON.stringify(OLD, null, 2));
  await writeFile(newF, JSON.stringify(NEW, null, 2));
  return { dir, oldF, newF };
}

test('diff groups changes by package: bump, addition, removal, same-version content change', async (t) => {
  const { oldF, newF } = await files(t);
  const r = await runCli('htvend', ['diff', oldF, newF]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /~ npm left-pad 1\.3\.0 → 1\.3\.1 \(4\.1 kB → 4\.2 kB\)/);
  assert.match(r.stdout, /\+ npm lodash 4\.17\.21 \(540 kB\)/);
  assert.match(r.stdout, /- deb curl 7\.88\.1-10 \(300 kB\)/);
  assert.match(r.stdout, /! npm same 2\.0\.0: same version, other bytes \(sha256 444444444444… → dddddddddddd…\)/);
  assert.match(r.stdout, /~ https:\/\/example\.com\/tool\.tar\.gz sha256 555555555555… → eeeeeeeeeeee… \(2\.0 kB → 2\.1 kB\)/);
  assert.match(r.stdout, /~ https:\/\/registry\.npmjs\.org\/left-pad sha256/, 'the packument is an index: listed by URL');
  assert.match(r.stdout, /~ https:\/\/example\.com\/typed\.json headers only: Content-Type/);
  assert.doesNotMatch(r.stdout, /unchanged\.txt/);
  assert.match(r.stdout, /2 added, 2 removed, 4 changed/);
});

test('diff --json gives the same facts for machines', async (t) => {
  const { oldF, newF } = await files(t);
  const r = await runCli('htvend', ['diff', '--json', oldF, newF]);
  assert.equal(r.code, 1, r.stderr);
  const d = JSON.parse(r.stdout) as { same: boolean; packages: { kind: string; name: string; oldVersions: string[]; newVersions: string[] }[] };
  assert.equal(d.same, false);
  const lp = d.packages.find((p) => p.name === 'left-pad')!;
  assert.deepEqual([lp.kind, lp.oldVersions, lp.newVersions], ['upgraded', ['1.3.0'], ['1.3.1']]);
  assert.deepEqual(d.packages.map((p) => `${p.kind}:${p.name}`).sort(), ['added:lodash', 'content-changed:same', 'removed:curl', 'upgraded:left-pad']);
});

test('diff exit codes: 0 for the same assets, 2 for a missing or malformed side', async (t) => {
  const { dir, oldF } = await files(t);
  const same = await runCli('htvend', ['diff', oldF, oldF]);
  assert.equal(same.code, 0, same.stderr);
  assert.match(same.stdout, /record the same 7 asset/);
  const missing = await runCli('htvend', ['diff', oldF, join(dir, 'nope.json')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nope\.json: cannot read/);
  await writeFile(join(dir, 'bad.json'), '{"x": {"Sha256": "zz"}}');
  const bad = await runCli('htvend', ['diff', join(dir, 'bad.json'), oldF]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /bad\.json: entry "x": invalid Sha256/);
});

test('diff reads git:REV:PATH through git', async (t) => {
  const { dir, oldF, newF } = await files(t);
  const git = (...a: string[]) => run(['git', '-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@example.com', ...a]);
  assert.equal((await git('init', '-q')).code, 0);
  await writeFile(join(dir, 'assets.json'), JSON.stringify(OLD));
  await git('add', 'assets.json');
  await git('commit', '-qm', 'old');
  await writeFile(join(dir, 'assets.json'), JSON.stringify(NEW));
  const r = await runCli('htvend', ['-C', dir, 'diff', 'git:HEAD:assets.json', 'assets.json']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /npm left-pad 1\.3\.0 → 1\.3\.1/);
  const none = await runCli('htvend', ['-C', dir, 'diff', 'git:HEAD:missing.json', newF]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /git:HEAD:missing\.json/);
  void oldF;
});
