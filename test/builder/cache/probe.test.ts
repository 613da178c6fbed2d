import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requestTarget } from '../../../src/builder/cache/probe.js';

test('a probe asks for the key exactly as recorded: dot segments, query and case kept', () => {
  assert.deepEqual(requestTarget('http://127.0.0.1:8080/apt/./Packages'), { origin: 'http://127.0.0.1:8080', path: '/apt/./Packages' });
  assert.deepEqual(requestTarget('https://Example.org/a/../b%2Fc?x=1&y'), { origin: 'https://Example.org', path: '/a/../b%2Fc?x=1&y' });
  assert.deepEqual(requestTarget('https://example.org'), { origin: 'https://example.org', path: '/' });
  assert.deepEqual(requestTarget('https://example.org?q'), { origin: 'https://example.org', path: '/?q' });
  assert.throws(() => requestTarget('example.org/x'), /not an absolute URL/);
});
