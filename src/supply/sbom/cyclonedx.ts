/**
 * CycloneDX 1.6 JSON from the capture, built with the CycloneDX project's own library (models,
 * normaliser with sorted lists). One component per asset: purl, SHA-256, the download URL as a
 * `distribution` external reference, the size as a property. Mutable indexes are `data`
 * components marked `htvend:mutable-index`, so they are listed as inputs but not as packages.
 */
import { Enums, Models, Serialize, Spec } from '@cyclonedx/cyclonedx-library';
import type { Inventory, InventoryAsset } from '../inventory.js';
import { isoSeconds, uuidV5 } from '../reproducible.js';

export interface SbomOptions {
  /** metadata.timestamp (from SOURCE_DATE_EPOCH); left out when undefined. */
  timestamp?: Date | undefined;
  /** Name of what the SBOM describes (default: the assets.json file name). */
  subject?: string | undefined;
  /** Extra components (e.g. packages found in an image's rootfs), already sorted or not. */
  extra?: readonly Models.Component[] | undefined;
}

function componentType(a: InventoryAsset): Enums.ComponentType {
  if (a.pkg.mutableIndex) return Enums.ComponentType.Data;
  switch (a.pkg.ecosystem) {
    case 'oci':
      return Enums.ComponentType.Container;
    case 'generic':
      return Enums.ComponentType.File;
    default:
      return Enums.ComponentType.Library;
  }
}

export function assetComponent(a: InventoryAsset): Models.Component {
  const purl = a.pkg.purl;
  const generic = purl.type === 'generic';
  const c = new Models.Component(componentType(a), generic ? a.pkg.name : purl.name, {
    // bom-ref: the URL is the one key that is unique within a capture.
    bomRef: a.url,
    group: generic ? undefined : purl.namespace,
    version: a.pkg.version,
    purl: purl.toString(),
  });
  c.hashes.set(Enums.HashAlgorithm['SHA-256'], a.sha256);
  c.externalReferences.add(new Models.ExternalReference(a.url, Enums.ExternalReferenceType.Distribution));
  c.properties.add(new Models.Property('htvend:ecosystem', a.pkg.ecosystem));
  if (a.size !== undefined) c.properties.add(new Models.Property('htvend:size', String(a.size)));
  if (a.contentType) c.properties.add(new Models.Property('htvend:content-type', a.contentType));
  if (a.pkg.mutableIndex) c.properties.add(new Models.Property('htvend:mutable-index', 'true'));
  return c;
}

/** The BOM as a JSON value (sorted); `serialNumber` is a UUIDv5 of the BOM without it. */
export function cycloneDxJson(inv: Inventory, opts: SbomOptions = {}): Record<string, unknown> {
  const bom = new Models.Bom();
  bom.metadata.tools.components.add(new Models.Component(Enums.ComponentType.Application, 'htvend'));
  if (opts.timestamp) bom.metadata.timestamp = new Date(isoSeconds(opts.timestamp));
  if (opts.subject) bom.metadata.component = new Models.Component(Enums.ComponentType.Application, opts.subject, { bomRef: 'subject' });
  for (const a of inv.assets) bom.components.add(assetComponent(a));
  for (const c of opts.extra ?? []) bom.components.add(c);
  const normalize = () => new Serialize.JSON.Normalize.Factory(Spec.Spec1dot6).makeForBom().normalize(bom, { sortLists: true }) as unknown as Record<string, unknown>;
  const withoutSerial = normalize();
  bom.serialNumber = `urn:uuid:${uuidV5(JSON.stringify(withoutSerial))}`;
  return normalize();
}
