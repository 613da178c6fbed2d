/**
 * Atomic file replacement: write a temp file in the same directory, fsync it, rename it over
 * the target, fsync the directory. A reader (or a crash) sees either the old or the new
 * content, never a mix (rename(2) is atomic within one filesystem).
 */
import { open, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { HtvendError, describeError } from '../util/errors.js';

export interface AtomicWriteOptions {
  signal?: AbortSignal | undefined;
  /** Mode for a newly created file (before umask). An existing file's mode is kept. */
  mode?: number;
}

/** Replaces `path` with `data` atomically. Throws IO errors naming `path`; never leaves the temp file. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  opts.signal?.throwIfAborted();
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let existingMode: number | undefined;
  try {
    existingMode = (await stat(path)).mode & 0o7777;
  } catch {
    // new file: created with opts.mode, minus the umask
  }
  try {
    const fh = await open(tmp, 'wx', existingMode ?? opts.mode ?? 0o666);
    try {
      await fh.writeFile(data);
      if (existingMode !== undefined) await fh.chmod(existingMode); // keep the replaced file's mode exactly (no umask)
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => {});
    throw new HtvendError('IO', `cannot write ${path}: ${describeError(e)}`, { cause: e });
  }
  // Make the rename itself durable. Best effort: some filesystems refuse fsync on directories.
  try {
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    /* ignore */
  }
}
