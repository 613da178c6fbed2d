/**
 * A counting semaphore. The remote stores use one per store to bound how many large uploads
 * buffer chunks at the same time: with `export --jobs 8` and several big blobs, memory stays
 * at (slots × chunk buffers) instead of (jobs × chunk buffers), while small blobs, which need
 * no slot, keep all the parallelism.
 */
import { HtvendError } from '../util/errors.js';

export class Slots {
  private free: number;
  private readonly waiters: (() => void)[] = [];

  constructor(count: number) {
    this.free = Math.max(1, count);
  }

  /** Waits for a slot; resolves with its release function (idempotent). */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.free > 0) {
      this.free--;
    } else {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          const i = this.waiters.indexOf(grant);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(signal?.reason ?? new HtvendError('ABORTED', 'aborted while waiting for an upload slot'));
        };
        const grant = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        this.waiters.push(grant);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.free++;
    };
  }
}
