/**
 * The capture as a list of named assets: what every supply-chain output (SBOMs, the HTML
 * report, image attestations) is made from (SPEC §10). Sorted by URL, so every output built
 * from it is in a stable order.
 */
import { Manifest } from '../manifest/manifest.js';
import type { AssetEntry } from '../manifest/types.js';
import type { Digest } from '../util/digest.js';
import type { BlobStore } from '../store/store.js';
import { packageOf } from '../purl/from-url.js';
import type { PackageRef } from '../purl/types.js';
import { compareUtf8 } from '../manifest/gojson.js';

export interface InventoryAsset {
  /** The assets.json key (credentials already redacted by the recorder). */
  url: string;
  sha256: Digest;
  /** Bytes: the recorded Content-Length, else the blob store's size; undefined if neither knows. */
  size?: number | undefined;
  contentType?: string | undefined;
  host: string;
  pkg: PackageRef;
}

/** Sizes from a blob store, opened only if some entry needs one (and closed by `close`). */
export function storeSizes(open: () => Promise<BlobStore>): { sizeOf: NonNullable<LoadInventoryOptions['sizeOf']>; close: () => Promise<void> } {
  let store: Promise<BlobStore> | undefined;
  return {
    sizeOf: async (sha256, signal) => (await (store ??= open()).then((s) => s.stat(sha256, { signal })))?.size,
    close: async () => {
      if (store) await (await store.catch(() => undefined))?.close?.();
    },
  };
}

export interface Inventory {
  assets: InventoryAsset[];
}

export interface LoadInventoryOptions {
  /** Asked for the size of assets whose entry has no Content-Length (e.g. a blob store's stat). */
  sizeOf?: ((sha256: Digest, signal?: AbortSignal) => Promise<number | undefined>) | undefined;
  signal?: AbortSignal | undefined;
}

/** Reads assets.json (read-only, no lock). Errors name the file (INPUT / NOT_FOUND / IO). */
export async function loadInventory(manifestPath: string, opts: LoadInventoryOptions = {}): Promise<Inventory> {
  const manifest = await Manifest.open(manifestPath, { mode: 'read', signal: opts.signal });
  try {
    return await inventoryOf(manifest.entries(), opts);
  } finally {
    await manifest.close();
  }
}

export async function inventoryOf(entries: ReadonlyMap<string, AssetEntry>, opts: LoadInventoryOptions = {}): Promise<Inventory> {
  const assets: InventoryAsset[] = [];
  for (const url of [...entries.keys()].sort(compareUtf8)) {
    const e = entries.get(url)!;
    let size = contentLength(e.Headers);
    if (size === undefined && opts.sizeOf) size = await opts.sizeOf(e.Sha256, opts.signal);
    assets.push({
      url,
      sha256: e.Sha256,
      size,
      contentType: header(e.Headers, 'Content-Type'),
      host: hostOf(url),
      pkg: packageOf(url, { sha256: e.Sha256 }),
    });
  }
  return { assets };
}

function header(h: Record<string, string>, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(h)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

function contentLength(h: Record<string, string>): number | undefined {
  const v = header(h, 'Content-Length');
  return v !== undefined && /^\d+$/.test(v.trim()) ? Number(v.trim()) : undefined;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host.toLowerCase();
  } catch {
    return '(unparsable URL)';
  }
}

export interface Totals {
  assets: number;
  /** Sum of known sizes. */
  bytes: number;
  /** Assets whose size is unknown (not in `bytes`). */
  unknownSize: number;
  hosts: number;
  mutableIndexes: number;
}

export function totalsOf(inv: Inventory): Totals {
  let bytes = 0;
  let unknownSize = 0;
  let mutableIndexes = 0;
  const hosts = new Set<string>();
  for (const a of inv.assets) {
    if (a.size === undefined) unknownSize++;
    else bytes += a.size;
    if (a.pkg.mutableIndex) mutableIndexes++;
    hosts.add(a.host);
  }
  return { assets: inv.assets.length, bytes, unknownSize, hosts: hosts.size, mutableIndexes };
}
