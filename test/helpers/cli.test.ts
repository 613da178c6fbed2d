/** The shared CLI-spawning helpers other tests rely on. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cliCommand, run } from './cli.js';
import { tempDir } from './tmp.js';

test('cliCommand runs our CLI from a working directory outside the repository', async (t) => {
  const cwd = await tempDir(t, 'cli-helper-');
  const r = await run([...cliCommand('build-img-with-proxy'), '--help'], { cwd });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Usage: build-img-with-proxy/);
});

test('run() does not fail when the tool exits without reading its stdin', async () => {
  // No input: stdin is /dev/null.
  assert.equal((await run(['true'])).code, 0);
  assert.equal((await run(['sh', '-c', 'cat; echo done'])).stdout, 'done\n', 'stdin at EOF without input');
  // Input larger than a pipe buffer, never read: the write fails with EPIPE, which is ignored.
  const r = await run(['true'], { input: 'x'.repeat(4 << 20) });
  assert.equal(r.code, 0);
  assert.equal((await run(['cat'], { input: 'echo\n' })).stdout, 'echo\n', 'input still reaches the tool');
});
