/**
 * htvend's own behaviour end to end: exit codes, signal forwarding, --daemon, the offline
 * summary and --github-output-path, bad input (unknown flag, malformed assets.json, port in
 * use, missing blob), Go-written assets.json compatibility, SIGKILL durability, verify/export.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir, stat, readdir, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join, dirname } from 'node:path';
import { sendBody } from '../helpers/https-upstream.js';
import { cliCommand, run, runCli } from '../helpers/cli.js';
import { build, offlineUnshared, project, canUnshare, q, which } from './harness.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Resolves with the first stdout text matching `re` (or rejects after `ms`). */
function waitForOutput(stream: NodeJS.ReadableStream, re: RegExp, ms = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}; got ${JSON.stringify(buf)}`)), ms);
    stream.on('data', (d: Buffer) => {
      buf += d.toString();
      if (re.test(buf)) {
        clearTimeout(timer);
        resolve(buf);
      }
    });
  });
}

test("the child's exit code becomes htvend's exit code", async (t) => {
  const p = await project(t, { upstream: false });
  const r = await build(p, ['--', 'sh', '-c', 'exit 3']);
  assert.equal(r.code, 3, r.stderr);
  const missing = await build(p, ['--', 'no-such-command-htvend']);
  assert.equal(missing.code, 127);
  assert.match(missing.stderr, /"no-such-command-htvend": command not found/);
});

test('SIGTERM to htvend is forwarded to the child, whose exit code is returned', async (t) => {
  const p = await project(t, { upstream: false });
  const child = spawn(cliCommand('htvend')[0]!, [...cliCommand('htvend').slice(1), '-C', p.dir, 'build', '--blobs-dir', p.blobs, '--', 'sh', '-c', 'trap "exit 42" TERM; echo ready; while :; do sleep 0.05; done'], {
    env: p.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  await waitForOutput(child.stdout!, /ready/);
  child.kill('SIGTERM');
  const code = await new Promise((r) => child.on('exit', (c) => r(c)));
  assert.equal(code, 42);
});

test('apt reads the CA from the APT_CONFIG htvend writes', { skip: !which('apt-config') }, async (t) => {
  const p = await project(t, { upstream: false });
  const r = await build(p, ['--', 'sh', '-c', 'apt-config dump Acquire::https::CaInfo; echo "ca=$SSL_CERT_FILE"']);
  assert.equal(r.code, 0, r.stderr);
  const ca = /^ca=(.*)$/m.exec(r.stdout)![1]!;
  assert.match(r.stdout, new RegExp(`Acquire::https::CaInfo "${ca.replace(/[.]/g, '\\.')}";`));
});

test('the child gets the proxy, blank NO_PROXY, CA vars, truststore and JAVA_TOOL_OPTIONS; the temp dir is gone at exit', async (t) => {
  const p = await project(t, { upstream: false });
  const r = await build(p, ['-t', 'WORKDIR', '--', 'sh', '-c', 'env; test -d "$WORKDIR" && test -r "$JKS_KEYSTORE_FILE" && grep -q BEGIN "$SSL_CERT_FILE"'], {
    env: { NO_PROXY: 'example.com', CURL_CA_BUNDLE: '/etc/ssl/certs/ca-certificates.crt', JAVA_TOOL_OPTIONS: '-Xss1m' },
  });
  assert.equal(r.code, 0, r.stderr);
  const env = Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  assert.match(env['HTTPS_PROXY']!, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(env['http_proxy'], env['HTTPS_PROXY']);
  assert.equal(env['NO_PROXY'], '');
  assert.equal(env['no_proxy'], '');
  assert.equal(env['CURL_CA_BUNDLE'], env['SSL_CERT_FILE']);
  assert.equal(env['NODE_EXTRA_CA_CERTS'], env['SSL_CERT_FILE']);
  assert.match(env['JAVA_TOOL_OPTIONS']!, /^-Xss1m -Dhttp\.proxyHost=127\.0\.0\.1 .*-Djavax\.net\.ssl\.trustStoreType=PKCS12$/);
  assert.equal(env['WGETRC'], join(env['SSL_CERT_FILE']!, '..', 'wgetrc'));
  const privateDir = join(env['SSL_CERT_FILE']!, '..');
  assert.equal(join(env['WORKDIR']!, '..', '..'), privateDir);
  await assert.rejects(stat(privateDir), /ENOENT/, 'private temp dir removed at exit');
});

test('--daemon prints shell-quoted export lines, serves until SIGTERM, and records what clients fetched', async (t) => {
  const p = await project(t);
  p.up.route('/d.txt', sendBody('daemon body'));
  const child = spawn(cliCommand('htvend')[0]!, [...cliCommand('htvend').slice(1), '-C', p.dir, 'build', '--blobs-dir', p.blobs, '-d'], { env: p.env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  const out = await waitForOutput(child.stdout!, /export JAVA_TOOL_OPTIONS=.*\n/);
  assert.match(out, /^export HTTP_PROXY='http:\/\/127\.0\.0\.1:\d+'$/m);
  assert.match(out, /^export NO_PROXY=''$/m);
  const r = await run(['sh', '-c', `${out}\ncurl -fsS ${q(p.up.https + '/d.txt')}`], { env: { PATH: process.env['PATH'] } });
  assert.equal(r.stdout, 'daemon body', r.stderr);
  child.kill('SIGTERM');
  assert.equal(await new Promise((res) => child.on('exit', (c) => res(c))), 0);
  const assets = JSON.parse(await readFile(join(p.dir, 'assets.json'), 'utf8'));
  assert.equal(assets[`${p.up.https}/d.txt`].Sha256, sha('daemon body'));
  const certFile = /^export SSL_CERT_FILE='(.*)'$/m.exec(out)![1]!;
  await assert.rejects(stat(certFile), /ENOENT/);
});

test('offline: an unrecorded URL is a 404, listed at exit, and counted in --github-output-path', { skip: !canUnshare }, async (t) => {
  const p = await project(t);
  p.up.route('/a', sendBody('A'));
  assert.equal((await build(p, ['--', 'curl', '-fsS', '-o', 'a', `${p.up.https}/a`])).code, 0);
  const before = await readFile(join(p.dir, 'assets.json'));
  const gh = join(p.dir, 'gh-output');
  await writeFile(gh, 'earlier=1\n');
  const r = await offlineUnshared(p, [
    '--github-output-path',
    gh,
    '--',
    'sh',
    '-c',
    `curl -fsS -o /dev/null ${q(p.up.https + '/v2/')} && curl -fsS -o a2 ${q(p.up.https + '/a')} && curl -fsS -o b ${q(p.up.https + '/not-recorded?x=1')}`,
  ]);
  assert.equal(r.code, 22, 'curl -f exit status for the 404 passes through');
  assert.ok(r.stderr.includes(`htvend: warning: not in assets.json: ${p.up.https}/not-recorded?x=1\n`), r.stderr);
  assert.ok(r.stderr.includes('htvend: offline: child exited 22; 1 response(s) replayed, 1 URL(s) not in assets.json, 0 with their blob missing, 0 with a corrupt blob\n'), r.stderr);
  assert.match(r.stderr, /^htvend: warning: 1 requested URL\(s\) not in assets\.json \(htvend_missing_asset_total=1\)\nhtvend: hint: record them with `htvend build`$/m);
  const lines = (await readFile(gh, 'utf8')).split('\n');
  assert.equal(lines[0], 'earlier=1');
  assert.ok(lines.includes('htvend_missing_asset_total=1'), lines.join('\n'));
  assert.ok(lines.includes('htvend_replayed_total=1'), lines.join('\n'));
  assert.ok(lines.includes('htvend_dummy_ok_total=1'), 'the registry /v2/ probe got the dummy 200');
  assert.deepEqual(await readFile(join(p.dir, 'assets.json')), before, 'offline never writes assets.json');
});

test('an unknown flag is a usage error naming it (exit 2), and --help works on every command', async () => {
  const r = await runCli('htvend', ['build', '--no-such-flag', '--', 'true']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown option '--no-such-flag'/);
  for (const c of ['build', 'offline', 'verify', 'export']) {
    const h = await runCli('htvend', [c, '--help']);
    assert.equal(h.code, 0, c);
    assert.match(h.stdout, new RegExp(`Usage: htvend ${c}`));
  }
  const none = await runCli('htvend', []);
  assert.equal(none.code, 2);
  const both = await runCli('htvend', ['build', '-d', '--', 'true']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--daemon runs no command, but one was given: true/);
  const badAddr = await runCli('htvend', ['offline', '-l', 'nonsense', '--', 'true']);
  assert.equal(badAddr.code, 2);
  assert.match(badAddr.stderr, /--listen-addr "nonsense"/);
});

test('a malformed assets.json is an error naming file and line; nothing is overwritten', async (t) => {
  const p = await project(t, { upstream: false });
  const bad = '{\n  "https://x/a": {"Sha256": "abc", "Headers": {}},\n  oops\n}';
  await writeFile(join(p.dir, 'assets.json'), bad);
  for (const mode of ['build', 'offline']) {
    const r = await runCli('htvend', ['-C', p.dir, mode, '--blobs-dir', p.blobs, '--', 'true'], { env: p.env });
    assert.notEqual(r.code, 0, mode);
    assert.match(r.stderr, /assets\.json:\d+/, r.stderr);
    assert.equal(await readFile(join(p.dir, 'assets.json'), 'utf8'), bad);
  }
});

test('a listen port in use is a clear error naming the address', async (t) => {
  const p = await project(t, { upstream: false });
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.after(() => blocker.close());
  const addr = `127.0.0.1:${(blocker.address() as AddressInfo).port}`;
  const r = await build(p, ['-l', addr, '--', 'true']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`--listen-addr ${addr}.*address already in use`));
  await assert.rejects(stat(join(p.dir, 'assets.json')), /ENOENT/, 'no assets.json written by a failed start');
});

test('offline with a blob missing from the store: 404, a warning naming the URL, assets.json unchanged', { skip: !canUnshare }, async (t) => {
  const p = await project(t, { upstream: false });
  const text = `{\n  "https://h.test/x": {\n    "Sha256": "${sha('never stored')}",\n    "Headers": {}\n  }\n}`;
  await writeFile(join(p.dir, 'assets.json'), text);
  const r = await offlineUnshared(p, ['--', 'curl', '-fsS', '-o', 'x', 'https://h.test/x']);
  assert.equal(r.code, 22);
  assert.match(r.stderr, /^htvend: warning: missing blob for URL: https:\/\/h\.test\/x \(blob [0-9a-f]{64} is listed in assets\.json but not in filesystem store .*\)$/m);
  assert.match(r.stderr, /^htvend: offline: child exited 22; 0 response\(s\) replayed, 0 URL\(s\) not in assets\.json, 1 with their blob missing, 0 with a corrupt blob$/m);
  assert.doesNotMatch(r.stderr, /not in assets\.json: https/, 'a URL that is in assets.json is not reported as missing from it');
  assert.match(r.stderr, /^htvend: warning: 1 URL\(s\) in assets\.json whose blob is missing from filesystem store .*\nhtvend: hint: run `htvend verify --fetch` where the network is reachable/m);
  assert.equal(await readFile(join(p.dir, 'assets.json'), 'utf8'), text);
});

test('a Go-written assets.json (\\u0026 in a key, empty Headers) replays offline and survives a build byte-identical', { skip: !canUnshare }, async (t) => {
  const p = await project(t);
  const one = 'first asset body\n';
  const two = Buffer.from([0, 1, 2, 255]);
  p.up.route('/dl', sendBody(one));
  p.up.route('/b.bin', sendBody(two));
  await mkdir(p.blobs, { recursive: true });
  await writeFile(join(p.blobs, sha(one)), one);
  await writeFile(join(p.blobs, sha(two)), two);
  const k1 = `${p.up.https}/dl?a=1&b=2`;
  const k2 = `${p.up.https}/b.bin`;
  // Written the way Go's encoding/json does: sorted keys, 2-space indent, & escaped, no final newline.
  const goText = `{\n  ${JSON.stringify(k2)}: {\n    "Sha256": "${sha(two)}",\n    "Headers": {\n      "Content-Type": "application/octet-stream"\n    }\n  },\n  ${JSON.stringify(k1).replace('&', '\\u0026')}: {\n    "Sha256": "${sha(one)}",\n    "Headers": {}\n  }\n}`;
  await writeFile(join(p.dir, 'assets.json'), goText);
  const fetchBoth = ['sh', '-c', `curl -fsS -o one ${q(k1)} && curl -fsS -o two ${q(k2)}`];

  const o = await offlineUnshared(p, ['--', ...fetchBoth]);
  assert.equal(o.code, 0, o.stderr);
  assert.equal(await readFile(join(p.dir, 'one'), 'utf8'), one);
  assert.deepEqual(await readFile(join(p.dir, 'two')), two);

  const b = await build(p, ['--', ...fetchBoth]);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(await readFile(join(p.dir, 'assets.json'), 'utf8'), goText);
  assert.equal(p.up.hits('/dl?a=1&b=2') + p.up.hits('/b.bin'), 0, 'recorded entries are reused, not re-downloaded');
});

test('SIGKILL during a build leaves a valid assets.json holding what was recorded', async (t) => {
  const p = await project(t);
  p.up.route('/k1', sendBody('one'));
  p.up.route('/k2', sendBody('two'));
  const script = `curl -fsS -o /dev/null ${q(p.up.https + '/k1')} && curl -fsS -o /dev/null ${q(p.up.https + '/k2')} && echo "fetched $SSL_CERT_FILE" && sleep 60`;
  const child = spawn(cliCommand('htvend')[0]!, [...cliCommand('htvend').slice(1), '-C', p.dir, 'build', '--blobs-dir', p.blobs, '--', 'sh', '-c', script], {
    env: p.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  t.after(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  });
  const fetched = await waitForOutput(child.stdout!, /fetched (.*)\n/);
  // SIGKILL leaves htvend's private dir behind (nothing can run); clean it up for it.
  const privateDir = dirname(/fetched (.*)\n/.exec(fetched)![1]!);
  t.after(() => rm(privateDir, { recursive: true, force: true }));
  const file = join(p.dir, 'assets.json');
  // Incremental saves are debounced; wait until both entries are on disk, then kill -9 everything.
  for (let i = 0; i < 100; i++) {
    const text = await readFile(file, 'utf8').catch(() => '');
    if (text.includes('/k2')) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  process.kill(-child.pid!, 'SIGKILL');
  await new Promise((r) => child.on('exit', r));
  const assets = JSON.parse(await readFile(file, 'utf8'));
  assert.deepEqual(Object.keys(assets).sort(), [`${p.up.https}/k1`, `${p.up.https}/k2`]);
  assert.equal(assets[`${p.up.https}/k2`].Sha256, sha('two'));
});

test('verify checks every blob and export copies them to another filesystem store', async (t) => {
  const p = await project(t);
  p.up.route('/v', sendBody('verify me'));
  assert.equal((await build(p, ['--', 'curl', '-fsS', '-o', '/dev/null', `${p.up.https}/v`])).code, 0);
  const v = await runCli('htvend', ['-C', p.dir, 'verify', '--blobs-dir', p.blobs], { env: p.env });
  assert.equal(v.code, 0, v.stderr);
  const dest = join(p.dir, 'exported');
  const e = await runCli('htvend', ['-C', p.dir, 'export', '--blobs-dir', p.blobs, '--dest.blobs-backend', 'filesystem', '--dest.blobs-dir', dest], { env: p.env });
  assert.equal(e.code, 0, e.stderr);
  assert.deepEqual(await readdir(dest).then((l) => l.filter((n) => /^[0-9a-f]{64}$/.test(n))), [sha('verify me')]);
  // verify --fetch restores a blob lost from the store (through htvend's own upstream client).
  const restoreDir = join(p.dir, 'restore-blobs');
  const f = await runCli('htvend', ['-C', p.dir, 'verify', '--fetch', '--blobs-dir', restoreDir], { env: p.env });
  assert.equal(f.code, 0, f.stderr);
  assert.equal(await readFile(join(restoreDir, sha('verify me')), 'utf8'), 'verify me');
  // A missing blob makes verify fail, naming it.
  const gone = await runCli('htvend', ['-C', p.dir, 'verify', '--blobs-dir', join(p.dir, 'empty-blobs')], { env: p.env });
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, new RegExp(sha('verify me')));
});

test('no command opens $SHELL with the proxy environment and a prompt naming the mode', async (t) => {
  const p = await project(t, { upstream: false });
  const r = await run([...cliCommand('htvend'), '-C', p.dir, 'offline', '--blobs-dir', p.blobs], {
    env: { ...p.env, SHELL: '/bin/sh' },
    input: 'echo "proxy=$HTTPS_PROXY ps1=$PS1"\nexit 5\n',
  });
  // offline needs an assets.json: without one it is a clear NOT_FOUND error instead.
  assert.equal(r.code, 1);
  assert.match(r.stderr, /assets\.json does not exist/);
  await writeFile(join(p.dir, 'assets.json'), '{}');
  const s = await run([...cliCommand('htvend'), '-C', p.dir, 'offline', '--blobs-dir', p.blobs], {
    env: { ...p.env, SHELL: '/bin/sh' },
    input: 'echo "proxy=$HTTPS_PROXY ps1=$PS1"\nexit 5\n',
  });
  assert.equal(s.code, 5, s.stderr);
  assert.match(s.stdout, /^proxy=http:\/\/127\.0\.0\.1:\d+ ps1=\(htvend offline\) \$ $/m);
});

test('--tls-cert-pem/--tls-key-pem with --tls-generate-if-missing: the CA is created once, reused, and given to the child', async (t) => {
  const p = await project(t, { upstream: false });
  const ca = join(p.dir, 'ca', 'ca.pem');
  const key = join(p.dir, 'ca', 'ca.key');
  const flags = ['--tls-cert-pem', ca, '--tls-key-pem', key];
  const first = await build(p, [...flags, '--tls-generate-if-missing', '--', 'sh', '-c', `cmp "$SSL_CERT_FILE" ${q(ca)}`]);
  assert.equal(first.code, 0, first.stderr);
  assert.equal((await stat(key)).mode & 0o777, 0o600);
  const pem = await readFile(ca, 'utf8');
  const again = await build(p, [...flags, '--', 'sh', '-c', `cmp "$SSL_CERT_FILE" ${q(ca)}`]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(await readFile(ca, 'utf8'), pem, 'the saved CA is reused, not regenerated');
  const missing = await build(p, ['--tls-cert-pem', join(p.dir, 'nope.pem'), '--tls-key-pem', join(p.dir, 'nope.key'), '--', 'true']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope\.pem.*do not exist/);
  assert.match(missing.stderr, /--tls-generate-if-missing/);
});

test('a second build on the same assets.json gets a clear LOCKED error; options after the command word pass through', async (t) => {
  const p = await project(t, { upstream: false });
  const holder = spawn(cliCommand('htvend')[0]!, [...cliCommand('htvend').slice(1), '-C', p.dir, 'build', '--blobs-dir', p.blobs, '-d'], { env: p.env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => holder.kill('SIGKILL'));
  await waitForOutput(holder.stdout!, /export HTTP_PROXY=/);
  const second = await build(p, ['--', 'true']);
  assert.equal(second.code, 1);
  assert.match(second.stderr, /assets\.json/);
  assert.match(second.stderr, /lock/i);
  holder.kill('SIGTERM');
  await new Promise((r) => holder.on('exit', r));
  // Without `--`, the child's own options after its first word are not htvend's.
  const r = await build(p, ['sh', '-c', 'echo "$0 $1"', 'x', '-v']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'x -v\n');
});

test('build: --cache-header replaces the recorded header list; --no-cache-response URLs pass through unrecorded', async (t) => {
  const p = await project(t);
  p.up.route('/h', sendBody('h', { 'x-custom': 'yes', 'content-type': 'text/x-h' }));
  p.up.route('/token', sendBody('{"token":"t"}'));
  const r = await build(p, ['--cache-header', 'x-custom', '--', 'sh', '-c', `curl -fsS -o /dev/null ${q(p.up.https + '/h')} && curl -fsS -o /dev/null ${q(p.up.https + '/token?scope=x')}`]);
  assert.equal(r.code, 0, r.stderr);
  const assets = JSON.parse(await readFile(join(p.dir, 'assets.json'), 'utf8'));
  assert.deepEqual(Object.keys(assets), [`${p.up.https}/h`]);
  assert.deepEqual(assets[`${p.up.https}/h`].Headers, { 'X-Custom': 'yes' });
  assert.equal(p.up.hits('/token?scope=x'), 1);
});

test('signals during start-up: the first aborts it, a second one exits at once even if a step is stuck', async (t) => {
  const p = await project(t, { upstream: false });
  // Reading a FIFO nobody writes blocks in open(): a start-up step no AbortSignal reaches.
  const fifo = join(p.dir, 'ca.pem');
  execFileSync('mkfifo', [fifo]);
  await writeFile(join(p.dir, 'ca.key'), '');
  const child = spawn(cliCommand('htvend')[0]!, [...cliCommand('htvend').slice(1), '-C', p.dir, 'build', '--blobs-dir', p.blobs, '--tls-cert-pem', fifo, '--tls-key-pem', join(p.dir, 'ca.key'), '--', 'true'], {
    env: p.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | string | null>((r) => child.on('exit', (c, sig) => r(c ?? sig)));
  // The manifest lock is taken just before the session starts; then give it a moment to block.
  for (let i = 0; i < 300 && !(await stat(join(p.dir, 'assets.json.lock')).catch(() => undefined)); i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 500));
  child.kill('SIGTERM');
  const first = await Promise.race([exited, new Promise((r) => setTimeout(() => r('running'), 1000))]);
  if (first === 'running') child.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('hung'), 10_000))]);
  // Either the start-up unwound (143) or htvend re-raised the signal on itself (shells show 143 too).
  assert.ok(code === 143 || code === 'SIGTERM', `${String(code)}: ${stderr}`);
});
