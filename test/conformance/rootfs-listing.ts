/**
 * The final root filesystem of an image as a normalised listing, read straight from its layer
 * tars (an OCI layout written by us, or a docker-archive written by buildah), so both builders'
 * images go through the same reader: layers applied in order, `.wh.` whiteouts and
 * `.wh..wh..opq` opaque markers honoured against lower layers, hard links tracked as groups.
 *
 * Each entry: path, type, mode (12 permission bits), uid/gid, size and sha256 (regular files),
 * link target (symlinks) and hard-link group (the smallest path of the group, when >1).
 * mtimes are left out on purpose: buildah stamps build time, we stamp SOURCE_DATE_EPOCH.
 */
import { createReadStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import { join, posix } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

export interface ListedEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  sha256?: string;
  target?: string;
  /** Smallest path of this entry's hard-link group, when the group has more than one path. */
  hardlinks?: string;
  /** Contents of small regular files (≤ 64 KiB), for cases that assert on them. */
  content?: Buffer;
  /** Internal: identity shared by hard-linked paths. */
  inode: number;
}

export type Listing = Map<string, ListedEntry>;

/** Layer blob paths of the one image in an OCI layout (`index.json` → [index →] manifest). */
export async function ociLayers(layout: string): Promise<string[]> {
  const blob = (d: string) => join(layout, 'blobs', d.replace(':', '/'));
  let desc = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')).manifests[0];
  for (;;) {
    const doc = JSON.parse(await readFile(blob(desc.digest), 'utf8'));
    if (doc.manifests) desc = doc.manifests[0];
    else return (doc.layers as { digest: string }[]).map((l) => blob(l.digest));
  }
}

/** Layer paths of an unpacked docker-archive (`manifest.json` → Layers). */
export async function dockerArchiveLayers(dir: string): Promise<string[]> {
  const m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
  return (m[0].Layers as string[]).map((l) => join(dir, l));
}

const clean = (name: string) => posix.normalize('/' + name).replace(/^\/+/, '').replace(/\/+$/, '');

/** Reads a layer (plain or gzip tar) into its entries and whiteouts, hashing file contents. */
async function readLayer(file: string, nextInode: () => number) {
  const entries: (ListedEntry & { linkTo?: string })[] = [];
  const whiteouts: string[] = [];
  const opaques: string[] = [];
  const head = Buffer.alloc(2);
  const fh = await open(file);
  await fh.read(head, 0, 2, 0);
  await fh.close();
  const gz = head[0] === 0x1f && head[1] === 0x8b;
  const extract = tar.extract();
  extract.on('entry', (h, stream: Readable, next) => {
    const path = clean(h.name);
    const base = posix.basename(path);
    const dir = posix.dirname(path) === '.' ? '' : posix.dirname(path);
    const done = (e?: ListedEntry & { linkTo?: string }) => {
      if (e) entries.push(e);
      next();
    };
    if (base === '.wh..wh..opq') return stream.resume().on('end', () => { opaques.push(dir); done(); });
    if (base.startsWith('.wh.')) return stream.resume().on('end', () => { whiteouts.push(dir ? `${dir}/${base.slice(4)}` : base.slice(4)); done(); });
    if (path === '') return stream.resume().on('end', () => done());
    const common = { path, mode: (h.mode ?? 0) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0, inode: nextInode() };
    if (h.type === 'file' || h.type === 'contiguous-file') {
      const hash = createHash('sha256');
      let size = 0;
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => {
        hash.update(c);
        size += c.length;
        if (size <= 65536) chunks.push(c);
      });
      stream.on('end', () => done({ ...common, type: 'file', size, sha256: hash.digest('hex'), ...(size <= 65536 ? { content: Buffer.concat(chunks) } : {}) }));
      return;
    }
    stream.resume();
    stream.on('end', () => {
      switch (h.type) {
        case 'directory': return done({ ...common, type: 'dir' });
        case 'symlink': return done({ ...common, mode: 0o777, type: 'symlink', target: h.linkname ?? '' });
        case 'link': return done({ ...common, type: 'file', linkTo: clean(h.linkname ?? '') });
        case 'character-device': return done({ ...common, type: 'char', target: `${h.devmajor}:${h.devminor}` });
        case 'block-device': return done({ ...common, type: 'block', target: `${h.devmajor}:${h.devminor}` });
        case 'fifo': return done({ ...common, type: 'fifo' });
        default: return done();
      }
    });
  });
  const src = createReadStream(file);
  await pipeline(src, gz ? createGunzip() : new PassThrough(), extract);
  return { entries, whiteouts, opaques };
}

/** Applies every layer in order and returns the final tree (hard-link groups resolved). */
export async function listRootfs(layers: string[]): Promise<Listing> {
  const tree: Listing = new Map();
  let inode = 0;
  const removeTree = (p: string, keepSelf: boolean) => {
    for (const k of [...tree.keys()]) if ((!keepSelf && k === p) || k.startsWith(p === '' ? '' : p + '/')) tree.delete(k);
  };
  for (const layer of layers) {
    const { entries, whiteouts, opaques } = await readLayer(layer, () => ++inode);
    for (const o of opaques) removeTree(o, true);
    for (const w of whiteouts) removeTree(w, false);
    for (const e of entries) {
      const old = tree.get(e.path);
      if (old && old.type === 'dir' && e.type !== 'dir') removeTree(e.path, false);
      if (e.linkTo !== undefined) {
        const target = tree.get(e.linkTo);
        const { linkTo, ...rest } = e;
        tree.set(e.path, target ? { ...target, path: e.path } : { ...rest, target: `hardlink to missing ${linkTo}` });
        continue;
      }
      tree.set(e.path, e);
    }
  }
  const groups = new Map<number, string[]>();
  for (const e of tree.values()) groups.set(e.inode, [...(groups.get(e.inode) ?? []), e.path]);
  for (const e of tree.values()) {
    const g = groups.get(e.inode)!;
    if (g.length > 1) e.hardlinks = g.sort()[0];
  }
  return tree;
}

/** One line per entry, stable and diff-friendly: `path type mode uid:gid [size sha] [-> target] [hl=group]`. */
export function formatEntry(e: ListedEntry): string {
  const parts = [`/${e.path}`, e.type, e.mode.toString(8).padStart(4, '0'), `${e.uid}:${e.gid}`];
  if (e.type === 'file') parts.push(String(e.size), (e.sha256 ?? '').slice(0, 16));
  if (e.target !== undefined) parts.push(`-> ${e.target}`);
  if (e.hardlinks) parts.push(`hl=${e.hardlinks}`);
  return parts.join(' ');
}
