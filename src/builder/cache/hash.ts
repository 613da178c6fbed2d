/**
 * Content digests for cache keys: a file's bytes, and a directory tree (bind mounts of the
 * build context) as paths, types, modes, owners, link targets and file contents. mtimes are
 * left out, as BuildKit does: a checkout or a `touch` must not invalidate the cache.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { canonicalJson } from '../image/image.js';
import type { Digest } from '../../util/digest.js';

/** Files up to this size are read in one call (most context files). */
const SMALL = 256 * 1024;

export async function fileDigest(path: string, size: number | undefined, signal?: AbortSignal): Promise<Digest> {
  const h = createHash('sha256');
  if (size !== undefined && size <= SMALL) {
    h.update(readFileSync(path));
    return h.digest('hex') as Digest;
  }
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20, signal }) as AsyncIterable<Buffer>) h.update(chunk);
  return h.digest('hex') as Digest;
}

/** Digest of the tree at `root` (a file, a directory or a symlink; missing → 'missing'). */
export async function treeDigest(root: string, signal?: AbortSignal): Promise<string> {
  const h = createHash('sha256');
  const walk = async (abs: string, rel: string): Promise<void> => {
    signal?.throwIfAborted();
    const st = await lstat(abs);
    const meta = { p: rel, mode: st.mode, u: st.uid, g: st.gid };
    if (st.isSymbolicLink()) h.update(canonicalJson({ ...meta, l: await readlink(abs) }) + '\n');
    else if (st.isFile()) h.update(canonicalJson({ ...meta, s: await fileDigest(abs, st.size, signal) }) + '\n');
    else if (st.isDirectory()) {
      h.update(canonicalJson(meta) + '\n');
      for (const name of (await readdir(abs)).sort()) await walk(join(abs, name), rel ? `${rel}/${name}` : name);
    } else h.update(canonicalJson({ ...meta, r: Number(st.rdev) }) + '\n');
  };
  try {
    await walk(root, '');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw e;
  }
  return h.digest('hex');
}
