/** Test-only in-memory AssetLookup (the real one, with assets.json on disk, is src/manifest/). */
import type { AssetEntry, AssetLookup } from '../../src/manifest/types.js';

export class MemoryAssets implements AssetLookup {
  readonly entries = new Map<string, AssetEntry>();
  /** Keys passed to put(), in order (reuse included). */
  readonly puts: string[] = [];

  get(key: string): AssetEntry | undefined {
    return this.entries.get(key);
  }

  put(key: string, entry: AssetEntry): void {
    this.entries.set(key, entry);
    this.puts.push(key);
  }
}
