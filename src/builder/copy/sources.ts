/**
 * Source resolution for COPY/ADD: Docker's glob semantics (`*`, `?`, `[…]` per path component,
 * never crossing `/`), paths clamped to their root (`../x` cannot leave the build context, as
 * in Docker), `.dockerignore` applied to context sources.
 */
import { readdir, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, posix } from 'node:path';
import picomatch from 'picomatch';
import dockerignore, { type Ignore } from '@balena/dockerignore';
import { readFile, realpath } from 'node:fs/promises';
import { RootResolver } from '../fs/apply.js';

export interface SourceRoot {
  /** Host directory: the build context or a stage/image rootfs. */
  dir: string;
  /** True for the build context: `.dockerignore` applies and host ownership is dropped. */
  isContext: boolean;
  /** Matcher from `.dockerignore` (+ `--exclude`), context-relative paths. */
  ignore?: Ignore;
  /** The rules have `!` exceptions: an ignored directory may still hold included files. */
  hasExceptions?: boolean;
}

export interface ResolvedSource {
  /** Path relative to the source root (`.` cleaned away; '' = the root itself). */
  rel: string;
  /** Host path (top-level symlinks followed inside the root). */
  abs: string;
  st: Stats;
}

const GLOB = /[*?[]/;

// @balena/dockerignore is CommonJS whose typings declare an ES default export; under NodeNext
// the default import is the module object at type level but the function at run time.
type IgnoreFactory = () => Ignore;
/** A fresh, empty `.dockerignore` matcher. */
export const newIgnore: IgnoreFactory = ((dockerignore as unknown as { default?: IgnoreFactory }).default ?? (dockerignore as unknown as IgnoreFactory));

/** Loads `<context>/.dockerignore` (or `<Dockerfile>.dockerignore` when given) into a matcher. */
export async function loadDockerignore(contextDir: string, dockerfilePath?: string): Promise<{ ignore: Ignore; hasExceptions: boolean }> {
  const candidates = [...(dockerfilePath ? [`${dockerfilePath}.dockerignore`] : []), join(contextDir, '.dockerignore')];
  for (const c of candidates) {
    const text = await readFile(c, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    return { ignore: newIgnore().add(lines), hasExceptions: lines.some((l) => l.startsWith('!')) };
  }
  return { ignore: newIgnore(), hasExceptions: false };
}

function clean(p: string): string {
  const n = posix.normalize('/' + p).slice(1).replace(/\/+$/, '');
  return n === '.' ? '' : n;
}

/** Is `rel` excluded by the root's ignore rules? (always false outside the context) */
export function isIgnored(root: SourceRoot, rel: string): boolean {
  // A stage/image root has a matcher only for `--exclude`.
  return !!root.ignore && rel !== '' && root.ignore.ignores(rel);
}

/** Expands one COPY source (may contain globs) into existing paths; [] if nothing matches. */
export async function resolveSource(root: SourceRoot, src: string): Promise<ResolvedSource[]> {
  const pattern = clean(src);
  const rels: string[] = [];
  if (!GLOB.test(pattern)) rels.push(pattern);
  else {
    const parts = pattern.split('/');
    const walk = async (dirRel: string, i: number): Promise<void> => {
      if (i === parts.length) {
        rels.push(dirRel);
        return;
      }
      const part = parts[i]!;
      if (!GLOB.test(part)) return walk(dirRel === '' ? part : `${dirRel}/${part}`, i + 1);
      const isMatch = picomatch(part, { dot: true });
      const names = await readdir(join(root.dir, dirRel)).catch(() => [] as string[]);
      for (const name of names.sort()) if (isMatch(name)) await walk(dirRel === '' ? name : `${dirRel}/${name}`, i + 1);
    };
    await walk('', 0);
  }
  const out: ResolvedSource[] = [];
  const resolver = root.isContext ? undefined : new RootResolver(root.dir);
  for (const rel of rels) {
    if (isIgnored(root, rel)) continue;
    // A top-level symlink source is followed (BuildKit's FollowPaths), never out of its root.
    let abs: string | undefined;
    if (resolver) abs = await resolver.follow(rel).catch(() => undefined);
    else {
      const real = await realpath(join(root.dir, rel)).catch(() => undefined);
      const rootReal = await realpath(root.dir);
      if (real !== undefined && (real === rootReal || real.startsWith(rootReal + '/'))) abs = real;
    }
    if (abs === undefined) continue;
    const st = await stat(abs).catch(() => undefined);
    if (!st) continue;
    out.push({ rel, abs, st });
  }
  return out;
}
