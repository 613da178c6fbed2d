/**
 * Resolving container paths against a rootfs directory on the host, following symlinks the
 * way the runtime does (every link is interpreted relative to the container root, never the
 * host's), so we know exactly which host path a mount destination lands on.
 */
import { lstat, readlink } from 'node:fs/promises';
import { posix } from 'node:path';
import { HtvendError } from '../../util/errors.js';

/** A container path resolved inside a root: `rel` has no leading slash ('' = the root). */
export interface RootPath {
  /** Relative path inside the root after following symlinks, e.g. `etc/ssl/cert.pem`. */
  rel: string;
  /** True when every component exists in the root. */
  exists: boolean;
  /** The relative paths of the components that did not exist, shallowest first. */
  missing: string[];
}

const MAX_LINKS = 40;

/**
 * Follows symlinks component by component inside `root` (like securejoin): `..` never climbs
 * above the root, absolute link targets restart at the root. Missing components are kept as
 * written, so the result is where a runtime would create a mountpoint.
 */
export async function resolveInRoot(root: string, containerPath: string): Promise<RootPath> {
  let pending = splitPath(containerPath);
  const done: string[] = [];
  let links = 0;
  let missingFrom = -1;
  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === '..') {
      done.pop();
      continue;
    }
    done.push(name);
    if (missingFrom >= 0) continue;
    let st;
    try {
      st = await lstat(posix.join(root, ...done));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') {
        missingFrom = done.length - 1;
        continue;
      }
      throw e;
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw new HtvendError('INPUT', `too many levels of symbolic links resolving ${containerPath} in the image`);
      const target = await readlink(posix.join(root, ...done));
      done.pop();
      if (target.startsWith('/')) done.length = 0;
      pending = [...splitPath(target), ...pending];
    }
  }
  const missing: string[] = [];
  if (missingFrom >= 0) for (let i = missingFrom; i < done.length; i++) missing.push(done.slice(0, i + 1).join('/'));
  return { rel: done.join('/'), exists: missingFrom < 0, missing };
}

function splitPath(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}
