/**
 * `htvend report`'s one self-contained HTML file (SPEC §10): totals, bar charts of bytes by
 * ecosystem and by host (inline SVG drawn here), a sortable, filterable asset table, the
 * builder's steps, an offline run's missing URLs. No network resources: a Content-Security-
 * Policy of `default-src 'none'` lets only the inline style and script run, so the file
 * cannot fetch anything even if a URL in it were crafted to. Everything is rendered on the
 * server side (the table works without JS); the script only sorts and filters rows.
 * Deterministic: no clock, no random ids.
 */
import type { Inventory, InventoryAsset, Totals } from '../inventory.js';
import { totalsOf } from '../inventory.js';
import type { BuildReportInput, OfflineSummary } from './inputs.js';
import { REPORT_CSS, REPORT_JS } from './assets.js';

export interface ReportInput {
  inventory: Inventory;
  title: string;
  build?: BuildReportInput | undefined;
  offline?: OfflineSummary | undefined;
}

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

interface Bar {
  label: string;
  bytes: number;
  count: number;
}

/** Sums sizes by `key`, largest first; beyond `max` bars the rest is one "other" bar. */
function barsBy(assets: readonly InventoryAsset[], key: (a: InventoryAsset) => string, max = 12): Bar[] {
  const m = new Map<string, Bar>();
  for (const a of assets) {
    const k = key(a);
    const b = m.get(k) ?? { label: k, bytes: 0, count: 0 };
    b.bytes += a.size ?? 0;
    b.count++;
    m.set(k, b);
  }
  const bars = [...m.values()].sort((a, b) => b.bytes - a.bytes || b.count - a.count || (a.label < b.label ? -1 : 1));
  if (bars.length <= max) return bars;
  const rest = bars.slice(max - 1);
  return [...bars.slice(0, max - 1), { label: `${rest.length} others`, bytes: rest.reduce((s, b) => s + b.bytes, 0), count: rest.reduce((s, b) => s + b.count, 0) }];
}

/** A horizontal bar chart as inline SVG. */
function barChart(id: string, title: string, bars: readonly Bar[]): string {
  const rowH = 22;
  const labelW = 210;
  const barW = 360;
  const h = Math.max(1, bars.length) * rowH + 8;
  const max = Math.max(1, ...bars.map((b) => b.bytes));
  const rows = bars.map((b, i) => {
    const y = 4 + i * rowH;
    const w = b.bytes > 0 ? Math.max(1, Math.round((b.bytes / max) * barW)) : 0;
    const label = b.label.length > 30 ? `${b.label.slice(0, 29)}…` : b.label;
    return (
      `<g class="bar"><title>${esc(`${b.label}: ${humanBytes(b.bytes)} in ${b.count} asset(s)`)}</title>` +
      `<text x="${labelW - 6}" y="${y + 15}" text-anchor="end">${esc(label)}</text>` +
      `<rect x="${labelW}" y="${y + 3}" width="${w}" height="${rowH - 6}" fill="hsl(${(i * 47) % 360} 55% 50%)"></rect>` +
      `<text x="${labelW + w + 6}" y="${y + 15}">${esc(`${humanBytes(b.bytes)} · ${b.count}`)}</text></g>`
    );
  });
  return (
    `<figure><figcaption>${esc(title)}</figcaption>` +
    `<svg id="${id}" class="chart" xmlns="http://www.w3.org/2000/svg" width="${labelW + barW + 130}" height="${h}" role="img" aria-label="${esc(title)}">${rows.join('')}</svg></figure>`
  );
}

function totalsSection(t: Totals): string {
  const cell = (n: string, v: string) => `<div class="total"><div class="v">${esc(v)}</div><div class="n">${esc(n)}</div></div>`;
  return (
    `<section id="totals">` +
    cell('assets', String(t.assets)) +
    cell('bytes', humanBytes(t.bytes)) +
    cell('hosts', String(t.hosts)) +
    cell('mutable indexes', String(t.mutableIndexes)) +
    (t.unknownSize ? cell('without a known size', String(t.unknownSize)) : '') +
    `</section>`
  );
}

function assetTable(assets: readonly InventoryAsset[]): string {
  const ecosystems = [...new Set(assets.map((a) => a.pkg.ecosystem))].sort();
  const rows = assets.map((a) => {
    const purl = a.pkg.purl.toString();
    const size = a.size ?? -1;
    return (
      `<tr data-ecosystem="${esc(a.pkg.ecosystem)}"${a.pkg.mutableIndex ? ' class="index"' : ''}>` +
      `<td>${esc(a.pkg.ecosystem)}${a.pkg.mutableIndex ? ' <span class="tag">index</span>' : ''}</td>` +
      `<td class="purl">${esc(purl)}</td>` +
      `<td class="url"><a href="${esc(a.url)}" rel="noreferrer">${esc(a.url)}</a></td>` +
      `<td class="num" data-sort="${size}">${a.size === undefined ? '?' : esc(humanBytes(a.size))}</td>` +
      `<td class="sha">${esc(a.sha256)}</td></tr>`
    );
  });
  const options = ecosystems.map((e) => `<option value="${esc(e)}">${esc(e)}</option>`).join('');
  return (
    `<section id="assets"><h2>Assets</h2>` +
    `<div class="controls"><input id="filter" type="search" placeholder="filter (purl, URL, sha256)" aria-label="filter">` +
    `<select id="ecosystem" aria-label="ecosystem"><option value="">all ecosystems</option>${options}</select>` +
    `<span id="shown">${assets.length} of ${assets.length} shown</span></div>` +
    `<table id="asset-table"><thead><tr><th data-col="0">ecosystem</th><th data-col="1">package URL</th><th data-col="2">URL</th>` +
    `<th data-col="3" data-type="num">size</th><th data-col="4">sha256</th></tr></thead><tbody>${rows.join('')}</tbody></table></section>`
  );
}

function stepsSection(b: BuildReportInput): string {
  const steps = b.steps.map((s) => {
    const bytes = s.assets.reduce((n, a) => n + (a.size ?? 0), 0);
    const head = [s.location, s.platform, s.status, s.durationMs !== undefined ? `${(s.durationMs / 1000).toFixed(2)} s` : undefined, `${s.assets.length} asset(s), ${humanBytes(bytes)}`]
      .filter((x): x is string => Boolean(x))
      .map(esc)
      .join(' · ');
    const list = s.assets.length
      ? `<ul>${s.assets.map((a) => `<li><span class="url">${esc(a.url)}</span> <span class="sha">${esc(a.sha256)}</span>${a.size !== undefined ? ` (${esc(humanBytes(a.size))})` : ''}</li>`).join('')}</ul>`
      : '';
    return `<details class="step"${s.assets.length ? ' open' : ''}><summary><code>${esc(s.instruction)}</code> <span class="meta">${head}</span></summary>${list}</details>`;
  });
  const mode = b.mode ? ` (under htvend ${esc(b.mode)})` : '';
  return `<section id="steps"><h2>Build steps${b.dockerfile ? ` of ${esc(b.dockerfile)}` : ''}${mode}</h2>${steps.join('')}</section>`;
}

function offlineSection(o: OfflineSummary): string {
  const total = o.counters['htvend_missing_asset_total'];
  const counters = Object.keys(o.counters)
    .sort()
    .map((k) => `<code>${esc(k)}=${o.counters[k]}</code>`)
    .join(' ');
  const list = o.missing.length ? `<ul class="missing">${o.missing.map((u) => `<li class="url">${esc(u)}</li>`).join('')}</ul>` : '<p>No URL was missing.</p>';
  const count = total !== undefined && total !== o.missing.length ? ` (the run counted ${total})` : '';
  return `<section id="offline"><h2>Offline run: ${o.missing.length} missing URL(s)${esc(count)}</h2>${list}${counters ? `<p>${counters}</p>` : ''}</section>`;
}

export function renderReport(r: ReportInput): string {
  const assets = r.inventory.assets;
  const totals = totalsOf(r.inventory);
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(r.title)}</title><style>${REPORT_CSS}</style></head><body>`,
    `<h1>${esc(r.title)}</h1>`,
    totalsSection(totals),
    `<section id="charts">${barChart('chart-ecosystem', 'Bytes by ecosystem', barsBy(assets, (a) => a.pkg.ecosystem))}${barChart('chart-host', 'Bytes by host', barsBy(assets, (a) => a.host))}</section>`,
    r.offline ? offlineSection(r.offline) : '',
    r.build ? stepsSection(r.build) : '',
    assetTable(assets),
    `<script>${REPORT_JS}</script>`,
    '</body></html>',
    '',
  ].join('\n');
}
