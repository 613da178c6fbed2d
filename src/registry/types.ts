/**
 * OCI distribution / image-spec vocabulary shared by the registry client, the registry blob
 * store and the image builder: media types and the JSON shapes of descriptors, manifests and
 * indexes (https://github.com/opencontainers/image-spec). Types only, plus constants.
 */

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** Media types of single-platform image manifests (Docker schema 2 and OCI). */
export const IMAGE_MANIFEST_TYPES: readonly string[] = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest];
/** Media types of multi-platform indexes (OCI index and Docker manifest list). */
export const INDEX_TYPES: readonly string[] = [MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList];
/** Everything a pull accepts by default, most preferred first. */
export const ALL_MANIFEST_TYPES: readonly string[] = [...IMAGE_MANIFEST_TYPES, ...INDEX_TYPES];

/** The OCI empty JSON blob `{}` (image-spec "Guidance for an Empty Descriptor"). */
export const EMPTY_JSON = { bytes: '{}', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 } as const;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string | undefined;
  'os.version'?: string | undefined;
  'os.features'?: string[] | undefined;
}

export interface Descriptor {
  mediaType: string;
  /** `sha256:<hex>` (the OCI form; see `ociDigest()`). */
  digest: string;
  size: number;
  urls?: string[] | undefined;
  annotations?: Record<string, string> | undefined;
  platform?: Platform | undefined;
  artifactType?: string | undefined;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string | undefined;
  artifactType?: string | undefined;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor | undefined;
  annotations?: Record<string, string> | undefined;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string | undefined;
  artifactType?: string | undefined;
  manifests: Descriptor[];
  annotations?: Record<string, string> | undefined;
}

/** A manifest as fetched: the exact bytes (whose sha256 is `digest`) and what they are. */
export interface FetchedManifest {
  mediaType: string;
  /** `sha256:<hex>` of `body`. */
  digest: string;
  size: number;
  body: Buffer;
}
