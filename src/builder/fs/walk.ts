/**
 * Directory trees → layer entries: `walkTree` turns a host directory into entries (COPY
 * sources and ADD archives). A RUN step's overlay upper dir has its own walker
 * (run/upper.ts: whiteouts, opaque dirs, xattrs, mountpoint stubs).
 */
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Stats } from 'node:fs';
import type { LayerEntry } from './types.js';
import { comparePaths } from './layer-writer.js';
import { applyChmod, type Chmod } from './chmod.js';

export interface WalkOptions {
  /** Layer path prefix for the tree's root (e.g. `app/src`); '' = the image root. */
  prefix?: string;
  /** Include an entry for the root directory itself (under `prefix`). Default false. */
  includeRoot?: boolean;
  /** Skip a path (layer path, relative); a skipped directory is not descended into. */
  exclude?: (layerPath: string, st: Stats) => boolean;
  /** Override ownership of every entry (COPY --chown). */
  chown?: { uid: number; gid: number };
  /** Override permissions (COPY --chmod): files and dirs alike, like BuildKit. */
  chmod?: Chmod;
  signal?: AbortSignal;
}

function join2(prefix: string, name: string): string {
  return prefix === '' ? name : `${prefix}/${name}`;
}

/**
 * Walks `root` (not following symlinks) and returns its entries sorted by path, with files
 * that share an inode turned into hard links to the first one in sorted order.
 * Device nodes, sockets and fifos are skipped (never meaningful in a built layer).
 */
export async function walkTree(root: string, opts: WalkOptions = {}): Promise<LayerEntry[]> {
  const out: LayerEntry[] = [];
  const prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
  const own = (st: Stats) => (opts.chown ? { uid: opts.chown.uid, gid: opts.chown.gid } : { uid: st.uid, gid: st.gid });
  const mtime = (st: Stats) => Math.floor(st.mtimeMs / 1000);
  const rootSt = await lstat(root);
  if (opts.includeRoot && prefix !== '') {
    out.push({ type: 'dir', path: prefix, mode: opts.chmod === undefined ? rootSt.mode & 0o7777 : applyChmod(opts.chmod, rootSt.mode, true), ...own(rootSt), mtime: mtime(rootSt) });
  }
  const inodes = new Map<string, { path: string; st: Stats }[]>();
  const visit = async (abs: string, rel: string): Promise<void> => {
    opts.signal?.throwIfAborted();
    const names = (await readdir(abs)).sort(comparePaths);
    for (const name of names) {
      const a = join(abs, name);
      const r = join2(rel, name);
      const st = await lstat(a);
      if (opts.exclude?.(r, st)) continue;
      if (st.isDirectory()) {
        out.push({ type: 'dir', path: r, mode: opts.chmod === undefined ? st.mode & 0o7777 : applyChmod(opts.chmod, st.mode, true), ...own(st), mtime: mtime(st) });
        await visit(a, r);
      } else if (st.isFile()) {
        out.push({ type: 'file', path: r, source: a, size: st.size, mode: opts.chmod === undefined ? st.mode & 0o7777 : applyChmod(opts.chmod, st.mode, false), ...own(st), mtime: mtime(st) });
        if (st.nlink > 1) {
          const key = `${st.dev}:${st.ino}`;
          const list = inodes.get(key) ?? [];
          list.push({ path: r, st });
          inodes.set(key, list);
        }
      } else if (st.isSymbolicLink()) {
        out.push({ type: 'symlink', path: r, target: await readlink(a), ...own(st), mtime: mtime(st) });
      }
    }
  };
  if (rootSt.isDirectory()) await visit(root, prefix);
  // Hard links: the first path in byte order keeps the data, later ones link to it.
  if (inodes.size > 0) {
    const linkTo = new Map<string, string>();
    for (const list of inodes.values()) {
      if (list.length < 2) continue;
      list.sort((x, y) => comparePaths(x.path, y.path));
      for (const l of list.slice(1)) linkTo.set(l.path, list[0]!.path);
    }
    for (let i = 0; i < out.length; i++) {
      const e = out[i]!;
      const target = linkTo.get(e.path);
      if (target !== undefined && e.type === 'file') out[i] = { type: 'hardlink', path: e.path, target, uid: e.uid, gid: e.gid, mtime: e.mtime };
    }
  }
  return out;
}
