/**
 * BuildKit's attestation storage (moby/buildkit docs/attestations/attestation-storage.md), so
 * tools that read BuildKit attestations (`docker buildx imagetools inspect`, Docker Scout,
 * regclient…) read ours: per platform image, one extra manifest in the image index with
 * - platform `unknown/unknown`,
 * - annotations `vnd.docker.reference.type: attestation-manifest` and
 *   `vnd.docker.reference.digest: <the image manifest's digest>`,
 * - one layer per in-toto statement, media type `application/vnd.in-toto+json`, annotated
 *   with `in-toto.io/predicate-type`;
 * - a config that is a valid (empty) image config, there for compatibility only.
 */
import { jsonBlob, OCI_CONFIG, OCI_MANIFEST, type JsonBlob } from '../../builder/image/image.js';
import type { Statement } from './statements.js';

export const IN_TOTO_MEDIA_TYPE = 'application/vnd.in-toto+json';
export const REFERENCE_TYPE = 'vnd.docker.reference.type';
export const REFERENCE_DIGEST = 'vnd.docker.reference.digest';
export const ATTESTATION_MANIFEST = 'attestation-manifest';
export const PREDICATE_TYPE = 'in-toto.io/predicate-type';

export interface AttestationManifest {
  /** `sha256:…` of the image manifest the statements are about. */
  subjectDigest: string;
  manifest: JsonBlob;
  config: JsonBlob;
  layers: JsonBlob[];
  /** The index entry's annotations. */
  annotations: Record<string, string>;
}

export function attestationManifest(subjectDigest: string, statements: readonly Statement[]): AttestationManifest {
  const layers = statements.map((s) => jsonBlob(s, IN_TOTO_MEDIA_TYPE));
  const config = jsonBlob({ architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${l.digest}`) } }, OCI_CONFIG);
  const manifest = jsonBlob(
    {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: `sha256:${config.digest}`, size: config.bytes.length },
      layers: layers.map((l, i) => ({ mediaType: IN_TOTO_MEDIA_TYPE, digest: `sha256:${l.digest}`, size: l.bytes.length, annotations: { [PREDICATE_TYPE]: statements[i]!.predicateType } })),
    },
    OCI_MANIFEST,
  );
  return { subjectDigest, manifest, config, layers, annotations: { [REFERENCE_DIGEST]: subjectDigest, [REFERENCE_TYPE]: ATTESTATION_MANIFEST } };
}
