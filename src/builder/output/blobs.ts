/**
 * What an output writes: the blobs (layers as files, JSON blobs in memory — they are small)
 * and the top-level descriptor(s) of the built images. Shared by every output format.
 */
import { imageBlobs, indexBlob, type JsonBlob } from '../image/image.js';
import type { BuiltImage } from '../build/build.js';

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
}

export function collectBlobs(images: BuiltImage[]): ImageSet {
  const blobs = new Map<string, OutputBlob>();
  const manifests: ImageSet['manifests'] = [];
  for (const built of images) {
    const { config, manifest } = imageBlobs(built.image);
    for (const l of built.image.layers) blobs.set(l.digest, { digest: l.digest, size: l.size, path: l.path });
    blobs.set(config.digest, { digest: config.digest, size: config.bytes.length, bytes: config.bytes });
    blobs.set(manifest.digest, { digest: manifest.digest, size: manifest.bytes.length, bytes: manifest.bytes });
    manifests.push({ built, config, manifest });
  }
  const index = indexBlob(manifests.map((m) => ({ manifest: m.manifest, platform: m.built.platform })));
  if (manifests.length > 1) blobs.set(index.digest, { digest: index.digest, size: index.bytes.length, bytes: index.bytes });
  return { blobs: [...blobs.values()].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0)), manifests, index };
}

/** The `index.json` of an OCI layout: the single manifest, or the nested index for several platforms. */
export function layoutIndex(set: ImageSet, refName?: string): Buffer {
  const ann = refName ? { annotations: { 'org.opencontainers.image.ref.name': refName } } : {};
  const entry =
    set.manifests.length === 1
      ? { mediaType: set.manifests[0]!.manifest.mediaType, digest: `sha256:${set.manifests[0]!.manifest.digest}`, size: set.manifests[0]!.manifest.bytes.length, ...ann }
      : { mediaType: set.index.mediaType, digest: `sha256:${set.index.digest}`, size: set.index.bytes.length, ...ann };
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [entry] }));
}
