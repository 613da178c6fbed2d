/**
 * Images as immutable values changed by pure functions (after go-containerregistry's `mutate`):
 * an `Image` is its OCI config plus its layers (blob files on disk with their digests). Nothing
 * here does I/O; the JSON encoders are canonical (keys sorted, no whitespace) so the same image
 * always serialises to the same bytes and therefore the same digest.
 */
import type { Platform } from '../../registry/types.js';
import type { LayerMediaType } from '../fs/types.js';
import type { Digest } from '../../util/digest.js';
import { sha256Hex } from '../../util/digest.js';

/** The `config` member of an OCI image config (runtime defaults). */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  /** Docker extensions kept in OCI configs by buildah/docker. */
  Healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; StartInterval?: number; Retries?: number };
  OnBuild?: string[] | null;
  Shell?: string[];
  ArgsEscaped?: boolean;
  [k: string]: unknown;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  config: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: HistoryEntry[];
  [k: string]: unknown;
}

/** A layer of an image: a blob file on disk plus its digests. */
export interface ImageLayer {
  /** Compressed (as stored) digest. */
  digest: Digest;
  diffId: Digest;
  size: number;
  mediaType: LayerMediaType | string;
  /** Host path of the blob (in the build's temp dir). */
  path: string;
}

export interface Image {
  readonly config: Readonly<ImageConfig>;
  readonly layers: readonly ImageLayer[];
}

/** An empty image (`FROM scratch`) for a platform. */
export function scratchImage(p: Platform): Image {
  return {
    config: {
      architecture: p.architecture,
      os: p.os,
      ...(p.variant ? { variant: p.variant } : {}),
      config: {},
      rootfs: { type: 'layers', diff_ids: [] },
      history: [],
    },
    layers: [],
  };
}

/** A new image with `layer` on top, its diff_id appended and a history entry for it. */
export function appendLayer(img: Image, layer: ImageLayer, history: HistoryEntry): Image {
  return {
    config: {
      ...img.config,
      rootfs: { type: 'layers', diff_ids: [...img.config.rootfs.diff_ids, `sha256:${layer.diffId}`] },
      history: [...(img.config.history ?? []), { ...history, empty_layer: undefined }].map(stripUndefined),
    },
    layers: [...img.layers, layer],
  };
}

/** A new image whose runtime config is `change(old)`. */
export function withConfig(img: Image, change: (c: Readonly<ContainerConfig>) => ContainerConfig): Image {
  return { ...img, config: { ...img.config, config: change(img.config.config) } };
}

/** A new image with a history entry that adds no layer (ENV, CMD, …). */
export function withHistory(img: Image, history: HistoryEntry): Image {
  return { ...img, config: { ...img.config, history: [...(img.config.history ?? []), stripUndefined({ ...history, empty_layer: true })] } };
}

/** A new image with top-level config fields replaced (created, author, platform). */
export function withImageFields(img: Image, fields: Partial<Omit<ImageConfig, 'config' | 'rootfs'>>): Image {
  return { ...img, config: stripUndefined({ ...img.config, ...fields }) as ImageConfig };
}

function stripUndefined<T extends object>(o: T): T {
  const out = { ...o } as Record<string, unknown>;
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out as T;
}

/** JSON with object keys sorted recursively and no whitespace: one value, one byte string. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(o).sort()) if (o[k] !== undefined) out[k] = sortKeys(o[k]);
    return out;
  }
  return v;
}

/** A small JSON blob (config, manifest, index) with its digest. */
export interface JsonBlob {
  bytes: Buffer;
  digest: Digest;
  mediaType: string;
}

export function jsonBlob(value: unknown, mediaType: string): JsonBlob {
  const bytes = Buffer.from(canonicalJson(value));
  return { bytes, digest: sha256Hex(bytes), mediaType };
}

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';

/** Maps Docker layer media types to their OCI equivalents (same bytes, OCI manifest). */
function ociLayerType(mt: string): string {
  if (mt === 'application/vnd.docker.image.rootfs.diff.tar.gzip') return 'application/vnd.oci.image.layer.v1.tar+gzip';
  if (mt === 'application/vnd.docker.image.rootfs.diff.tar') return 'application/vnd.oci.image.layer.v1.tar';
  return mt;
}

/** The config blob and the OCI manifest blob of an image. */
export function imageBlobs(img: Image, annotations?: Record<string, string>): { config: JsonBlob; manifest: JsonBlob } {
  const config = jsonBlob(img.config, OCI_CONFIG);
  const manifest = jsonBlob(
    {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: `sha256:${config.digest}`, size: config.bytes.length },
      layers: img.layers.map((l) => ({ mediaType: ociLayerType(l.mediaType), digest: `sha256:${l.digest}`, size: l.size })),
      ...(annotations && Object.keys(annotations).length ? { annotations } : {}),
    },
    OCI_MANIFEST,
  );
  return { config, manifest };
}

/** Platform of an image, from its config. */
export function imagePlatform(img: Image): Platform {
  return { os: img.config.os, architecture: img.config.architecture, ...(img.config.variant ? { variant: img.config.variant } : {}) };
}

/** An OCI index over built manifests. */
export function indexBlob(entries: { manifest: JsonBlob; platform: Platform; annotations?: Record<string, string> }[]): JsonBlob {
  return jsonBlob(
    {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: entries.map((e) => ({
        mediaType: OCI_MANIFEST,
        digest: `sha256:${e.manifest.digest}`,
        size: e.manifest.bytes.length,
        platform: { architecture: e.platform.architecture, os: e.platform.os, ...(e.platform.variant ? { variant: e.platform.variant } : {}) },
        ...(e.annotations ? { annotations: e.annotations } : {}),
      })),
    },
    OCI_INDEX,
  );
}
