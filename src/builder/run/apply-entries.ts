/**
 * Applying a RUN step's changes to the stage's working rootfs by moving the step's own files
 * into place (rename, same filesystem) instead of extracting the layer tar just written.
 * Same result as `applyLayer(root, layer)` except file times are not clamped (they are
 * clamped whenever a layer is written, so no output differs), and far cheaper: a 10,000-file
 * step applies in well under a second instead of ~10 s. Opt-in via `executeRun(req, {applyTo})`.
 */
import { chmod, chown, lchown, link, lstat, lutimes, mkdir, readdir, rename, rm, symlink, unlink, utimes } from 'node:fs/promises';
import { removePath } from '../fs/apply.js';
import { mustRunTool } from './exec.js';
import { join } from 'node:path';
import type { HardlinkEntry, LayerEntry } from '../fs/types.js';

/**
 * Applies `entries` to `root` (in tree order: parents first, a dir's opaque marker right
 * after it and before its children). File entries' `source`s are moved, so they are gone
 * afterwards.
 */
export async function applyEntries(root: string, entries: LayerEntry[], signal?: AbortSignal): Promise<void> {
  const links: HardlinkEntry[] = [];
  const dirTimes: { path: string; mtime: number }[] = [];
  // Runs of regular files and symlinks (siblings, or cousins below dirs already made) are
  // independent: place them MOVE_BATCH at a time rather than one await each (10,000 files:
  // 1.35 s before).
  let batch: (() => Promise<void>)[] = [];
  const flushMoves = async () => {
    for (let i = 0; i < batch.length; i += MOVE_BATCH) {
      signal?.throwIfAborted();
      await Promise.all(batch.slice(i, i + MOVE_BATCH).map((f) => f()));
    }
    batch = [];
  };
  for (const e of treeOrder(entries)) {
    signal?.throwIfAborted();
    const dest = join(root, e.path);
    if (e.type === 'file') {
      batch.push(() => moveInto(e.source, dest));
      continue;
    }
    if (e.type === 'symlink') {
      batch.push(async () => {
        await removePath(dest);
        await symlink(e.target, dest);
        await lchown(dest, e.uid ?? 0, e.gid ?? 0);
        await lutimes(dest, e.mtime ?? 0, e.mtime ?? 0);
      });
      continue;
    }
    await flushMoves();
    switch (e.type) {
      case 'whiteout':
        await removeTree(dest, signal);
        break;
      case 'opaque':
        for (const name of await readdir(dest).catch(() => [] as string[])) await rm(join(dest, name), { recursive: true, force: true });
        break;
      case 'dir': {
        const existing = await lstat(dest).catch(() => undefined);
        if (existing && !existing.isDirectory()) await unlink(dest);
        if (!existing?.isDirectory()) await mkdir(dest);
        await chown(dest, e.uid ?? 0, e.gid ?? 0);
        await chmod(dest, e.mode);
        dirTimes.push({ path: dest, mtime: e.mtime ?? 0 });
        break;
      }
      case 'hardlink':
        links.push(e);
        break;
    }
  }
  await flushMoves();
  // Targets are other entries of the step, moved above whatever their order.
  for (const l of links) {
    const dest = join(root, l.path);
    await removePath(dest);
    await link(join(root, l.target), dest);
  }
  // Children changed directory times; set them last, deepest first.
  for (const d of dirTimes.reverse()) await utimes(d.path, d.mtime, d.mtime);
}

const MOVE_BATCH = 64;

/**
 * Removes `path` whatever it is. A directory goes via GNU `rm -rf` (one process, no thread-pool
 * round trip per file): node's recursive rm took ~0.5 s for a 10,000-file directory.
 */
async function removeTree(path: string, signal?: AbortSignal): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isDirectory()) return unlink(path);
  await mustRunTool(['rm', '-rf', '--one-file-system', '--', path], `removing ${path}`, signal);
}

/** rename() replaces a file or symlink in place; only a directory in the way must go first. */
async function moveInto(source: string, dest: string): Promise<void> {
  try {
    await rename(source, dest);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR') throw e;
    await removePath(dest);
    await rename(source, dest);
  }
}

const RANK: Record<LayerEntry['type'], number> = { dir: 0, opaque: 1, whiteout: 2, file: 2, symlink: 2, hardlink: 2 };

/** Pre-order by path components (so `a/b` right after `a`, before `a-c`), dir before its opaque marker. */
function treeOrder(entries: LayerEntry[]): LayerEntry[] {
  const keyed = entries.map((e) => ({ e, parts: e.path.split('/') }));
  keyed.sort((x, y) => {
    const n = Math.min(x.parts.length, y.parts.length);
    for (let i = 0; i < n; i++) if (x.parts[i] !== y.parts[i]) return x.parts[i]! < y.parts[i]! ? -1 : 1;
    return x.parts.length - y.parts.length || RANK[x.e.type] - RANK[y.e.type];
  });
  return keyed.map((k) => k.e);
}
