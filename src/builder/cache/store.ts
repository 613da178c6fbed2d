/**
 * The local step cache (docs/build-cache.md, "On disk"):
 *
 *     <dir>/v1/entries/<key>.json   {"entry": {...}, "digest": sha256(canonical JSON of entry)}
 *     <dir>/v1/blobs/<sha256>       layer blobs (gzip tars, as in the image)
 *     <dir>/v1/blobs/<sha256>.ok    stamp: (size, inode, mtime) of the blob when last hashed
 *     <dir>/v1/listings/<sha256>.json  {"listing": [...], "digest": ...}: a layer's paths
 *                                   (fs/listing.ts), by layer digest, for cached and base layers
 *     <dir>/v1/tmp/                 temp files, renamed into place (atomic)
 *
 * Everything is written to a temp file and renamed, blob before entry, so a crash or a full disk
 * never leaves a half entry and concurrent builds only ever see whole files (the same key
 * written twice: the last rename wins, both are valid). A corrupt or truncated entry or blob is
 * found by digest, thrown away with a warning, and the step runs again. Entries are touched on
 * use; `prune()` deletes the least recently used ones above the size limit.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile, copyFile, constants as fsConstants } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { canonicalJson } from '../image/image.js';
import { describeError } from '../../util/errors.js';
import { isDigest, type Digest } from '../../util/digest.js';
import type { Logger } from '../../util/log.js';
import type { LayerInfo, LayerMediaType } from '../fs/types.js';
import type { LayerListing } from '../fs/listing.js';

export interface CachedAsset {
  /** assets.json key. */
  key: string;
  sha256: string;
  size: number;
}

export interface CacheEntry {
  version: 1;
  key: string;
  kind: 'RUN' | 'COPY' | 'ADD';
  /** The instruction, for people reading the cache (never part of matching). */
  text: string;
  layer: { digest: Digest; diffId: Digest; size: number; mediaType: LayerMediaType } | null;
  /** What the step fetched when it ran (every one is asked for again before reuse). */
  assets: CachedAsset[];
  /** Requests that were not assets (methods other than GET/HEAD, --no-cache-response URLs). */
  other: { method: string; key: string }[];
  created: string;
}

export interface CacheHit {
  entry: CacheEntry;
  /** The layer blob, hard-linked (or copied) into the build's temp dir: safe from pruning. */
  layer: LayerInfo | null;
}

interface Stamp {
  size: number;
  ino: string;
  mtimeNs: string;
}

export class CacheStore {
  private readonly root: string;
  constructor(readonly dir: string, private readonly log: Logger, private readonly maxBytes: number) {
    this.root = join(dir, 'v1');
  }

  private entryPath(key: string): string {
    return join(this.root, 'entries', `${key}.json`);
  }
  blobPath(digest: string): string {
    return join(this.root, 'blobs', digest);
  }
  private async tmpPath(): Promise<string> {
    const dir = join(this.root, 'tmp');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return join(dir, `${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  /** The entry for `key` with its blob verified and linked into `tmpDir`, or undefined. */
  async get(key: string, tmpDir: string, signal?: AbortSignal): Promise<CacheHit | undefined> {
    let text: string;
    try {
      text = await readFile(this.entryPath(key), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn(`build cache: cannot read entry ${key}: ${describeError(e)}`);
      return undefined;
    }
    const entry = this.checkEntry(key, text);
    if (!entry) return this.discard(key, 'its digest does not match its content (corrupt or truncated)');
    let layer: LayerInfo | null = null;
    if (entry.layer) {
      const l = entry.layer;
      const problem = await this.verifyBlob(l.digest, l.size, signal);
      if (problem) {
        await rm(this.blobPath(l.digest), { force: true });
        await rm(`${this.blobPath(l.digest)}.ok`, { force: true });
        return this.discard(key, `layer blob sha256:${l.digest} ${problem}`);
      }
      const path = join(tmpDir, `cached-${l.digest}`);
      await rm(path, { force: true });
      await link(this.blobPath(l.digest), path).catch(() => copyFile(this.blobPath(l.digest), path, fsConstants.COPYFILE_FICLONE));
      layer = { ...l, path };
    }
    const now = new Date();
    await utimes(this.entryPath(key), now, now).catch(() => undefined); // LRU
    return { entry, layer };
  }

  /** Parses and checks an entry file against its digest; undefined when anything is off. */
  checkEntry(key: string, text: string): CacheEntry | undefined {
    try {
      const file = JSON.parse(text) as { entry?: CacheEntry; digest?: string };
      if (!file.entry || typeof file.digest !== 'string') return undefined;
      if (createHash('sha256').update(canonicalJson(file.entry)).digest('hex') !== file.digest) return undefined;
      const e = file.entry;
      if (e.version !== 1 || e.key !== key || !Array.isArray(e.assets)) return undefined;
      if (e.layer && (!isDigest(e.layer.digest) || !isDigest(e.layer.diffId))) return undefined;
      return e;
    } catch {
      return undefined;
    }
  }

  private async discard(key: string, why: string): Promise<undefined> {
    this.log.warn(`build cache: entry ${key.slice(0, 12)} thrown away: ${why}; the step runs again`);
    await rm(this.entryPath(key), { force: true }).catch(() => undefined);
    return undefined;
  }

  /**
   * Why the blob cannot be used, or undefined when it is intact: its size must match, and its
   * sha256 too unless a stamp says it was hashed with this inode, size and mtime (a write
   * changes the mtime; hashing a 200 MiB layer on every hit would cost ~1 s here).
   */
  private async verifyBlob(digest: Digest, size: number, signal?: AbortSignal): Promise<string | undefined> {
    const path = this.blobPath(digest);
    let st;
    try {
      st = await stat(path, { bigint: true });
    } catch {
      return 'is missing';
    }
    if (Number(st.size) !== size) return `is ${st.size} bytes, not ${size}`;
    const stamp: Stamp = { size, ino: String(st.ino), mtimeNs: String(st.mtimeNs) };
    const known = await readFile(`${path}.ok`, 'utf8').then((t) => JSON.parse(t) as Stamp, () => undefined);
    if (known && known.size === stamp.size && known.ino === stamp.ino && known.mtimeNs === stamp.mtimeNs) return undefined;
    const h = createHash('sha256');
    for await (const c of createReadStream(path, { highWaterMark: 1 << 20, signal }) as AsyncIterable<Buffer>) h.update(c);
    if (h.digest('hex') !== digest) return 'does not match its digest';
    await this.writeStamp(digest, stamp).catch((e) => this.log.debug(`build cache: no stamp for blob sha256:${digest.slice(0, 12)} (${describeError(e)}); it is hashed again next time`));
    return undefined;
  }

  /**
   * Writes the blob's stamp (temp file, rename). The temp file is removed when either step
   * fails (a full disk, a stamp path that cannot be replaced), so a failure leaves nothing in
   * tmp/; callers treat the failure as harmless: without a stamp the blob is hashed on its next use.
   */
  private async writeStamp(digest: string, stamp: Stamp): Promise<void> {
    const tmp = await this.tmpPath();
    try {
      await writeFile(tmp, JSON.stringify(stamp), { mode: 0o600 });
      await rename(tmp, `${this.blobPath(digest)}.ok`);
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw e;
    }
  }

  /**
   * Stores `entry` (and its layer blob from `layerPath`). Failures (a full disk, permissions)
   * are warnings: the build goes on and nothing half-written is left.
   */
  async put(entry: CacheEntry, layerPath: string | undefined): Promise<boolean> {
    const temps: string[] = [];
    try {
      await mkdir(join(this.root, 'entries'), { recursive: true, mode: 0o700 });
      await mkdir(join(this.root, 'blobs'), { recursive: true, mode: 0o700 });
      if (entry.layer && layerPath) {
        const dest = this.blobPath(entry.layer.digest);
        const have = await stat(dest).then((s) => s.size === entry.layer!.size, () => false);
        if (!have) {
          const tmp = await this.tmpPath();
          temps.push(tmp);
          // A hard link costs nothing; across filesystems the blob is copied.
          await link(layerPath, tmp).catch(() => pipeline(createReadStream(layerPath), createWriteStream(tmp, { mode: 0o600 })));
          const st = await stat(tmp, { bigint: true });
          if (Number(st.size) !== entry.layer.size) throw new Error(`layer ${entry.layer.digest} is ${st.size} bytes, not ${entry.layer.size}`);
          await rename(tmp, dest);
          // The digest was computed while the layer was written: this inode is known good. The
          // blob is whole already, so a stamp that cannot be written only costs a hash later.
          await this.writeStamp(entry.layer.digest, { size: entry.layer.size, ino: String(st.ino), mtimeNs: String(st.mtimeNs) }).catch((e) =>
            this.log.debug(`build cache: no stamp for blob sha256:${entry.layer!.digest.slice(0, 12)} (${describeError(e)}); it is hashed on its first use`),
          );
        }
      }
      const tmp = await this.tmpPath();
      temps.push(tmp);
      await writeFile(tmp, JSON.stringify({ entry, digest: createHash('sha256').update(canonicalJson(entry)).digest('hex') }), { mode: 0o600 });
      await rename(tmp, this.entryPath(entry.key));
      return true;
    } catch (e) {
      this.log.warn(`build cache: could not store the step (${describeError(e)}); the build goes on without it`);
      for (const t of temps) await rm(t, { force: true }).catch(() => undefined);
      return false;
    }
  }

  /** Reads an entry for pushing (checked), or undefined. */
  async readEntry(key: string): Promise<CacheEntry | undefined> {
    const text = await readFile(this.entryPath(key), 'utf8').catch(() => undefined);
    return text === undefined ? undefined : this.checkEntry(key, text);
  }

  /**
   * Deletes least recently used entries until entries + blobs fit in `maxBytes`, then blobs no
   * entry refers to (only those older than an hour: a concurrent build writes its blob before
   * its entry) and stale temp files.
   */
  async prune(): Promise<void> {
    const entriesDir = join(this.root, 'entries');
    const blobsDir = join(this.root, 'blobs');
    const names = await readdir(entriesDir).catch(() => [] as string[]);
    const entries: { key: string; mtime: number; size: number; blob?: string | undefined }[] = [];
    for (const n of names) {
      if (!n.endsWith('.json')) continue;
      const p = join(entriesDir, n);
      const st = await stat(p).catch(() => undefined);
      if (!st) continue;
      const e = this.checkEntry(n.slice(0, -5), await readFile(p, 'utf8').catch(() => ''));
      entries.push({ key: n.slice(0, -5), mtime: st.mtimeMs, size: st.size, blob: e?.layer?.digest });
    }
    const blobSize = new Map<string, number>();
    const hourAgo = Date.now() - 3600_000;
    const blobFiles = await readdir(blobsDir).catch(() => [] as string[]);
    const blobMtime = new Map<string, number>();
    for (const b of blobFiles) {
      if (b.endsWith('.ok')) continue;
      const st = await stat(join(blobsDir, b)).catch(() => undefined);
      if (st) {
        blobSize.set(b, st.size);
        blobMtime.set(b, st.mtimeMs);
      }
    }
    const refs = new Map<string, number>();
    for (const e of entries) if (e.blob) refs.set(e.blob, (refs.get(e.blob) ?? 0) + 1);
    let total = entries.reduce((n, e) => n + e.size, 0) + [...blobSize.values()].reduce((n, s) => n + s, 0);
    entries.sort((a, b) => a.mtime - b.mtime);
    for (const e of entries) {
      if (total <= this.maxBytes) break;
      await rm(join(entriesDir, `${e.key}.json`), { force: true });
      total -= e.size;
      if (e.blob) {
        const left = (refs.get(e.blob) ?? 1) - 1;
        refs.set(e.blob, left);
        if (left === 0 && blobSize.has(e.blob)) {
          await rm(join(blobsDir, e.blob), { force: true });
          await rm(join(blobsDir, `${e.blob}.ok`), { force: true });
          await rm(this.listingPath(e.blob), { force: true });
          total -= blobSize.get(e.blob)!;
          blobSize.delete(e.blob);
        }
      }
    }
    for (const [b] of blobSize) {
      if ((refs.get(b) ?? 0) === 0 && (blobMtime.get(b) ?? 0) < hourAgo) {
        await rm(join(blobsDir, b), { force: true });
        await rm(join(blobsDir, `${b}.ok`), { force: true });
        await rm(this.listingPath(b), { force: true });
      }
    }
    for (const t of await readdir(join(this.root, 'tmp')).catch(() => [] as string[])) {
      const p = join(this.root, 'tmp', t);
      const st = await stat(p).catch(() => undefined);
      if (st && st.mtimeMs < hourAgo) await rm(p, { force: true });
    }
  }

  private listingPath(digest: string): string {
    return join(this.root, 'listings', `${digest}.json`);
  }

  /**
   * The listing of layer `digest` (path, type, link target), checked against its own digest;
   * undefined when absent or damaged (the builder then lists the blob again and stores that).
   */
  async getListing(digest: string): Promise<LayerListing | undefined> {
    if (!isDigest(digest)) return undefined;
    const text = await readFile(this.listingPath(digest), 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    try {
      const file = JSON.parse(text) as { layer?: string; listing?: LayerListing; digest?: string };
      if (file.layer !== digest || !Array.isArray(file.listing)) throw new Error('malformed');
      if (createHash('sha256').update(JSON.stringify(file.listing)).digest('hex') !== file.digest) throw new Error('digest mismatch');
      return file.listing;
    } catch {
      this.log.warn(`build cache: listing of layer sha256:${digest.slice(0, 12)} thrown away (corrupt or truncated); it is read from the layer again`);
      await rm(this.listingPath(digest), { force: true }).catch(() => undefined);
      return undefined;
    }
  }

  /** Stores a layer's listing (atomically; a failure is only logged: it can be listed again). */
  async putListing(digest: string, listing: LayerListing): Promise<void> {
    if (!isDigest(digest)) return;
    let tmp: string | undefined;
    try {
      await mkdir(join(this.root, 'listings'), { recursive: true, mode: 0o700 });
      tmp = await this.tmpPath();
      const body = JSON.stringify(listing);
      await writeFile(tmp, `{"layer":"${digest}","digest":"${createHash('sha256').update(body).digest('hex')}","listing":${body}}`, { mode: 0o600 });
      await rename(tmp, this.listingPath(digest));
    } catch (e) {
      this.log.debug(`build cache: could not store the listing of layer sha256:${digest.slice(0, 12)}: ${describeError(e)}`);
      if (tmp) await rm(tmp, { force: true }).catch(() => undefined);
    }
  }
}
