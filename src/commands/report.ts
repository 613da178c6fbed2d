/**
 * `htvend report` (SPEC §10): assets.json (+ the builder's --report, + offline summaries) →
 * one self-contained HTML file, written atomically.
 */
import { basename } from 'node:path';
import type { LoadInventoryOptions } from '../supply/inventory.js';
import { writeFileAtomic } from '../manifest/atomic.js';
import { loadInventory } from '../supply/inventory.js';
import { readBuildReport, readOfflineSummaries } from '../supply/report/inputs.js';
import { renderReport } from '../supply/report/html.js';

export interface ReportOptions {
  manifestPath: string;
  output: string;
  buildReport?: string | undefined;
  offlineSummaries?: readonly string[] | undefined;
  /** Sizes that assets.json does not record (no Content-Length). */
  sizeOf?: LoadInventoryOptions['sizeOf'];
  signal?: AbortSignal | undefined;
}

export async function report(o: ReportOptions): Promise<void> {
  const inventory = await loadInventory(o.manifestPath, { sizeOf: o.sizeOf, signal: o.signal });
  const build = o.buildReport ? await readBuildReport(o.buildReport, o.signal) : undefined;
  const offline = await readOfflineSummaries(o.offlineSummaries ?? [], o.signal);
  const html = renderReport({ inventory, title: `htvend report: ${basename(o.manifestPath)}`, build, offline });
  await writeFileAtomic(o.output, html, { signal: o.signal });
}
