/**
 * The registry store's blob listings. The distribution API cannot enumerate blobs, and a
 * registry only keeps blobs some manifest references, so the store keeps OCI artifact
 * manifests (artifactType `application/vnd.htvend.blobs.v1+json`, empty config, one layer per
 * blob) that list its blobs: `export` pushes one per exported set (`htvend-<hash>` or
 * `?tag=`), `gc` replaces them all with one tagged `htvend-gc`.
 *
 * A registry records no time for a blob, so gc's listing annotates each layer with when gc
 * first saw it (`dev.htvend.first-seen`); blobs from listings without it count as seen now.
 * gc's --min-age is measured from that time: never shorter than the blob's real age.
 */
import { HtvendError } from '../../util/errors.js';
import { sha256Hex, type Digest } from '../../util/digest.js';
import type { RegistryClient } from '../../registry/client.js';
import { EMPTY_JSON, MEDIA_TYPES, type Descriptor, type ImageIndex, type ImageManifest } from '../../registry/types.js';
import type { IoOptions, ListedBlob } from '../store.js';

/** `artifactType` of the manifest that lists exported blobs. */
export const BLOBS_ARTIFACT_TYPE = 'application/vnd.htvend.blobs.v1+json';
/** The tag of the listing `htvend gc` leaves behind. */
export const GC_TAG = 'htvend-gc';
export const FIRST_SEEN = 'dev.htvend.first-seen';
/** Keeps each listing manifest near 1.5 MB, well under registries' 4 MiB manifest limit. */
const LAYERS_PER_MANIFEST = 10_000;

/**
 * Pushes `layers` as a listing tagged `tag`: one manifest, or for many blobs one manifest per
 * 10,000 pushed by digest and a tagged index of them. Returns the tagged digest and every
 * manifest digest pushed.
 */
export async function pushListing(client: RegistryClient, tag: string, layers: Descriptor[], opts: IoOptions = {}): Promise<{ digest: string; manifests: string[] }> {
  if (!(await client.statBlob(EMPTY_JSON.digest.slice(7) as Digest, opts))) await client.putBlob(Buffer.from(EMPTY_JSON.bytes), opts);
  const config: Descriptor = { mediaType: MEDIA_TYPES.ociEmpty, digest: EMPTY_JSON.digest, size: EMPTY_JSON.size };
  const manifests: { body: string; desc: Descriptor }[] = [];
  for (let i = 0; i < Math.max(1, layers.length); i += LAYERS_PER_MANIFEST) {
    const m: ImageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      artifactType: BLOBS_ARTIFACT_TYPE,
      config,
      layers: layers.slice(i, i + LAYERS_PER_MANIFEST),
      annotations: { 'dev.htvend.blobs.count': String(Math.min(LAYERS_PER_MANIFEST, layers.length - i)) },
    };
    const body = JSON.stringify(m);
    manifests.push({ body, desc: { mediaType: MEDIA_TYPES.ociManifest, artifactType: BLOBS_ARTIFACT_TYPE, digest: `sha256:${sha256Hex(body)}`, size: Buffer.byteLength(body) } });
  }
  if (manifests.length === 1) {
    const digest = await client.putManifest(tag, manifests[0]!.body, MEDIA_TYPES.ociManifest, opts);
    return { digest, manifests: [digest] };
  }
  for (const m of manifests) await client.putManifest(m.desc.digest, m.body, MEDIA_TYPES.ociManifest, opts);
  const index: ImageIndex = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, artifactType: BLOBS_ARTIFACT_TYPE, manifests: manifests.map((m) => m.desc) };
  const digest = await client.putManifest(tag, JSON.stringify(index), MEDIA_TYPES.ociIndex, opts);
  return { digest, manifests: [digest, ...manifests.map((m) => m.desc.digest)] };
}

export interface Listings {
  blobs: Map<Digest, { size: number; since: number }>;
  /** Digests of every listing manifest and index read (what gc replaces). */
  manifests: Set<string>;
}

interface ListingDoc {
  artifactType?: string;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}

/** Reads every listing manifest of the repository (all tags whose manifest has our artifactType). */
export async function readListings(client: RegistryClient, opts: IoOptions = {}): Promise<Listings> {
  const out: Listings = { blobs: new Map(), manifests: new Set() };
  const now = Date.now();
  const visit = async (ref: string, depth: number): Promise<void> => {
    const m = await client.getManifest(ref, opts);
    if (out.manifests.has(m.digest)) return;
    let doc: ListingDoc;
    try {
      doc = JSON.parse(m.body.toString('utf8')) as ListingDoc;
    } catch {
      return; // not JSON: not ours
    }
    if (doc.artifactType !== BLOBS_ARTIFACT_TYPE) return;
    out.manifests.add(m.digest);
    for (const l of doc.layers ?? []) {
      const hex = /^sha256:([0-9a-f]{64})$/.exec(l.digest)?.[1] as Digest | undefined;
      if (!hex) continue;
      const seen = Date.parse(l.annotations?.[FIRST_SEEN] ?? '');
      const since = Number.isFinite(seen) ? seen : now;
      const prev = out.blobs.get(hex);
      out.blobs.set(hex, { size: l.size, since: prev ? Math.min(prev.since, since) : since });
    }
    if (depth > 0) throw new HtvendError('STORE', `${client.description}: listing index ${ref} nests indexes`);
    for (const child of doc.manifests ?? []) await visit(child.digest, depth + 1);
  };
  // Every tag: an export's `?tag=` can be any name; manifests that are not listings are skipped.
  for (const tag of await client.listTags(opts)) await visit(tag, 0);
  return out;
}

/** Layers for a listing of `blobs`, each annotated with when gc first saw it. */
export function listingLayers(blobs: readonly ListedBlob[]): Descriptor[] {
  return [...blobs]
    .sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0))
    .map((b) => ({ mediaType: 'application/octet-stream', digest: `sha256:${b.digest}`, size: b.size, annotations: { [FIRST_SEEN]: new Date(b.since).toISOString() } }));
}
