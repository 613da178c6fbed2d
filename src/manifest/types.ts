/**
 * assets.json entries (SPEC §2). Field names are the Go tool's JSON names, so an entry is
 * written exactly as it is held.
 */
import type { Digest } from '../util/digest.js';

export interface AssetEntry {
  /** sha256 of the stored blob (the bytes on the wire, before any Content-Encoding is undone). */
  Sha256: Digest;
  /** Recorded response headers, canonical names (`Content-Type`), first value only. */
  Headers: Record<string, string>;
}

/**
 * What the proxy needs from the manifest. Implemented by src/manifest/ for both modes:
 * - build: `get` returns an entry recorded earlier in this run, or (unless --force-refresh)
 *   the previous file's entry for the key; `put` marks the key as requested by this run and
 *   schedules an incremental atomic save. The proxy calls `put` also when it *reuses* an
 *   entry, so the rewritten file holds exactly what this run requested.
 * - offline: `get` reads the loaded file; `put` is never called.
 */
export interface AssetLookup {
  get(key: string): AssetEntry | undefined;
  put(key: string, entry: AssetEntry): void;
}
