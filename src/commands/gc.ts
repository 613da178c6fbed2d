/** `htvend gc --keep FILE|GLOB… [--min-age 24h] [--dry-run]` (src/lifecycle/gc.ts). */
import type { StoreConfig } from '../store/store.js';
import { openStore } from '../store/open.js';
import { gc } from '../lifecycle/gc.js';
import { loadKept } from '../lifecycle/keep.js';
import type { CommandContext } from './build.js';

export interface GcCommandOptions {
  store: StoreConfig;
  keep: string[];
  minAgeMs: number;
  dryRun: boolean;
}

export async function gcCommand(o: GcCommandOptions, ctx: CommandContext): Promise<number> {
  // Mark before anything else, so a bad --keep fails before a remote store is even contacted.
  const kept = await loadKept(o.keep, { signal: ctx.signal });
  const store = await openStore(o.store, { env: ctx.env, log: ctx.log, signal: ctx.signal });
  try {
    await gc({ store, keep: o.keep, kept, minAgeMs: o.minAgeMs, dryRun: o.dryRun, log: ctx.log, signal: ctx.signal });
    return 0;
  } finally {
    await store.close?.();
  }
}
