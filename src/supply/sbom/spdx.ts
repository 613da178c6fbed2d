/**
 * SPDX 2.3 JSON from the capture (https://spdx.github.io/spdx-spec/v2.3/). There is no
 * maintained JS model library for SPDX 2.3, so the document is built here as plain data and
 * tests validate it against the official JSON schema. One package per asset: the download URL
 * as downloadLocation, SHA-256 checksum, purl external reference; the size goes in the
 * package comment (SPDX 2.3 has no size field for packages).
 */
import type { Inventory, InventoryAsset } from '../inventory.js';
import { isoSeconds, sha256Of, uuidV5 } from '../reproducible.js';

export interface SpdxOptions {
  /** creationInfo.created (from SOURCE_DATE_EPOCH); the epoch when undefined. */
  timestamp?: Date | undefined;
  /** The document name (default `htvend-capture`). */
  subject?: string | undefined;
}

export interface SpdxPackage {
  SPDXID: string;
  name: string;
  versionInfo?: string;
  downloadLocation: string;
  filesAnalyzed: false;
  licenseConcluded: 'NOASSERTION';
  licenseDeclared: 'NOASSERTION';
  copyrightText: 'NOASSERTION';
  primaryPackagePurpose: string;
  checksums?: { algorithm: 'SHA256'; checksumValue: string }[];
  externalRefs?: { referenceCategory: 'PACKAGE-MANAGER'; referenceType: 'purl'; referenceLocator: string }[];
  comment?: string;
}

function purpose(a: InventoryAsset): string {
  if (a.pkg.mutableIndex) return 'OTHER';
  switch (a.pkg.ecosystem) {
    case 'oci':
      return 'CONTAINER';
    case 'deb':
    case 'apk':
      return 'INSTALL';
    case 'github':
      return 'SOURCE';
    case 'generic':
      return 'FILE';
    default:
      return 'LIBRARY';
  }
}

/** SPDX IDs allow only `[A-Za-z0-9.-]`: derived from the URL's hash, stable and unique. */
export function spdxIdOf(key: string): string {
  return `SPDXRef-Asset-${sha256Of(key).slice(0, 20)}`;
}

export function assetPackage(a: InventoryAsset): SpdxPackage {
  const p: SpdxPackage = {
    SPDXID: spdxIdOf(a.url),
    name: a.pkg.name,
    downloadLocation: a.url,
    filesAnalyzed: false,
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: 'NOASSERTION',
    copyrightText: 'NOASSERTION',
    primaryPackagePurpose: purpose(a),
    checksums: [{ algorithm: 'SHA256', checksumValue: a.sha256 }],
    externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: a.pkg.purl.toString() }],
  };
  if (a.pkg.version) p.versionInfo = a.pkg.version;
  const notes = [`ecosystem: ${a.pkg.ecosystem}`];
  if (a.size !== undefined) notes.push(`size: ${a.size} bytes`);
  if (a.contentType) notes.push(`content-type: ${a.contentType}`);
  if (a.pkg.mutableIndex) notes.push('mutable index: a build input whose bytes change over time, not a package');
  p.comment = notes.join('; ');
  return p;
}

/** The document as a JSON value; `documentNamespace` is derived from the rest of it. */
export function spdxJson(inv: Inventory, opts: SpdxOptions = {}, extra: readonly SpdxPackage[] = []): Record<string, unknown> {
  const packages = [...inv.assets.map(assetPackage), ...extra].sort((a, b) => (a.SPDXID < b.SPDXID ? -1 : a.SPDXID > b.SPDXID ? 1 : 0));
  const name = opts.subject ?? 'htvend-capture';
  const body = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name,
    creationInfo: {
      created: isoSeconds(opts.timestamp ?? new Date(0)),
      creators: ['Tool: htvend'],
      comment: 'Derived from an htvend capture (assets.json): every asset the build fetched, by URL and sha256.',
    },
    packages,
    relationships: packages.map((p) => ({ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: p.SPDXID })),
  };
  const namespace = `https://spdx.org/spdxdocs/${encodeURIComponent(name)}-${uuidV5(JSON.stringify(body))}`;
  // documentNamespace goes right after name, where SPDX tools put it.
  const { packages: _p, relationships: _r, creationInfo, ...head } = body;
  return { ...head, documentNamespace: namespace, creationInfo, packages, relationships: body.relationships };
}
