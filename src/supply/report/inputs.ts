/**
 * The optional inputs of `htvend report`: the builder's `--report` JSON (docs/build-cache.md,
 * "Report"; read loosely, so newer fields pass through) and an offline run's summary.
 *
 * An offline summary is any of (auto-detected, docs/supply-chain.md):
 * - JSON `{"missing": ["url", …], "counters": {"htvend_missing_asset_total": 2, …}}`;
 * - the saved stderr of `htvend offline` (its `missing asset: <url>` warning lines);
 * - the `--github-output-path` file (`htvend_*=N` lines).
 * Several may be given; missing URLs and counters are merged.
 */
import { readFile } from 'node:fs/promises';
import { HtvendError, describeError } from '../../util/errors.js';

export interface StepAsset {
  url: string;
  sha256: string;
  size?: number | undefined;
}

export interface BuildStep {
  location: string;
  instruction: string;
  kind?: string | undefined;
  platform?: string | undefined;
  status?: string | undefined;
  durationMs?: number | undefined;
  assets: StepAsset[];
}

export interface BuildReportInput {
  dockerfile?: string | undefined;
  mode?: string | undefined;
  steps: BuildStep[];
}

export interface OfflineSummary {
  missing: string[];
  counters: Record<string, number>;
}

async function readText(path: string, what: string, signal?: AbortSignal): Promise<string> {
  try {
    return await readFile(path, { encoding: 'utf8', signal });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new HtvendError(code === 'ENOENT' ? 'NOT_FOUND' : 'IO', `${what} ${path}: ${describeError(e)}`, { cause: e });
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export async function readBuildReport(path: string, signal?: AbortSignal): Promise<BuildReportInput> {
  const text = await readText(path, '--build-report', signal);
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new HtvendError('INPUT', `--build-report ${path}: not JSON (${describeError(e)})`);
  }
  const o = j as Record<string, unknown> | null;
  if (!o || typeof o !== 'object' || !Array.isArray(o['steps'])) {
    throw new HtvendError('INPUT', `--build-report ${path}: expected the builder's --report JSON ({"version": 1, "steps": [...]})`);
  }
  const steps = (o['steps'] as unknown[]).map((raw, i): BuildStep => {
    const s = raw as Record<string, unknown>;
    if (!s || typeof s !== 'object') throw new HtvendError('INPUT', `--build-report ${path}: steps[${i}] is not an object`);
    const assets = Array.isArray(s['assets']) ? (s['assets'] as Record<string, unknown>[]) : [];
    return {
      location: str(s['location']) ?? `step ${i + 1}`,
      instruction: str(s['instruction']) ?? '',
      kind: str(s['kind']),
      platform: str(s['platform']),
      status: str(s['status']),
      durationMs: num(s['durationMs']),
      assets: assets.filter((a) => a && typeof a === 'object' && typeof a['url'] === 'string').map((a) => ({ url: a['url'] as string, sha256: str(a['sha256']) ?? '', size: num(a['size']) })),
    };
  });
  const attribution = o['attribution'] as Record<string, unknown> | undefined;
  return { dockerfile: str(o['dockerfile']), mode: str(attribution?.['mode']), steps };
}

export async function readOfflineSummaries(paths: readonly string[], signal?: AbortSignal): Promise<OfflineSummary | undefined> {
  if (!paths.length) return undefined;
  const missing = new Set<string>();
  const counters: Record<string, number> = {};
  for (const path of paths) {
    const text = await readText(path, '--offline-summary', signal);
    const trimmed = text.trimStart();
    if (trimmed.startsWith('{')) {
      let j: Record<string, unknown>;
      try {
        j = JSON.parse(text) as Record<string, unknown>;
      } catch (e) {
        throw new HtvendError('INPUT', `--offline-summary ${path}: not JSON (${describeError(e)})`);
      }
      const m = j['missing'];
      if (m !== undefined && (!Array.isArray(m) || m.some((u) => typeof u !== 'string'))) {
        throw new HtvendError('INPUT', `--offline-summary ${path}: "missing" must be an array of URL strings`);
      }
      for (const u of (m as string[] | undefined) ?? []) missing.add(u);
      for (const [k, v] of Object.entries((j['counters'] as Record<string, unknown> | undefined) ?? {})) if (typeof v === 'number') counters[k] = v;
      continue;
    }
    for (const line of text.split('\n')) {
      const miss = /missing asset: (\S+)/.exec(line);
      if (miss) missing.add(miss[1]!);
      const counter = /^(htvend_[a-z_]+)=(\d+)\s*$/.exec(line);
      if (counter) counters[counter[1]!] = Number(counter[2]);
    }
  }
  return { missing: [...missing].sort(), counters };
}
