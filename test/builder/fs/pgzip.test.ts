import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { tempDir } from '../../helpers/tmp.js';
import { run as runWithStdin } from '../../helpers/cli.js';

/** Commands here read no stdin; not opening it avoids EPIPE races with fast-exiting tools. */
const run = (argv: string[]) => runWithStdin(argv, { stdio: ['ignore', 'pipe', 'pipe'] });
import { ParallelGzip } from '../../../src/builder/fs/pgzip.js';

function* input(): Generator<Buffer> {
  // 5.5 MiB in odd-sized chunks: random and repetitive parts, block boundaries mid-chunk.
  let seed = 1;
  for (let i = 0; i < 55; i++) {
    const n = 100 * 1024 + ((i * 7919) % 3000);
    const b = i % 2 ? randomBytesSeeded(n, seed++) : Buffer.from('hello layer line\n'.repeat(Math.ceil(n / 17))).subarray(0, n);
    yield b;
  }
}
function randomBytesSeeded(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

test('ParallelGzip output is a valid gzip stream (checked by gzip(1)) and the same bytes every time', async (t) => {
  const dir = await tempDir(t);
  const digests: string[] = [];
  for (const name of ['a.gz', 'b.gz']) {
    const path = join(dir, name);
    await pipeline(Readable.from(input()), new ParallelGzip(6, 4), createWriteStream(path));
    const check = await run(['sh', '-c', `gzip -t '${path}' && gzip -dc '${path}' | sha256sum`]);
    assert.equal(check.code, 0, check.stderr);
    digests.push((await run(['sha256sum', path])).stdout.split(' ')[0]!);
  }
  assert.equal(digests[0], digests[1]);
  const expected = createHash('sha256');
  for (const b of input()) expected.update(b);
  const got = await run(['sh', '-c', `gzip -dc '${join(dir, 'a.gz')}' | sha256sum`]);
  assert.equal(got.stdout.split(' ')[0], expected.digest('hex'));
});

test('ParallelGzip handles empty input', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'e.gz');
  await pipeline(Readable.from([]), new ParallelGzip(), createWriteStream(path));
  const r = await run(['sh', '-c', `gzip -dc '${path}' | wc -c`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), '0');
});
