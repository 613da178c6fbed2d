import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { compileRegexes, expandXdg, listFlag, makeLogger, parseListenAddr, reportError, writeGithubOutput } from '../../src/cli/common.js';
import { HtvendError, describeError } from '../../src/util/errors.js';
import { tempDir } from '../helpers/tmp.js';

function parseList(args: string[]): string[] {
  const l = listFlag(['A', 'B']);
  const c = new Command().exitOverride().addOption(new Option('--v <x>').argParser(l.parse).default(l.defaults));
  c.parse(args, { from: 'user' });
  return c.opts()['v'] as string[];
}

test('a list flag keeps its default list until used, and the first use replaces it', () => {
  assert.deepEqual(parseList([]), ['A', 'B']);
  assert.deepEqual(parseList(['--v', 'X']), ['X']);
  assert.deepEqual(parseList(['--v', 'X', '--v=Y']), ['X', 'Y']);
  assert.deepEqual(parseList(['--v=']), [], 'an empty value empties the list');
});

test('listen addresses: host:port, [v6]:port, :port means loopback, anything else is a usage error', () => {
  assert.deepEqual(parseListenAddr('127.0.0.1:0', '-l'), { host: '127.0.0.1', port: 0 });
  assert.deepEqual(parseListenAddr(':8080', '-l'), { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(parseListenAddr('[::1]:9', '-l'), { host: '::1', port: 9 });
  assert.throws(() => parseListenAddr('8080', '--listen-addr'), /--listen-addr "8080": want HOST:PORT/);
  assert.throws(() => parseListenAddr('127.0.0.1:70000', '-l'), HtvendError);
});

test('bad regexes are usage errors naming the flag', () => {
  assert.equal(compileRegexes(['^http.*/v2/$'], '--x')[0]!.test('https://r/v2/'), true);
  assert.throws(() => compileRegexes(['('], '--no-cache-response'), (e: HtvendError) => e.exitCode === 2 && /--no-cache-response "\("/.test(e.message));
});

test('${XDG_DATA_HOME} expands to the variable or ~/.local/share', () => {
  assert.equal(expandXdg('${XDG_DATA_HOME}/htvend/cache/blobs', { XDG_DATA_HOME: '/d' }), '/d/htvend/cache/blobs');
  assert.equal(expandXdg('${XDG_DATA_HOME}/htvend', { HOME: '/home/u' }), '/home/u/.local/share/htvend');
  assert.equal(expandXdg('/abs', {}), '/abs');
});

test('LOG_LEVEL picks the level, -v and -q win (also over a bad value), a bad value alone is a usage error', () => {
  assert.equal(makeLogger(false, { LOG_LEVEL: 'warn' }).level, 'warn');
  assert.equal(makeLogger(true, { LOG_LEVEL: 'warn' }).level, 'debug');
  assert.equal(makeLogger(true, { LOG_LEVEL: 'loud' }).level, 'debug');
  assert.equal(makeLogger(false, { LOG_LEVEL: 'loud' }, 'htvend', true).level, 'error');
  assert.equal(makeLogger(false, {}).level, 'info');
  assert.throws(() => makeLogger(false, { LOG_LEVEL: 'loud' }), (e: HtvendError) => e.exitCode === 2 && e.message === 'LOG_LEVEL="loud" is not a log level');
  assert.throws(() => makeLogger(true, {}, 'htvend', true), /-v\/--verbose and -q\/--quiet cannot be used together/);
});

test('--github-output-path appends sorted htvend_* counters as name=value lines', async (t) => {
  const f = join(await tempDir(t), 'out');
  await writeGithubOutput(f, { htvend_b: 2, other: 1, htvend_a: 0 });
  await writeGithubOutput(f, { htvend_a: 5 });
  assert.equal(await readFile(f, 'utf8'), 'htvend_a=0\nhtvend_b=2\nhtvend_a=5\n');
});

test('reportError prints PROG: error: and PROG: hint:, never the internal code, and returns the exit code', () => {
  let out = '';
  const code = reportError(new HtvendError('LOCKED', 'assets.json is locked', { hint: 'wait' }), undefined, (s) => (out += s));
  assert.equal(code, 1);
  assert.equal(out, 'htvend: error: assets.json is locked\nhtvend: hint: wait\n');
  out = '';
  assert.equal(reportError(new HtvendError('USAGE', 'x'), undefined, (s) => (out += s), { prog: 'build-img-with-proxy' }), 2);
  assert.equal(out, "build-img-with-proxy: error: x\nbuild-img-with-proxy: hint: run 'build-img-with-proxy --help' for usage and examples\n");
  out = '';
  const inner = new HtvendError('DIGEST_MISMATCH', 'blob sha256:ab: content does not match');
  reportError(new HtvendError('STORE', `replay failed: ${describeError(inner)}`), undefined, (s) => (out += s));
  assert.equal(out, 'htvend: error: replay failed: blob sha256:ab: content does not match\n');
});

test('describeError: no internal codes, errno names kept, and the cause of a bare "fetch failed"', () => {
  assert.equal(describeError(new HtvendError('UPSTREAM', 'GET https://x/: HTTP 500')), 'GET https://x/: HTTP 500');
  assert.equal(describeError(Object.assign(new Error('no such file'), { code: 'ENOENT' })), 'ENOENT: no such file');
  const cause = Object.assign(new Error('getaddrinfo ENOTFOUND nope.invalid'), { code: 'ENOTFOUND' });
  assert.equal(describeError(new TypeError('fetch failed', { cause })), 'fetch failed: getaddrinfo ENOTFOUND nope.invalid');
});
