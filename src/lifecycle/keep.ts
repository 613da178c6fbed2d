/**
 * `gc --keep FILE|GLOB…`: the lockfiles whose blobs stay. A glob (`repos/*\/assets.json`) is
 * expanded here (a quoted one reaches us unexpanded) by walking only as deep as the pattern
 * reaches (or everything under its base for `**`). Every file must exist and parse, and every
 * glob must match: gc never deletes on partial knowledge.
 */
import { opendir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import picomatch from 'picomatch';
import { HtvendError, describeError } from '../util/errors.js';
import { decodeAssets } from '../manifest/codec.js';

const GLOB_CHARS = /[*?[\]{}]/;

async function walk(base: string, depth: number, out: string[]): Promise<void> {
  let dir;
  try {
    dir = await opendir(base);
  } catch {
    return;
  }
  for await (const ent of dir) {
    const p = join(base, ent.name);
    if (ent.isDirectory()) {
      if (depth > 1) await walk(p, depth - 1, out);
    } else out.push(p);
  }
}

/** Expands one --keep argument into files (sorted). */
export async function expandKeep(arg: string): Promise<string[]> {
  if (!GLOB_CHARS.test(arg)) return [arg];
  const parts = arg.split('/');
  const firstGlob = parts.findIndex((p) => GLOB_CHARS.test(p));
  const base = parts.slice(0, firstGlob).join('/') || (arg.startsWith('/') ? '/' : '.');
  const rest = parts.slice(firstGlob);
  const depth = rest.includes('**') ? Infinity : rest.length;
  const files: string[] = [];
  await walk(base, depth, files);
  const isMatch = picomatch(rest.join('/'), { dot: false });
  const matched = files.filter((f) => isMatch(relative(base, f).split(sep).join('/'))).sort();
  if (!matched.length) throw new HtvendError('INPUT', `--keep ${arg}: matches no file; nothing was deleted`);
  return matched;
}

export interface KeptSet {
  files: string[];
  /** sha256 hex of every blob some kept lockfile references. */
  digests: Set<string>;
  entries: number;
}

/** Loads every kept lockfile (mark phase). Throws, naming the file, on the first one missing or malformed. */
export async function loadKept(args: readonly string[], opts: { signal?: AbortSignal | undefined } = {}): Promise<KeptSet> {
  if (!args.length) throw new HtvendError('USAGE', 'gc needs at least one --keep FILE|GLOB (the lockfiles whose blobs stay)');
  const files = [...new Set((await Promise.all(args.map(expandKeep))).flat())];
  const digests = new Set<string>();
  let entries = 0;
  for (const f of files) {
    let bytes: Buffer;
    try {
      bytes = await readFile(f, { signal: opts.signal });
    } catch (e) {
      throw new HtvendError('NOT_FOUND', `--keep ${f}: cannot read (${describeError(e)}); nothing was deleted`, { cause: e });
    }
    let map;
    try {
      map = decodeAssets(bytes, f);
    } catch (e) {
      throw new HtvendError('INPUT', `--keep ${describeError(e)}; nothing was deleted`, { cause: e });
    }
    for (const e of map.values()) digests.add(e.Sha256);
    entries += map.size;
  }
  return { files, digests, entries };
}
