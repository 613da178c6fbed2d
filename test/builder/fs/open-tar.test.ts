/** openTar: gzip, zstd (through the zstd program) and plain tars read the same; failures are named. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, truncate, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { extract } from 'tar-stream';
import type { Readable } from 'node:stream';
import { openTar } from '../../../src/builder/fs/apply.js';
import { HtvendError } from '../../../src/util/errors.js';
import { tempDir } from '../../helpers/tmp.js';

/** Member names and the bytes of regular files, read through tar-stream. */
async function members(r: Readable): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const x = extract();
  x.on('entry', (h, body, next) => {
    const chunks: Buffer[] = [];
    body.on('data', (c: Buffer) => chunks.push(c));
    body.on('end', () => {
      out[h.name] = h.type === 'file' ? Buffer.concat(chunks).toString() : String(h.type);
      next();
    });
  });
  const done = new Promise<void>((resolve, reject) => {
    x.on('finish', resolve);
    x.on('error', reject);
    r.on('error', reject);
  });
  r.pipe(x);
  await done;
  return out;
}

test('gzip, zstd and plain layer tars read alike; a truncated zstd layer fails naming it; no zstd program is a clear error', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'root', 'etc'), { recursive: true });
  await writeFile(join(dir, 'root', 'etc', 'hello'), 'hello from a layer\n');
  await writeFile(join(dir, 'root', 'big'), Buffer.alloc(3 * 1024 * 1024, 'x'));
  const tar = join(dir, 'layer.tar');
  execFileSync('tar', ['-C', join(dir, 'root'), '-cf', tar, 'etc', 'big']);
  execFileSync('gzip', ['-k', tar]);
  execFileSync('zstd', ['-q', '-k', tar]);

  const plain = await members(await openTar(tar, 'layer plain'));
  assert.equal(plain['etc/hello'], 'hello from a layer\n');
  assert.equal(plain['big']!.length, 3 * 1024 * 1024);
  assert.deepEqual(await members(await openTar(`${tar}.gz`, 'layer gz')), plain);
  assert.deepEqual(await members(await openTar(`${tar}.zst`, 'layer zst')), plain);

  const cut = join(dir, 'cut.tar.zst');
  await writeFile(cut, await readFile(`${tar}.zst`));
  await truncate(cut, Math.floor((await stat(cut)).size / 2));
  await assert.rejects(members(await openTar(cut, 'layer sha256:cut')), (e: unknown) => e instanceof HtvendError && /layer sha256:cut: zstd failed/.test(e.message));

  const path = process.env.PATH;
  process.env.PATH = join(dir, 'no-such-bin');
  try {
    await assert.rejects(members(await openTar(`${tar}.zst`, 'layer sha256:abc')), (e: unknown) => e instanceof HtvendError && /layer sha256:abc: zstd-compressed, and the zstd program is not installed/.test(e.message));
  } finally {
    process.env.PATH = path;
  }
});
