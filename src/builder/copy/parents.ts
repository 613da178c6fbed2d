/**
 * `COPY --parents` sources, as BuildKit's Dockerfile frontend turns them into a copy: the part
 * of the source before the first `/./` (the pivot) is the directory copied from (the source
 * root when there is no pivot), and the part after it is an include pattern matched below that
 * directory. What matches keeps its path relative to that directory, so its parent directories
 * are recreated under the destination.
 *
 * - The directory part may hold wildcards (each matching directory is used in turn) and its
 *   symlinks are followed inside the root, like any COPY source.
 * - The pattern is matched per path component (`*`, `?`, `[…]` as for other sources) and `**`
 *   matches any number of components, zero included; symlinks below the directory part are
 *   never followed (they are copied as links), as BuildKit's walker does.
 * - A matched directory brings everything under it.
 */
import { lstat, readdir } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, posix } from 'node:path';
import picomatch from 'picomatch';
import { resolveSource, type ResolvedSource, type SourceRoot } from './sources.js';

const GLOB = /[*?[]/;

export interface ParentsMatch {
  /** The directory the pattern was matched under (before the pivot; the root without one). */
  base: ResolvedSource;
  /** Path of the match under `base` ('' = `base` itself): what is kept under the destination. */
  rel: string;
  /** Host path of the match. */
  abs: string;
  /** lstat of the match (`base`'s stat when `rel` is ''). */
  st: Stats;
}

/** `src` split at its first `/./`: the directory part and the pattern (both cleaned). */
export function splitPivot(src: string): { dir: string; pattern: string } {
  const i = src.indexOf('/./');
  const [dir, pattern] = i < 0 ? ['/', src] : [src.slice(0, i), src.slice(i + 3)];
  return { dir: cleanPath(dir), pattern: cleanPath(pattern) };
}

/** `p` relative to the root, `..` clamped at it, no `.`, no leading or trailing `/`. */
function cleanPath(p: string): string {
  const n = posix.normalize('/' + p).slice(1).replace(/\/+$/, '');
  return n === '.' ? '' : n;
}

/** Does `src` name exactly one path (no wildcard in either part)? Such a source must exist. */
export function isLiteralParentsSource(src: string): boolean {
  const { dir, pattern } = splitPivot(src);
  return !GLOB.test(dir) && !GLOB.test(pattern);
}

/** Everything `src` (a `COPY --parents` source) matches in `root`, in path order. */
export async function matchParents(root: SourceRoot, src: string, signal?: AbortSignal): Promise<ParentsMatch[]> {
  const { dir, pattern } = splitPivot(src);
  const out: ParentsMatch[] = [];
  for (const base of await resolveSource(root, dir === '' ? '.' : dir)) {
    if (!base.st.isDirectory()) continue;
    if (pattern === '') {
      out.push({ base, rel: '', abs: base.abs, st: base.st });
      continue;
    }
    const parts = pattern.split('/');
    const seen = new Set<string>();
    const found = (rel: string, st: Stats) => {
      if (seen.has(rel)) return; // `**` can reach one path several ways
      seen.add(rel);
      out.push({ base, rel, abs: join(base.abs, rel), st });
    };
    const at = (rel: string) => (rel === '' ? base.abs : join(base.abs, rel));
    const childDirs = async (rel: string): Promise<string[]> => {
      const names = await readdir(at(rel), { withFileTypes: true }).catch(() => []);
      return names.filter((d) => d.isDirectory()).map((d) => d.name).sort();
    };
    // `rel` is an existing real directory (never a symlink) under `base`.
    const walk = async (rel: string, i: number): Promise<void> => {
      signal?.throwIfAborted();
      const part = parts[i]!;
      const last = i === parts.length - 1;
      const sub = (name: string) => (rel === '' ? name : `${rel}/${name}`);
      if (part === '**') {
        if (last) {
          // a trailing `**`: everything below `rel`
          for (const name of (await readdir(at(rel)).catch(() => [] as string[])).sort()) {
            const st = await lstat(at(sub(name))).catch(() => undefined);
            if (st) found(sub(name), st);
          }
          return;
        }
        await walk(rel, i + 1); // zero components
        for (const name of await childDirs(rel)) await walk(sub(name), i);
        return;
      }
      const isMatch = GLOB.test(part) ? picomatch(part, { dot: true }) : undefined;
      const names = isMatch ? (await readdir(at(rel)).catch(() => [] as string[])).filter((n) => isMatch(n)).sort() : [part];
      for (const name of names) {
        const st = await lstat(at(sub(name))).catch(() => undefined);
        if (!st) continue;
        if (last) found(sub(name), st);
        else if (st.isDirectory()) await walk(sub(name), i + 1);
      }
    };
    await walk('', 0);
  }
  return out;
}
