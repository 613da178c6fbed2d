import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseRule, RULES } from '../../src/proxy/rules.js';
import { parseRange } from '../../src/proxy/range.js';
import { acceptsCoding } from '../../src/proxy/encoding.js';
import { canonicalHeaderName, pickRecordedHeaders } from '../../src/proxy/headers.js';
import { parseListenAddr } from '../../src/proxy/server.js';
import type { RequestFacts } from '../../src/proxy/types.js';
import type { Digest } from '../../src/util/digest.js';

const entry = { Sha256: 'a'.repeat(64) as Digest, Headers: {} };
const base: RequestFacts = { mode: 'build', method: 'GET', url: 'https://x.test/a', key: 'https://x.test/a', noCache: false, dummyOk: false };

test('rules pick the documented action for each situation and explain themselves', () => {
  const cases: Array<[Partial<RequestFacts>, string]> = [
    [{ mode: 'offline', dummyOk: true, method: 'POST' }, 'dummy-ok'],
    [{ noCache: true, entry, blobSize: 1 }, 'no-cache'],
    [{ mode: 'offline', noCache: true }, 'no-cache-offline'],
    [{ method: 'POST' }, 'other-method'],
    [{ mode: 'offline', method: 'DELETE' }, 'other-method-offline'],
    [{ entry, blobSize: 3 }, 'replay'],
    [{ mode: 'offline', method: 'HEAD', entry, blobSize: 3 }, 'replay'],
    [{ entry }, 'record'],
    [{ method: 'HEAD' }, 'record'],
    [{ mode: 'offline', entry }, 'missing'],
    [{ mode: 'offline' }, 'missing'],
  ];
  for (const [over, name] of cases) {
    const f = { ...base, ...over };
    const rule = chooseRule(f);
    assert.equal(rule.name, name, JSON.stringify(over));
    assert.ok(rule.explain(f).includes(f.key), `${name} explains with the URL`);
  }
  assert.equal(new Set(RULES.map((r) => r.name)).size, RULES.length);
});

test('parseRange handles open, closed, suffix, clamped, unsatisfiable and ignored ranges', () => {
  assert.deepEqual(parseRange('bytes=0-9', 100), { kind: 'range', start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=90-', 100), { kind: 'range', start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=90-500', 100), { kind: 'range', start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-10', 100), { kind: 'range', start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-500', 100), { kind: 'range', start: 0, end: 99 });
  assert.deepEqual(parseRange('bytes=100-', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=-0', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=0-', 0), { kind: 'unsatisfiable' });
  for (const h of [undefined, 'bytes=5-1', 'bytes=0-1,4-5', 'items=0-1', 'bytes=-']) assert.deepEqual(parseRange(h, 100), { kind: 'none' }, String(h));
});

test('acceptsCoding follows q-values and treats a missing header as identity only', () => {
  assert.equal(acceptsCoding('gzip, deflate, br', 'gzip'), true);
  assert.equal(acceptsCoding('GZIP;q=0.5', 'x-gzip'), true);
  assert.equal(acceptsCoding('gzip;q=0', 'gzip'), false);
  assert.equal(acceptsCoding('*', 'br'), true);
  assert.equal(acceptsCoding('*;q=0, gzip', 'br'), false);
  assert.equal(acceptsCoding('identity', 'gzip'), false);
  assert.equal(acceptsCoding(undefined, 'gzip'), false);
  assert.equal(acceptsCoding(undefined, 'identity'), true);
});

test('recorded headers are canonical, first-valued, always the validators, never credentials', () => {
  assert.equal(canonicalHeaderName('x-checksum-sha1'), 'X-Checksum-Sha1');
  assert.equal(canonicalHeaderName('DOCKER-CONTENT-DIGEST'), 'Docker-Content-Digest');
  assert.deepEqual(
    pickRecordedHeaders({ 'content-type': ['a/b', 'c/d'], 'set-cookie': ['x=1'], authorization: 'x', etag: '"1"' }, ['Content-Type', 'set-cookie', 'Authorization', 'Content-Length']),
    { 'Content-Type': 'a/b', Etag: '"1"' },
  );
});

test('listen addresses: loopback for an empty host, errors name the flag', () => {
  assert.deepEqual(parseListenAddr('127.0.0.1:0', '-l'), { host: '127.0.0.1', port: 0 });
  assert.deepEqual(parseListenAddr(':8080', '-l'), { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(parseListenAddr('[::1]:9', '-l'), { host: '::1', port: 9 });
  assert.throws(() => parseListenAddr('localhost', '--listen-addr'), /--listen-addr: "localhost" is not host:port/);
  assert.throws(() => parseListenAddr('1.2.3.4:70000', '--tls-listen-addr'), /--tls-listen-addr: port 70000/);
});
