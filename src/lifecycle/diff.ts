/**
 * What changed between two lockfiles, as a reviewer wants to read it: "left-pad 1.3.0 →
 * 1.3.1" rather than a JSON diff. Pure code over two AssetMaps.
 *
 * Each changed URL is named as a package by the shared URL → purl mapping (src/purl/), then
 * changes are grouped by package (ecosystem + name): versions only on the old side and only
 * on the new side make an upgrade (or an addition / removal); the same version with other
 * bytes is a content change, the thing a re-pushed tag or re-uploaded file looks like. URLs
 * that name no package (mutable indexes, unknown shapes) are listed one by one.
 */
import type { AssetEntry } from '../manifest/types.js';
import type { AssetMap } from '../manifest/codec.js';
import { sameEntry } from '../manifest/codec.js';
import { packageOf } from '../purl/from-url.js';
import type { Ecosystem } from '../purl/types.js';
import { formatBytes } from './format.js';

export interface AssetSide {
  url: string;
  sha256: string;
  /** From the recorded Content-Length, when there is one. */
  size?: number | undefined;
  version?: string | undefined;
}

export type PackageChangeKind = 'added' | 'removed' | 'upgraded' | 'content-changed';

export interface PackageChange {
  kind: PackageChangeKind;
  ecosystem: Ecosystem;
  name: string;
  /** Versions only in the old lockfile's changed assets (sorted). */
  oldVersions: string[];
  newVersions: string[];
  /** Sum of the sizes of this package's changed assets on each side (undefined if any is unknown). */
  oldSize?: number | undefined;
  newSize?: number | undefined;
  old: AssetSide[];
  new: AssetSide[];
}

export interface AssetChange {
  kind: 'added' | 'removed' | 'content-changed' | 'headers-changed';
  url: string;
  old?: AssetSide | undefined;
  new?: AssetSide | undefined;
  /** headers-changed: the header names whose value differs. */
  headers?: string[] | undefined;
}

export interface LockfileDiff {
  same: boolean;
  counts: { old: number; new: number; added: number; removed: number; changed: number };
  packages: PackageChange[];
  /** Changes of URLs that name no package (indexes, generic files) and header-only changes. */
  assets: AssetChange[];
}

function sizeOf(e: AssetEntry): number | undefined {
  const v = Object.entries(e.Headers).find(([k]) => k.toLowerCase() === 'content-length')?.[1];
  const n = v === undefined ? NaN : Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function side(url: string, e: AssetEntry, version?: string): AssetSide {
  return { url, sha256: e.Sha256, size: sizeOf(e), version };
}

function sum(sides: AssetSide[]): number | undefined {
  let t = 0;
  for (const s of sides) {
    if (s.size === undefined) return undefined;
    t += s.size;
  }
  return t;
}

function headerDiff(a: AssetEntry, b: AssetEntry): string[] {
  const names = new Set([...Object.keys(a.Headers), ...Object.keys(b.Headers)]);
  return [...names].filter((n) => a.Headers[n] !== b.Headers[n]).sort();
}

interface Group {
  ecosystem: Ecosystem;
  name: string;
  old: AssetSide[];
  new: AssetSide[];
}

export function diffLockfiles(oldMap: AssetMap, newMap: AssetMap): LockfileDiff {
  const groups = new Map<string, Group>();
  const assets: AssetChange[] = [];
  const counts = { old: oldMap.size, new: newMap.size, added: 0, removed: 0, changed: 0 };

  /** Puts one side of a changed URL into its package group; false if it names no package. */
  const place = (url: string, e: AssetEntry, which: 'old' | 'new'): boolean => {
    const p = packageOf(url, { sha256: e.Sha256 });
    if (p.ecosystem === 'generic' || p.mutableIndex) return false;
    const key = `${p.ecosystem}\0${p.name}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { ecosystem: p.ecosystem, name: p.name, old: [], new: [] }));
    g[which].push(side(url, e, p.version));
    return true;
  };

  for (const [url, o] of oldMap) {
    const n = newMap.get(url);
    if (!n) {
      counts.removed++;
      if (!place(url, o, 'old')) assets.push({ kind: 'removed', url, old: side(url, o) });
    } else if (n.Sha256 !== o.Sha256) {
      counts.changed++;
      const a = place(url, o, 'old');
      const b = place(url, n, 'new');
      if (!a || !b) assets.push({ kind: 'content-changed', url, old: side(url, o), new: side(url, n) });
    } else if (!sameEntry(o, n)) {
      counts.changed++;
      assets.push({ kind: 'headers-changed', url, old: side(url, o), new: side(url, n), headers: headerDiff(o, n) });
    }
  }
  for (const [url, n] of newMap) {
    if (oldMap.has(url)) continue;
    counts.added++;
    if (!place(url, n, 'new')) assets.push({ kind: 'added', url, new: side(url, n) });
  }

  const packages: PackageChange[] = [...groups.values()].map((g) => {
    const versions = (s: AssetSide[]) => [...new Set(s.map((x) => x.version ?? ''))].filter(Boolean).sort();
    const ov = versions(g.old);
    const nv = versions(g.new);
    const kind: PackageChangeKind = !g.old.length ? 'added' : !g.new.length ? 'removed' : ov.join('\0') === nv.join('\0') ? 'content-changed' : 'upgraded';
    return { kind, ecosystem: g.ecosystem, name: g.name, oldVersions: ov, newVersions: nv, oldSize: sum(g.old), newSize: sum(g.new), old: g.old, new: g.new };
  });
  packages.sort((a, b) => (a.ecosystem === b.ecosystem ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.ecosystem < b.ecosystem ? -1 : 1));
  assets.sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
  return { same: counts.added + counts.removed + counts.changed === 0, counts, packages, assets };
}

// ---- text form

/** OCI digests as versions are long: `sha256:0123456789ab…`. */
function shortVersion(v: string): string {
  return /^sha256:[0-9a-f]{64}$/.test(v) ? `${v.slice(0, 19)}…` : v;
}

function versions(vs: string[]): string {
  return vs.length ? vs.map(shortVersion).join(', ') : '(no version)';
}

/** The human-readable report: one line per package, then the other assets. */
export function formatDiff(d: LockfileDiff, oldName: string, newName: string): string {
  if (d.same) return `${oldName} and ${newName} record the same ${d.counts.old} asset(s)\n`;
  const lines = [`--- ${oldName} (${d.counts.old} assets)`, `+++ ${newName} (${d.counts.new} assets)`, `${d.counts.added} added, ${d.counts.removed} removed, ${d.counts.changed} changed`];
  if (d.packages.length) {
    lines.push('', 'packages:');
    for (const p of d.packages) {
      const label = `${p.ecosystem} ${p.name}`;
      if (p.kind === 'added') lines.push(`  + ${label} ${versions(p.newVersions)} (${formatBytes(p.newSize)})`);
      else if (p.kind === 'removed') lines.push(`  - ${label} ${versions(p.oldVersions)} (${formatBytes(p.oldSize)})`);
      else if (p.kind === 'upgraded') lines.push(`  ~ ${label} ${versions(p.oldVersions)} → ${versions(p.newVersions)} (${formatBytes(p.oldSize)} → ${formatBytes(p.newSize)})`);
      else lines.push(`  ! ${label} ${versions(p.newVersions)}: same version, other bytes (${p.new.map((s) => `sha256 ${p.old.find((o) => o.url === s.url)?.sha256.slice(0, 12) ?? '?'}… → ${s.sha256.slice(0, 12)}…`).join('; ')})`);
    }
  }
  if (d.assets.length) {
    lines.push('', 'other assets:');
    for (const a of d.assets) {
      if (a.kind === 'added') lines.push(`  + ${a.url} (${formatBytes(a.new?.size)})`);
      else if (a.kind === 'removed') lines.push(`  - ${a.url} (${formatBytes(a.old?.size)})`);
      else if (a.kind === 'content-changed') lines.push(`  ~ ${a.url} sha256 ${a.old!.sha256.slice(0, 12)}… → ${a.new!.sha256.slice(0, 12)}… (${formatBytes(a.old?.size)} → ${formatBytes(a.new?.size)})`);
      else lines.push(`  ~ ${a.url} headers only: ${a.headers!.join(', ')}`);
    }
  }
  return lines.join('\n') + '\n';
}
