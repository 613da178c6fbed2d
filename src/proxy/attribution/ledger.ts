/**
 * What each step fetched (docs/build-cache.md): per step id, the assets.json keys it was
 * served (with the sha256 and size of what it got) and the requests that were not assets
 * (other methods, --no-cache-response URLs, dummy answers). Requests without valid step
 * credentials are only counted: the builder compares the count before and after a step to
 * learn whether some client of that step ignored its credentials.
 */
import type { ActionName, RequestFacts } from '../types.js';

export interface AttributedAsset {
  /** assets.json key (credentials already redacted). */
  key: string;
  /** What the step was served; '' for a missing asset. */
  sha256: string;
  size: number;
  /** `replayed` from the store, `recorded` from upstream now, `missing` (offline 404). */
  status: 'replayed' | 'recorded' | 'missing';
}

export interface OtherRequest {
  method: string;
  key: string;
  /** The proxy action: pass-through, dummy-ok, deny-method. */
  action: string;
}

interface StepRecord {
  assets: Map<string, AttributedAsset>;
  other: OtherRequest[];
  pending: Set<Promise<unknown>>;
}

/** Bound on remembered non-asset requests per step (a step may poll a registry API forever). */
const MAX_OTHER = 1000;

export class AttributionLedger {
  private readonly steps = new Map<string, StepRecord>();
  /** Requests (plain or inside CONNECT) that carried no valid step credentials. */
  unattributed = 0;

  private step(id: string): StepRecord {
    let s = this.steps.get(id);
    if (!s) this.steps.set(id, (s = { assets: new Map(), other: [], pending: new Set() }));
    return s;
  }

  /**
   * Attributes one request once its action has finished: `resolve` says what asset the request
   * was served; a request that got none (pass-through, dummy answer, failed recording) is
   * listed under `other`. A step's answer waits for its requests in flight (a recording
   * commits after the client already has its last byte).
   */
  observe(id: string | undefined, f: RequestFacts, action: ActionName, work: Promise<void> | void, resolve: () => Promise<AttributedAsset | undefined>): void {
    if (id === undefined) {
      this.unattributed++;
      return;
    }
    const s = this.step(id);
    const done = (async () => {
      await Promise.resolve(work).catch(() => undefined);
      const a = await resolve().catch(() => undefined);
      if (a) {
        // A later answer for the same key wins only over a missing one (first fetch counts).
        const had = s.assets.get(a.key);
        if (!had || had.status === 'missing') s.assets.set(a.key, a);
      } else if (s.other.length < MAX_OTHER) {
        s.other.push({ method: f.method, key: f.key, action });
      }
    })();
    s.pending.add(done);
    void done.finally(() => s.pending.delete(done));
  }

  /** What step `id` fetched so far, after its requests in flight have settled (or `waitMs`). */
  async report(id: string, waitMs: number): Promise<{ assets: AttributedAsset[]; other: OtherRequest[] }> {
    const s = this.steps.get(id);
    if (!s) return { assets: [], other: [] };
    if (s.pending.size) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...s.pending]), new Promise((r) => (timer = setTimeout(r, waitMs)))]);
      clearTimeout(timer);
    }
    const assets = [...s.assets.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { assets, other: [...s.other] };
  }

  forget(id: string): void {
    this.steps.delete(id);
  }
}
