/**
 * What an output writes: the blobs (layers as files, JSON blobs in memory — they are small)
 * and the top-level descriptor(s) of the built images. Shared by every output format.
 */
import { imageBlobs, indexBlob, type JsonBlob } from '../image/image.js';
import type { BuiltImage } from '../build/build.js';
import type { AttestationManifest } from '../../supply/attest/layout.js';

export interface OutputBlob {
  digest: string;
  size: number;
  /** Either a file on disk or bytes. */
  path?: string;
  bytes?: Buffer;
}

export interface ImageSet {
  blobs: OutputBlob[];
  /** Per platform: config + manifest. */
  manifests: { built: BuiltImage; config: JsonBlob; manifest: JsonBlob }[];
  /** The OCI index over all platforms (written as a nested index when there are several). */
  index: JsonBlob;
  /** Attestation manifests in the index (docs/supply-chain.md); none without --provenance/--sbom. */
  attestations: AttestationManifest[];
}

/** Whether users refer to the index (several platforms, or attestations beside the image) rather than the one manifest. */
export function topIsIndex(set: ImageSet): boolean {
  return set.manifests.length > 1 || set.attestations.length > 0;
}

/** The image manifest of a built image (the subject its attestations name), as `collectBlobs` writes it. */
export function manifestOf(built: BuiltImage): JsonBlob {
  return imageBlobs(built.image).manifest;
}

export function collectBlobs(images: BuiltImage[], attestations: readonly AttestationManifest[] = []): ImageSet {
  const blobs = new Map<string, OutputBlob>();
  const manifests: ImageSet['manifests'] = [];
  for (const built of images) {
    const { config, manifest } = imageBlobs(built.image);
    for (const l of built.image.layers) blobs.set(l.digest, { digest: l.digest, size: l.size, path: l.path });
    blobs.set(config.digest, { digest: config.digest, size: config.bytes.length, bytes: config.bytes });
    blobs.set(manifest.digest, { digest: manifest.digest, size: manifest.bytes.length, bytes: manifest.bytes });
    manifests.push({ built, config, manifest });
  }
  for (const a of attestations) {
    for (const b of [a.manifest, a.config, ...a.layers]) blobs.set(b.digest, { digest: b.digest, size: b.bytes.length, bytes: b.bytes });
  }
  // Image manifests first, then their attestation manifests (platform unknown/unknown), as BuildKit orders them.
  const index = indexBlob([
    ...manifests.map((m) => ({ manifest: m.manifest, platform: m.built.platform })),
    ...attestations.map((a) => ({ manifest: a.manifest, platform: { os: 'unknown', architecture: 'unknown' }, annotations: a.annotations })),
  ]);
  const set: ImageSet = { blobs: [], manifests, index, attestations: [...attestations] };
  if (topIsIndex(set)) blobs.set(index.digest, { digest: index.digest, size: index.bytes.length, bytes: index.bytes });
  set.blobs = [...blobs.values()].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  return set;
}

/** The annotation naming an image in an OCI layout's index.json (`oci:DIR:name`). */
export const REF_NAME = 'org.opencontainers.image.ref.name';

export interface LayoutDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  [k: string]: unknown;
}

export interface LayoutIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: LayoutDescriptor[];
  [k: string]: unknown;
}

/** The index.json entry for the built image(s): the single manifest, or the nested index for several platforms. */
function layoutEntry(set: ImageSet, refName?: string): LayoutDescriptor {
  const top = topIsIndex(set) ? set.index : set.manifests[0]!.manifest;
  return { mediaType: top.mediaType, digest: `sha256:${top.digest}`, size: top.bytes.length, ...(refName ? { annotations: { [REF_NAME]: refName } } : {}) };
}

/** The `index.json` of a new OCI layout holding the built image(s). */
export function layoutIndex(set: ImageSet, refName?: string): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [layoutEntry(set, refName)] }));
}

/**
 * `existing` index.json with the built image(s) added: the entry of the same name (or, for an
 * unnamed write, every unnamed entry) is replaced, every other image is kept, as writing a
 * tag does in a registry.
 */
export function mergeLayoutIndex(existing: LayoutIndex, set: ImageSet, refName?: string): Buffer {
  const kept = existing.manifests.filter((m) => m.annotations?.[REF_NAME] !== refName);
  return Buffer.from(JSON.stringify({ ...existing, manifests: [...kept, layoutEntry(set, refName)] }));
}
