/**
 * htvend's messages and exit codes, item by item (issue 18): one style (`htvend: error: …` +
 * `htvend: hint: …`), no internal error codes, flags checked before any work, the end-of-run
 * summaries, `--quiet`, LOG_LEVEL vs `-v`, export's destination, --github-output-path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cliCommand, run, type RunResult } from '../helpers/cli.js';
import { sendBody } from '../helpers/https-upstream.js';
import { project, type Project } from '../e2e/harness.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function htvend(p: Project, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return run([...cliCommand('htvend'), ...args], { env: { ...p.env, ...env }, cwd: p.dir });
}

/** An assets.json with one entry per [url, content]; blobs of `stored` are put in the blob dir. */
async function manifestWith(p: Project, entries: [string, string][], stored: string[] = []): Promise<void> {
  await mkdir(p.blobs, { recursive: true });
  const obj: Record<string, unknown> = {};
  for (const [url, content] of entries) obj[url] = { Sha256: sha(content), Headers: {} };
  await writeFile(join(p.dir, 'assets.json'), JSON.stringify(obj, null, 2));
  for (const c of stored) await writeFile(join(p.blobs, sha(c)), c);
}

test('an unknown flag: htvend: error + a hint pointing to the command help, exit 2', async (t) => {
  const p = await project(t, { upstream: false });
  const r = await htvend(p, ['build', '--nope']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, "htvend: error: unknown option '--nope'\nhtvend: hint: run 'htvend build --help' for usage and examples\n");
});

test('a usage error of our own also points to the command help', async (t) => {
  const p = await project(t, { upstream: false });
  const r = await htvend(p, ['verify', '--jobs', '0']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, `htvend: error: --jobs "0": want an integer from 1 to 256\nhtvend: hint: run 'htvend verify --help' for usage and examples\n`);
});

test('--tls-generate-if-missing without --tls-cert-pem is a usage error before anything starts', async (t) => {
  const p = await project(t, { upstream: false });
  const r = await htvend(p, ['build', '--blobs-dir', p.blobs, '--tls-generate-if-missing', '--', 'true']);
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr,
    'htvend: error: --tls-generate-if-missing needs --tls-cert-pem (and --tls-key-pem): there is nowhere to save the CA\n' +
      'htvend: hint: e.g. --tls-cert-pem ca.pem --tls-key-pem ca.key --tls-generate-if-missing\n',
  );
});

test("--cache-header 'bad header' is a usage error naming the value", async (t) => {
  const p = await project(t, { upstream: false });
  const r = await htvend(p, ['build', '--blobs-dir', p.blobs, '--cache-header', 'bad header', '--', 'true']);
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr,
    'htvend: error: --cache-header "bad header": not an HTTP header name\n' +
      'htvend: hint: a header name is one word of letters, digits and - (e.g. Content-Type), without the colon or a value\n',
  );
});

test('-v wins over a bad LOG_LEVEL; a bad LOG_LEVEL alone is a usage error with a hint; -q and -v together are refused', async (t) => {
  const p = await project(t, { upstream: false });
  const verbose = await htvend(p, ['-v', 'build', '--blobs-dir', p.blobs, '--', 'true'], { LOG_LEVEL: 'loud' });
  assert.equal(verbose.code, 0, verbose.stderr);
  assert.match(verbose.stderr, /^htvend: debug: /m);
  const bad = await htvend(p, ['build', '--blobs-dir', p.blobs, '--', 'true'], { LOG_LEVEL: 'loud' });
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'htvend: error: LOG_LEVEL="loud" is not a log level\nhtvend: hint: use debug, info, warn or error (or -v / -q, which override LOG_LEVEL)\n');
  const both = await htvend(p, ['-q', 'build', '-v', '--blobs-dir', p.blobs, '--', 'true']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /^htvend: error: -v\/--verbose and -q\/--quiet cannot be used together$/m);
});

test('--quiet prints nothing on success, and still the error on failure', async (t) => {
  const p = await project(t, { upstream: false });
  const ok = await htvend(p, ['-q', 'build', '--blobs-dir', p.blobs, '--', 'true']);
  assert.equal(ok.code, 0);
  assert.equal(ok.stderr, '');
  const failed = await htvend(p, ['offline', '-q', '--blobs-dir', p.blobs, '-m', 'none.json', '--', 'true']);
  assert.equal(failed.code, 1);
  assert.equal(failed.stderr, 'htvend: error: none.json does not exist\nhtvend: hint: record it first with `htvend build`, or pass -m/--manifest\n');
});

test('a port in use: exit 1, the address named once, and a hint', async (t) => {
  const p = await project(t, { upstream: false });
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  t.after(() => busy.close());
  const addr = `127.0.0.1:${(busy.address() as AddressInfo).port}`;
  const r = await htvend(p, ['build', '--blobs-dir', p.blobs, '-l', addr, '--', 'true']);
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr,
    `htvend: error: --listen-addr ${addr}: cannot listen (address already in use)\n` + `htvend: hint: another process is using ${addr}; pick another port, or --listen-addr 127.0.0.1:0 for a free one\n`,
  );
});

test('a UTF-8 BOM at the start of assets.json is named as such', async (t) => {
  const p = await project(t, { upstream: false });
  await writeFile(join(p.dir, 'assets.json'), '\uFEFF{}');
  const r = await htvend(p, ['verify', '--blobs-dir', p.blobs]);
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr,
    './assets.json'.replace(/^/, 'htvend: error: ') +
      ':1:1: the file starts with a UTF-8 byte order mark (BOM, bytes EF BB BF), which JSON does not allow\n' +
      "htvend: hint: save it without the BOM, e.g. sed -i '1s/^\\xEF\\xBB\\xBF//' ./assets.json; it was not modified\n",
  );
});

test('export without any --dest.* is a usage error; a --dest.blobs-dir that is a file is named in the hint', async (t) => {
  const p = await project(t, { upstream: false });
  await manifestWith(p, [['https://h.test/a', 'a']], ['a']);
  const none = await htvend(p, ['export', '--blobs-dir', p.blobs]);
  assert.equal(none.code, 2);
  assert.equal(
    none.stderr,
    'htvend: error: export needs a destination: no --dest.* flag given\nhtvend: hint: e.g. htvend export --dest.blobs-dir DIR; run `htvend export --help` for the registry and s3 destinations\n',
  );
  const same = await htvend(p, ['export', '--blobs-dir', p.blobs, '--dest.blobs-dir', p.blobs]);
  assert.equal(same.code, 2);
  assert.match(same.stderr, /^htvend: error: export: the destination is the source store itself \(filesystem .*blobs\)$/m);
  await writeFile(join(p.dir, 'file'), 'x');
  const file = await htvend(p, ['export', '--blobs-dir', p.blobs, '--dest.blobs-dir', 'file']);
  assert.equal(file.code, 1);
  assert.match(file.stderr, /^htvend: error: blob directory \/.*\/file is not usable: EEXIST: /m);
  assert.match(file.stderr, /^htvend: hint: check --dest\.blobs-dir and its permissions$/m);
});

test('verify problems: no internal codes, and a hint to --fetch; a failed --fetch names the cause without UPSTREAM:', async (t) => {
  const p = await project(t, { upstream: false });
  await manifestWith(p, [['https://127.0.0.1:1/gone', 'gone'], ['https://127.0.0.1:1/bad', 'bad']]);
  await writeFile(join(p.blobs, sha('bad')), 'not bad');
  const r = await htvend(p, ['verify', '--blobs-dir', p.blobs]);
  assert.equal(r.code, 1);
  assert.doesNotMatch(r.stderr, /DIGEST_MISMATCH|NOT_FOUND|STORE:|IO:/);
  assert.match(r.stderr, /^htvend: error: verify: 2 blob\(s\), 0 ok, 1 missing, 1 corrupt; 2 problem\(s\)$/m);
  assert.match(r.stderr, /^htvend: hint: run `htvend verify --fetch` to download missing or corrupt blobs again \(`--repair` also accepts changed upstream content\)$/m);
  const f = await htvend(p, ['verify', '--fetch', '--blobs-dir', p.blobs]);
  assert.equal(f.code, 1);
  assert.doesNotMatch(f.stderr, /UPSTREAM:|DIGEST_MISMATCH/);
  assert.match(f.stderr, /ECONNREFUSED/, 'the reason a download failed is named');
  assert.match(f.stderr, /^htvend: hint: the blobs could not be downloaded again: /m);
});

test('build -- false keeps the previous entries and says so; build -- true warns when assets.json shrinks by more than half', async (t) => {
  const p = await project(t, { upstream: false });
  const urls = ['https://h.test/1', 'https://h.test/2', 'https://h.test/3'];
  await manifestWith(
    p,
    urls.map((u) => [u, u]),
    urls,
  );
  const failed = await htvend(p, ['build', '--blobs-dir', p.blobs, '--', 'false']);
  assert.equal(failed.code, 1);
  assert.equal(
    failed.stderr,
    'htvend: build: child exited 1; ./assets.json: 3 asset(s) (0 recorded, 0 reused, 0 dropped, 3 kept from the previous file)\n' +
      'htvend: warning: the command failed: the 3 previous entries it did not request were kept in ./assets.json, so a broken build does not shrink it\n',
  );
  const empty = await htvend(p, ['build', '--blobs-dir', p.blobs, '--', 'true']);
  assert.equal(empty.code, 0);
  assert.equal(
    empty.stderr,
    'htvend: build: child exited 0; ./assets.json: 0 asset(s) (0 recorded, 0 reused, 3 dropped)\n' +
      'htvend: warning: ./assets.json shrank by more than half, from 3 to 0 asset(s): this run requested only 0 of them\n' +
      'htvend: hint: if the command did not run the whole build, restore ./assets.json (e.g. git checkout -- ./assets.json) and run it again\n',
  );
});

test('build summary counts recorded and reused, and --github-output-path (relative to -C) gets every counter', async (t) => {
  const p = await project(t);
  p.up.route('/a', sendBody('a'));
  p.up.route('/b', sendBody('b'));
  const fetch = (paths: string[]) => ['sh', '-c', paths.map((x) => `curl -fsS -o /dev/null ${p.up.https}${x}`).join(' && ')];
  const first = await run([...cliCommand('htvend'), '-C', p.dir, 'build', '--blobs-dir', p.blobs, '--', ...fetch(['/a'])], { env: p.env });
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /^htvend: build: child exited 0; \.\/assets\.json: 1 asset\(s\) \(1 recorded, 0 reused, 0 dropped\)$/m);
  await mkdir(join(p.dir, 'sub'));
  const second = await run([...cliCommand('htvend'), '-C', p.dir, '--github-output-path', 'gh.txt', 'build', '--blobs-dir', p.blobs, '--', ...fetch(['/a', '/b'])], {
    env: p.env,
    cwd: join(p.dir, 'sub'),
  });
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /^htvend: build: child exited 0; \.\/assets\.json: 2 asset\(s\) \(1 recorded, 1 reused, 0 dropped\)$/m);
  const gh = await readFile(join(p.dir, 'gh.txt'), 'utf8');
  for (const line of [
    'htvend_assets_dropped_total=0',
    'htvend_assets_kept_total=0',
    'htvend_assets_recorded_total=1',
    'htvend_assets_reused_total=1',
    'htvend_assets_total=2',
    'htvend_child_exit_code=0',
    'htvend_missing_asset_total=0',
    'htvend_missing_blob_total=0',
    'htvend_recorded_total=1',
    'htvend_replayed_total=1',
    'htvend_integrity_failed_total=0',
  ]) {
    assert.ok(gh.split('\n').includes(line), `${line} in\n${gh}`);
  }
  const v = await run([...cliCommand('htvend'), '-C', p.dir, '--github-output-path', 'gh-verify.txt', 'verify', '--blobs-dir', p.blobs], { env: p.env });
  assert.equal(v.code, 0, v.stderr);
  assert.equal(
    await readFile(join(p.dir, 'gh-verify.txt'), 'utf8'),
    'htvend_assets_repaired_total=0\nhtvend_blobs_corrupt_total=0\nhtvend_blobs_fetched_total=0\nhtvend_blobs_missing_total=0\nhtvend_blobs_ok_total=2\nhtvend_blobs_total=2\nhtvend_problems_total=0\n',
  );
});

test('offline: a corrupt blob is reported as corrupt, not as replayed nor as missing from assets.json', async (t) => {
  const p = await project(t, { upstream: false });
  await manifestWith(p, [['https://h.test/c', 'right bytes']]);
  await writeFile(join(p.blobs, sha('right bytes')), 'wrong bytes');
  const r = await htvend(p, ['offline', '--blobs-dir', p.blobs, '--', 'curl', '-fsS', '-o', '/dev/null', 'https://h.test/c']);
  assert.notEqual(r.code, 0, 'curl sees a cut transfer');
  assert.doesNotMatch(r.stderr, /DIGEST_MISMATCH|not in assets\.json: /);
  assert.match(r.stderr, /^htvend: error: replay of https:\/\/h\.test\/c cut off, the blob is corrupt: blob [0-9a-f]{64} in filesystem store .*: content does not match sha256 [0-9a-f]{64} \(got sha256 [0-9a-f]{64}\)$/m);
  assert.match(r.stderr, /^htvend: offline: child exited \d+; 0 response\(s\) replayed, 0 URL\(s\) not in assets\.json, 0 with their blob missing, 1 with a corrupt blob$/m);
  assert.match(r.stderr, /^htvend: warning: corrupt blob in filesystem store .*: https:\/\/h\.test\/c$/m);
});
