/**
 * The fallback when overlayfs cannot be mounted (or `BUILD_IMG_SNAPSHOT=copy`): the step runs
 * on a full copy of the rootfs, and its changes are found by comparing the copy with the
 * untouched original: type, mode, owner, size, mtime (ns), symlink target, and for regular
 * files whose metadata all match but whose ctime moved after the copy was made, the content.
 * Extended attributes are compared too (a `setfattr` changes only the ctime) and written with
 * each entry, as the overlay snapshot writes the upper dir's. A directory re-made by the step
 * (birth time after the copy, where the original had one) becomes an opaque dir, as overlay
 * records it, so the layers equal the overlay snapshot's.
 * Slower than overlay (a full copy per step) but needs nothing from the kernel.
 */
import { createReadStream, type BigIntStats } from 'node:fs';
import { chmod, chown, lstat, readdir, readlink, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { LayerEntry } from '../fs/types.js';
import { comparePaths } from '../fs/layer-writer.js';
import { mustRunTool } from './exec.js';
import { isLayerXattr, readXattrsRecursive, type XattrMap } from './xattrs.js';
import type { MountStubs } from './upper.js';

/** Copies `lower` to `copy` (preserving owners, modes, times, hard links) and returns the copy's birth mark. */
export async function makeCopySnapshot(lower: string, copy: string, signal?: AbortSignal): Promise<bigint> {
  await mustRunTool(['cp', '-a', '--reflink=auto', '-T', lower, copy], 'copying the rootfs for the RUN step', signal);
  // Like an overlay's merged root (which takes the fresh upperdir's 0755 root:root): the
  // builder's working dir may be a 0700 temp dir, which would lock non-root users out.
  await chmod(copy, 0o755);
  await chown(copy, 0, 0);
  // Files written after this instant have a later ctime than anything cp made.
  // cp -a sets a directory's times after filling it, so the root's ctime is the latest.
  return (await lstat(copy, { bigint: true })).ctimeNs;
}

/** Removes runtime-made mountpoint stubs (still empty) from the copy. */
export async function dropStubsFromCopy(copy: string, stubs: MountStubs): Promise<void> {
  const deepestFirst = [...stubs.created].sort((a, b) => b.split('/').length - a.split('/').length);
  for (const rel of deepestFirst) {
    const p = join(copy, rel);
    const st = await lstat(p).catch(() => undefined);
    if (!st) continue;
    if (st.isFile() && st.size === 0) await unlink(p);
    else if (st.isDirectory()) await rmdir(p).catch(() => {}); // not empty: the step put something there
  }
}

/**
 * Entries describing how `after` differs from `before` (parents of changes included).
 * `touchedDirs` are directories whose mtime the runtime changed by making (now removed)
 * mountpoints in them: their mtime alone is not a change.
 */
export async function diffTrees(before: string, after: string, copyMark: bigint, touchedDirs: Set<string>, signal?: AbortSignal): Promise<LayerEntry[]> {
  const changed = new Map<string, LayerEntry>();
  const inodes = new Map<string, string[]>();
  // One getfattr per tree (Node has no xattr API); both trees at once.
  const [xBefore, xAfter] = await Promise.all([readXattrsRecursive(before, signal), readXattrsRecursive(after, signal)]);
  const xattrsOf = (map: XattrMap, root: string, rel: string) => layerXattrs(map.get(rel ? join(root, rel) : root));
  const add = async (rel: string, st: BigIntStats) => {
    const e = await entryFor(join(after, rel), rel, st, xattrsOf(xAfter, after, rel));
    if (!e) return;
    changed.set(rel, e);
    if (e.type === 'file' && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      inodes.set(key, [...(inodes.get(key) ?? []), rel]);
    }
  };
  const addTree = async (rel: string, st: BigIntStats) => {
    await add(rel, st);
    if (!st.isDirectory()) return;
    for (const n of (await readdir(join(after, rel))).sort(comparePaths)) {
      const c = `${rel}/${n}`;
      await addTree(c, await lstat(join(after, c), { bigint: true }));
    }
  };
  const walk = async (rel: string): Promise<void> => {
    signal?.throwIfAborted();
    const a = (await readdir(join(after, rel))).sort(comparePaths);
    const b = new Set(await readdir(join(before, rel)));
    // A directory's stats in parallel (one await per file is the slow part of a big tree).
    const statsA = await Promise.all(a.map((n) => lstat(join(after, rel, n), { bigint: true })));
    const statsB = await Promise.all(a.map((n) => (b.has(n) ? lstat(join(before, rel, n), { bigint: true }) : undefined)));
    for (let i = 0; i < a.length; i++) {
      const n = a[i]!;
      const c = rel ? `${rel}/${n}` : n;
      const sa = statsA[i]!;
      const sb = statsB[i];
      if (!sb) {
        await addTree(c, sa);
        continue;
      }
      b.delete(n);
      if (kind(sa) !== kind(sb)) {
        await addTree(c, sa);
        continue;
      }
      // A directory born after the copy where one already was: the step removed it and made
      // it again (`rm -rf d && mkdir d`). Overlay marks such a dir opaque instead of whiting
      // out each old child; do the same so both snapshots give the same layer bytes.
      if (sa.isDirectory() && sa.birthtimeNs > copyMark) {
        await addTree(c, sa);
        changed.set(`${c}\0opaque`, { type: 'opaque', path: c });
        continue;
      }
      const xattrsChanged = !sameXattrs(xattrsOf(xBefore, before, c), xattrsOf(xAfter, after, c));
      if (xattrsChanged || (await differs(join(before, c), join(after, c), sb, sa, copyMark, touchedDirs.has(c)))) await add(c, sa);
      if (sa.isDirectory()) await walk(c);
    }
    for (const gone of b) changed.set(rel ? `${rel}/${gone}` : gone, { type: 'whiteout', path: rel ? `${rel}/${gone}` : gone });
  };
  await walk('');
  // Parents of every change, like an overlay upper dir has them.
  for (const rel of [...changed.keys()]) {
    for (let i = rel.lastIndexOf('/'); i > 0; i = rel.lastIndexOf('/', i - 1)) {
      const parent = rel.slice(0, i);
      if (!changed.has(parent)) await add(parent, await lstat(join(after, parent), { bigint: true }));
    }
  }
  for (const paths of inodes.values()) {
    paths.sort(comparePaths);
    for (const p of paths.slice(1)) {
      const e = changed.get(p)!;
      changed.set(p, { type: 'hardlink', path: p, target: paths[0]!, uid: (e as { uid?: number }).uid, gid: (e as { gid?: number }).gid });
    }
  }
  return [...changed.values()];
}

/** The attributes an image layer carries (none of overlay's own, none of the host's labels). */
function layerXattrs(all: Map<string, Buffer> | undefined): Record<string, Buffer> | undefined {
  const kept = all ? [...all].filter(([k]) => isLayerXattr(k)) : [];
  return kept.length > 0 ? Object.fromEntries(kept) : undefined;
}

function sameXattrs(a: Record<string, Buffer> | undefined, b: Record<string, Buffer> | undefined): boolean {
  const ka = Object.keys(a ?? {});
  if (ka.length !== Object.keys(b ?? {}).length) return false;
  return ka.every((k) => b?.[k] !== undefined && a![k]!.equals(b[k]!));
}

function kind(st: BigIntStats): string {
  return st.isDirectory() ? 'd' : st.isFile() ? 'f' : st.isSymbolicLink() ? 'l' : 'o';
}

async function differs(pb: string, pa: string, sb: BigIntStats, sa: BigIntStats, copyMark: bigint, ignoreMtime: boolean): Promise<boolean> {
  if (sb.mode !== sa.mode || sb.uid !== sa.uid || sb.gid !== sa.gid) return true;
  if (sb.mtimeNs !== sa.mtimeNs && !ignoreMtime) return true;
  if (sa.isSymbolicLink()) return (await readlink(pb)) !== (await readlink(pa));
  if (!sa.isFile()) return false;
  if (sb.size !== sa.size) return true;
  // Untouched since the copy: cp wrote it, nothing else did.
  if (sa.ctimeNs <= copyMark) return false;
  return !(await sameContent(pb, pa));
}

async function sameContent(a: string, b: string): Promise<boolean> {
  const ra = createReadStream(a, { highWaterMark: 1 << 20 })[Symbol.asyncIterator]();
  const rb = createReadStream(b, { highWaterMark: 1 << 20 })[Symbol.asyncIterator]();
  let bufA: Buffer = Buffer.alloc(0);
  let bufB: Buffer = Buffer.alloc(0);
  try {
    for (;;) {
      if (bufA.length === 0) {
        const n = await ra.next();
        bufA = n.done ? Buffer.alloc(0) : (n.value as Buffer);
        if (n.done && bufB.length === 0) return (await rb.next()).done === true;
      }
      if (bufB.length === 0) {
        const n = await rb.next();
        if (n.done) return false;
        bufB = n.value as Buffer;
      }
      if (bufA.length === 0) return false;
      const len = Math.min(bufA.length, bufB.length);
      if (!bufA.subarray(0, len).equals(bufB.subarray(0, len))) return false;
      bufA = bufA.subarray(len);
      bufB = bufB.subarray(len);
    }
  } finally {
    await ra.return?.();
    await rb.return?.();
  }
}

async function entryFor(abs: string, rel: string, st: BigIntStats, xattrs: Record<string, Buffer> | undefined): Promise<LayerEntry | undefined> {
  const base = { path: rel, uid: Number(st.uid), gid: Number(st.gid), mtime: Number(st.mtimeNs / 1_000_000_000n), ...(xattrs ? { xattrs } : {}) };
  const mode = Number(st.mode) & 0o7777;
  if (st.isDirectory()) return { type: 'dir', mode, ...base };
  if (st.isFile()) return { type: 'file', source: abs, mode, size: Number(st.size), ...base };
  if (st.isSymbolicLink()) return { type: 'symlink', target: await readlink(abs), ...base };
  return undefined;
}
