/** `htvend outdated [-m FILE] [--deep]` (src/lifecycle/outdated.ts): exit 1 when anything changed or is gone. */
import { Manifest } from '../manifest/manifest.js';
import { createUpstreamClient } from '../upstream/client.js';
import { outdated, type OutdatedStatus } from '../lifecycle/outdated.js';
import type { CommandContext } from './build.js';

export interface OutdatedCommandOptions {
  manifest: string;
  deep: boolean;
  jobs: number;
  json: boolean;
  write?: ((s: string) => void) | undefined;
}

export async function outdatedCommand(o: OutdatedCommandOptions, ctx: CommandContext): Promise<number> {
  const write = o.write ?? ((s: string) => void process.stdout.write(s));
  const manifest = await Manifest.open(o.manifest, { mode: 'read', log: ctx.log, signal: ctx.signal });
  try {
    // The same upstream client as the proxy and verify --fetch: htvend's proxy and CA settings.
    const upstream = await createUpstreamClient({ env: ctx.env, log: ctx.log, signal: ctx.signal });
    try {
      const results = await outdated({ entries: manifest.entries(), upstream, env: ctx.env, log: ctx.log, deep: o.deep, jobs: o.jobs, signal: ctx.signal });
      const counts: Record<OutdatedStatus, number> = { same: 0, changed: 0, moved: 0, gone: 0, unknown: 0 };
      for (const r of results) counts[r.status]++;
      if (o.json) write(`${JSON.stringify({ manifest: o.manifest, counts, assets: results }, null, 2)}\n`);
      else {
        for (const r of results) if (r.status !== 'same') write(`${r.status.padEnd(7)} ${r.url}: ${r.detail}\n`);
      }
      ctx.log.info(`outdated: ${results.length} asset(s): ${counts.same} same, ${counts.changed} changed, ${counts.gone} gone, ${counts.moved} moved (indexes), ${counts.unknown} unknown`);
      return counts.changed + counts.gone > 0 ? 1 : 0;
    } finally {
      await upstream.close();
    }
  } finally {
    await manifest.close();
  }
}
