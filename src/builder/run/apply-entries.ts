/**
 * Applying a RUN step's changes to the stage's working rootfs by moving the step's own files
 * into place (rename, same filesystem) instead of extracting the layer tar just written.
 * Same result as `applyLayer(root, layer)` except file times are not clamped (they are
 * clamped whenever a layer is written, so no output differs), and far cheaper: a 10,000-file
 * step applies in well under a second instead of ~10 s. Opt-in via `executeRun(req, {applyTo})`.
 */
import { lchownSync, lstatSync, lutimesSync, renameSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { chmod, chown, link, lstat, mkdir, readdir, rm, unlink, utimes } from 'node:fs/promises';
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
  for (const e of treeOrder(entries)) {
    signal?.throwIfAborted();
    const dest = join(root, e.path);
    switch (e.type) {
      // Files and symlinks synchronously: their inodes are hot and each call is a few µs, while
      // one await per file cost 1.35 s for 10,000 files (0.3 s with 64 in flight).
      case 'file':
        moveIntoSync(e.source, dest);
        break;
      case 'symlink':
        removePathSync(dest);
        symlinkSync(e.target, dest);
        lchownSync(dest, e.uid ?? 0, e.gid ?? 0);
        lutimesSync(dest, e.mtime ?? 0, e.mtime ?? 0);
        break;
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
  // Targets are other entries of the step, moved above whatever their order.
  for (const l of links) {
    const dest = join(root, l.path);
    await removePath(dest);
    await link(join(root, l.target), dest);
  }
  // Children changed directory times; set them last, deepest first.
  for (const d of dirTimes.reverse()) await utimes(d.path, d.mtime, d.mtime);
}

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
function moveIntoSync(source: string, dest: string): void {
  try {
    renameSync(source, dest);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR') throw e;
    removePathSync(dest);
    renameSync(source, dest);
  }
}

function removePathSync(path: string): void {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return;
  if (st.isDirectory()) rmSync(path, { recursive: true, force: true });
  else unlinkSync(path);
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
