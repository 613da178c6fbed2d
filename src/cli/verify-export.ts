/**
 * Adapters from the CLI's parsed flags to the verify/export library functions
 * (src/commands/verify.ts, export.ts).
 */
import { HtvendError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { StoreConfig } from '../store/store.js';

export interface VerifyCliOptions {
  manifest: string;
  store: StoreConfig;
  noCacheResponse: RegExp[];
  cacheHeader: string[];
  fetch: boolean;
  repair: boolean;
  jobs: number;
}

export interface ExportCliOptions {
  manifest: string;
  store: StoreConfig;
  dest: StoreConfig;
  jobs: number;
}

interface Ctx {
  env: Readonly<Record<string, string | undefined>>;
  log: Logger;
}

export async function verifyCommand(_o: VerifyCliOptions, _ctx: Ctx): Promise<number> {
  throw new HtvendError('INTERNAL', 'verify is not wired yet');
}

export async function exportCommand(_o: ExportCliOptions, _ctx: Ctx): Promise<number> {
  throw new HtvendError('INTERNAL', 'export is not wired yet');
}
