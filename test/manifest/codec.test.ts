import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeAssets, encodeAssets } from '../../src/manifest/codec.js';
import { quoteGo } from '../../src/manifest/gojson.js';
import { HtvendError } from '../../src/util/errors.js';
import type { AssetEntry } from '../../src/manifest/types.js';
import { parseDigest } from '../../src/util/digest.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

// Written the way Go's json.MarshalIndent(map[string]BlobInfo, "", "  ") writes it: sorted keys,
// \u0026 for &, an empty Headers map as {}, a nil one as null, no trailing newline.
const GO_FILE = [
  '{',
  '  "https://example.com/a?x=1\\u0026y=2": {',
  `    "Sha256": "${A}",`,
  '    "Headers": {',
  '      "Content-Length": "3",',
  '      "Content-Type": "text/html; q=\\"\\u003cb\\u003e\\""',
  '    }',
  '  },',
  '  "https://example.com/b%2Fc": {',
  `    "Sha256": "${B}",`,
  '    "Headers": {}',
  '  },',
  '  "https://example.com/nil": {',
  `    "Sha256": "${B}",`,
  '    "Headers": null',
  '  },',
  '  "https://user:xxxxx@example.com/\\u2028\\u2029\\t\\b\\f\\u0001é": {',
  `    "Sha256": "${A}",`,
  '    "Headers": {',
  '      "X-Checksum-Sha1": "abc"',
  '    }',
  '  }',
  '}',
].join('\n');

test('a Go-written assets.json loads and saves back byte-identical', () => {
  const m = decodeAssets(Buffer.from(GO_FILE), 'assets.json');
  assert.equal(m.size, 4);
  assert.equal(m.get('https://example.com/a?x=1&y=2')?.Headers['Content-Type'], 'text/html; q="<b>"');
  assert.deepEqual(m.get('https://example.com/b%2Fc')?.Headers, {});
  assert.equal(encodeAssets(m), GO_FILE);
});

test('an empty manifest is written as {} and parsed from {} or null', () => {
  assert.equal(encodeAssets(new Map()), '{}');
  assert.equal(decodeAssets('{}', 'f').size, 0);
  assert.equal(decodeAssets('null', 'f').size, 0);
});

test('keys and header names are sorted by UTF-8 byte order, not UTF-16 order', () => {
  const e = (h: Record<string, string>): AssetEntry => ({ Sha256: parseDigest(A), Headers: h });
  // In UTF-16 code units U+1F600 (0xD83D 0xDE00) sorts before U+FF5E; in UTF-8 bytes it sorts after.
  const m = new Map<string, AssetEntry>([
    ['https://x/\u{1F600}', e({})],
    ['https://x/\uFF5E', e({})],
    ['https://x/B', e({ b: '1', B: '2', a: '3' })],
  ]);
  const out = encodeAssets(m);
  const order = [...out.matchAll(/^ {2}"([^"]+)":/gm)].map((x) => x[1]);
  assert.deepEqual(order, ['https://x/B', 'https://x/\uFF5E', 'https://x/\u{1F600}']);
  assert.match(out, /"B": "2",\n {6}"a": "3",\n {6}"b": "1"/);
});

test('strings are escaped as Go does; a lone surrogate becomes a raw U+FFFD as Go re-marshals it', () => {
  assert.equal(quoteGo('<a&b>'), '"\\u003ca\\u0026b\\u003e"');
  assert.equal(quoteGo('\u2028\u2029'), '"\\u2028\\u2029"');
  assert.equal(quoteGo('\x00\x1f\x7f'), '"\\u0000\\u001f\x7f"');
  assert.equal(quoteGo('"\\/'), '"\\"\\\\/"');
  assert.equal(quoteGo('x\ud800y\udc00'), '"x\ufffdy\ufffd"');
  assert.equal(quoteGo('\u{1F600}'), '"\u{1F600}"');
});

test('invalid UTF-8 and lone surrogate escapes in the file are read as U+FFFD, like Go', () => {
  const m0 = decodeAssets(`{"https://x/\\ud800\\ud83d\\ude00\\udc00": {"Sha256": "${A}", "Headers": {}}}`, 'f');
  assert.deepEqual([...m0.keys()], ['https://x/\ufffd\u{1F600}\ufffd']);
  const bytes = Buffer.concat([Buffer.from('{"https://x/'), Buffer.from([0xff]), Buffer.from(`": {"Sha256": "${A}", "Headers": {}}}`)]);
  const m = decodeAssets(bytes, 'f');
  assert.ok(m.has('https://x/\ufffd'));
});

test('unknown fields are ignored and field names match case-insensitively, as Go unmarshals', () => {
  const m = decodeAssets(`{"k": {"sha256": "${A}", "Size": 12, "headers": {"A": "b"}}}`, 'f');
  assert.deepEqual(m.get('k'), { Sha256: A, Headers: { A: 'b' } });
});

function throwsInput(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof HtvendError && e.code === 'INPUT' && re.test(e.message));
}

test('a syntax error names the file, line and column', () => {
  throwsInput(() => decodeAssets('{\n  "a": {\n    "Sha256": x\n  }\n}', '/p/assets.json'), /^\/p\/assets\.json:3:15: /);
  throwsInput(() => decodeAssets('{"a": 1,}', 'f'), /^f:1:9: expected a string key/);
  throwsInput(() => decodeAssets('{"a": {}', 'f'), /^f:1:9: .*end of input/);
  throwsInput(() => decodeAssets('{} x', 'f'), /^f:1:4: /);
  throwsInput(() => decodeAssets('\ufeff{}', 'f'), /^f:1:1: /);
});

test('a bad or missing sha names the entry key', () => {
  throwsInput(() => decodeAssets(`{"https://x/y": {"Sha256": "${A.slice(1)}", "Headers": {}}}`, 'f'), /f: entry "https:\/\/x\/y": invalid Sha256/);
  throwsInput(() => decodeAssets(`{"https://x/y": {"Sha256": "${A.toUpperCase()}"}}`, 'f'), /"https:\/\/x\/y"/);
  throwsInput(() => decodeAssets('{"https://x/y": {"Headers": {}}}', 'f'), /invalid Sha256 null/);
  throwsInput(() => decodeAssets(`{"k": {"Sha256": "${A}", "Headers": {"A": 1}}}`, 'f'), /header "A" must be a string/);
  throwsInput(() => decodeAssets('[1]', 'f'), /expected a JSON object/);
});

test('a header literally named __proto__ stays an ordinary header', () => {
  const m = decodeAssets(`{"k": {"Sha256": "${A}", "Headers": {"__proto__": "x"}}}`, 'f');
  const h = m.get('k')!.Headers;
  assert.equal(Object.getPrototypeOf(h), Object.prototype);
  assert.deepEqual(Object.keys(h), ['__proto__']);
  assert.match(encodeAssets(m), /"__proto__": "x"/);
});
