/**
 * `htvend sbom` (SPEC §10): assets.json → CycloneDX 1.6 or SPDX 2.3 JSON. The output is
 * written atomically (or to stdout), so a failure never leaves a half-written SBOM.
 */
import { basename } from 'node:path';
import type { LoadInventoryOptions } from '../supply/inventory.js';
import { writeFileAtomic } from '../manifest/atomic.js';
import { HtvendError } from '../util/errors.js';
import { loadInventory } from '../supply/inventory.js';
import { sourceDate } from '../supply/reproducible.js';
import { cycloneDxJson } from '../supply/sbom/cyclonedx.js';
import { spdxJson } from '../supply/sbom/spdx.js';

export const SBOM_FORMATS = ['cyclonedx', 'spdx'] as const;
export type SbomFormat = (typeof SBOM_FORMATS)[number];

export interface SbomOptions {
  manifestPath: string;
  format: SbomFormat;
  /** File to write; stdout when undefined or `-`. */
  output?: string | undefined;
  /** Sizes that assets.json does not record (no Content-Length). */
  sizeOf?: LoadInventoryOptions['sizeOf'];
  env: Readonly<Record<string, string | undefined>>;
  signal?: AbortSignal | undefined;
  /** Where stdout goes (tests). */
  stdout?: ((s: string) => void) | undefined;
}

/** Renders the SBOM text (JSON, two-space indent, final newline). */
export async function renderSbom(o: Omit<SbomOptions, 'output' | 'stdout'>): Promise<string> {
  if (!(SBOM_FORMATS as readonly string[]).includes(o.format)) {
    throw new HtvendError('USAGE', `--format ${JSON.stringify(o.format)}: want one of ${SBOM_FORMATS.join(', ')}`);
  }
  const timestamp = sourceDate(o.env);
  const inv = await loadInventory(o.manifestPath, { sizeOf: o.sizeOf, signal: o.signal });
  const subject = basename(o.manifestPath);
  const doc = o.format === 'cyclonedx' ? cycloneDxJson(inv, { timestamp, subject }) : spdxJson(inv, { timestamp, subject });
  return `${JSON.stringify(doc, null, 2)}\n`;
}

export async function sbom(o: SbomOptions): Promise<void> {
  const text = await renderSbom(o);
  if (o.output === undefined || o.output === '-') (o.stdout ?? ((s) => process.stdout.write(s)))(text);
  else await writeFileAtomic(o.output, text, { signal: o.signal });
}
