/**
 * The in-toto statements attached to each platform image (docs/supply-chain.md):
 * - SLSA v1 provenance (https://slsa.dev/spec/v1.0/provenance): resolvedDependencies are the
 *   base images by digest and every asset each step fetched (URL, sha256, Dockerfile line);
 *   externalParameters the Dockerfile, build args, target and platform, and whether the build
 *   ran under `htvend build` (recording) or `htvend offline` (hermetic replay);
 * - an SPDX 2.3 SBOM (BuildKit's predicate type for SBOMs): the fetched assets, which no image
 *   scanner can see, plus the packages installed in the final rootfs.
 * No clock and no random ids: the same inputs give the same bytes.
 */
import { packageOf } from '../../purl/from-url.js';
import type { Digest } from '../../util/digest.js';
import type { BaseImageFact, StepFact } from '../../builder/build/facts.js';
import type { InventoryAsset } from '../inventory.js';
import { spdxIdOf, spdxJson, type SpdxPackage } from '../sbom/spdx.js';
import type { RootfsPackage } from './rootfs-packages.js';

export const STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
export const SPDX_PREDICATE = 'https://spdx.dev/Document';
/** What `buildDefinition.buildType` names: this builder's parameters, documented in docs/supply-chain.md. */
export const BUILD_TYPE = 'urn:htvend:build-img-with-proxy:v1';

export interface Subject {
  name: string;
  digest: { sha256: string };
}

export interface Statement {
  _type: typeof STATEMENT_V1;
  subject: Subject[];
  predicateType: string;
  predicate: Record<string, unknown>;
}

export interface ProvenanceInput {
  dockerfile: { path: string; content: string; sha256: string };
  buildArgs: ReadonlyMap<string, string>;
  target?: string | undefined;
  platform: string;
  /** HTVEND_MODE of the environment: `build`, `offline`, or undefined (not under htvend). */
  htvendMode?: string | undefined;
  /** SOURCE_DATE_EPOCH / --timestamp of the build. */
  epoch: number;
  bases: readonly BaseImageFact[];
  steps: readonly StepFact[];
}

/** `pkg:docker/<registry>/<repo>@<tag>?platform=…`, the form BuildKit's provenance uses. */
export function dockerPurl(ref: string, platform: string): string {
  const at = ref.indexOf('@');
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  const [name, version] = at >= 0 ? [ref.slice(0, at), ref.slice(at + 1)] : colon > slash ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
  return `pkg:docker/${name}@${version}?platform=${encodeURIComponent(platform)}`;
}

function hex(d: string): string {
  return d.replace(/^sha256:/, '');
}

function resolvedDependencies(i: ProvenanceInput): Record<string, unknown>[] {
  const bases = [...i.bases]
    .sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0))
    .map((b) => ({
      uri: dockerPurl(b.ref, b.platform),
      digest: { sha256: hex(b.digest) },
      ...(b.indexDigest ? { annotations: { 'htvend.index-digest': b.indexDigest } } : {}),
    }));
  const assets = i.steps.flatMap((s) =>
    [...s.assets]
      .sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0))
      .map((a) => ({
        uri: a.url,
        digest: { sha256: a.sha256 },
        name: packageOf(a.url, { sha256: a.sha256 }).purl.toString(),
        annotations: { 'htvend.step': s.location, 'htvend.instruction': s.instruction, ...(a.size !== undefined ? { 'htvend.size': String(a.size) } : {}) },
      })),
  );
  return [...bases, ...assets];
}

export function provenanceStatement(subject: Subject[], i: ProvenanceInput): Statement {
  const args = Object.fromEntries([...i.buildArgs.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => [`build-arg:${k}`, v]));
  return {
    _type: STATEMENT_V1,
    subject,
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: BUILD_TYPE,
        externalParameters: {
          dockerfile: { path: i.dockerfile.path, digest: { sha256: i.dockerfile.sha256 }, content: i.dockerfile.content },
          request: { args, ...(i.target ? { target: i.target } : {}), platform: i.platform },
          htvend: { mode: i.htvendMode ?? 'none', hermetic: i.htvendMode === 'offline' },
        },
        internalParameters: { sourceDateEpoch: i.epoch },
        resolvedDependencies: resolvedDependencies(i),
      },
      runDetails: { builder: { id: 'build-img-with-proxy' }, metadata: {} },
    },
  };
}

function rootfsPackage(p: RootfsPackage): SpdxPackage {
  return {
    SPDXID: spdxIdOf(`rootfs ${p.purl.toString()}`),
    name: p.name,
    versionInfo: p.version,
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: 'NOASSERTION',
    copyrightText: 'NOASSERTION',
    primaryPackagePurpose: p.ecosystem === 'deb' || p.ecosystem === 'apk' ? 'INSTALL' : 'LIBRARY',
    externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl.toString() }],
    comment: `installed in the image; found in ${p.foundIn}`,
  };
}

/** Assets the steps fetched, once per URL, as inventory entries (sizes from the steps). */
export function fetchedAssets(steps: readonly StepFact[]): InventoryAsset[] {
  const byUrl = new Map<string, InventoryAsset>();
  for (const s of steps) {
    for (const a of s.assets) {
      if (byUrl.has(a.url) || !/^[0-9a-f]{64}$/.test(a.sha256)) continue;
      let host = '';
      try {
        host = new URL(a.url).host;
      } catch {
        // kept, as generic
      }
      byUrl.set(a.url, { url: a.url, sha256: a.sha256 as Digest, size: a.size, host, pkg: packageOf(a.url, { sha256: a.sha256 }) });
    }
  }
  return [...byUrl.values()].sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
}

export function sbomStatement(subject: Subject[], steps: readonly StepFact[], installed: readonly RootfsPackage[], epoch: number, name: string): Statement {
  const assets = fetchedAssets(steps);
  const doc = spdxJson({ assets }, { timestamp: new Date(epoch * 1000), subject: name }, installed.map(rootfsPackage));
  // Fetched assets keep spdxIdOf(url) ids (as in `htvend sbom`), so the two documents can be joined.
  return { _type: STATEMENT_V1, subject, predicateType: SPDX_PREDICATE, predicate: doc };
}
