/** Runtime choice: BUILD_IMG_RUNTIME (name or path), else runc, else crun; a clear error otherwise. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { pickRuntime } from '../../../src/builder/run/runtime.js';

test('BUILD_IMG_RUNTIME picks the runtime by name; runc is the default; a missing one is named in the error', async () => {
  const path = process.env.PATH ?? '';
  assert.equal((await pickRuntime('/s', { PATH: path, BUILD_IMG_RUNTIME: 'crun' })).name, 'crun');
  assert.equal((await pickRuntime('/s', { PATH: path })).name, 'runc');
  const runc = execFileSync('/bin/sh', ['-c', 'command -v runc'], { encoding: 'utf8' }).trim();
  assert.equal((await pickRuntime('/s', { PATH: '/nonexistent', BUILD_IMG_RUNTIME: runc })).path, runc);
  await assert.rejects(pickRuntime('/s', { PATH: path, BUILD_IMG_RUNTIME: 'no-such-runtime' }), /BUILD_IMG_RUNTIME=no-such-runtime: no such executable/);
  await assert.rejects(pickRuntime('/s', { PATH: '/nonexistent' }), /no OCI runtime found/);
});
