/**
 * Registry back-pressure (SPEC §11): 429 Too Many Requests (Docker Hub's pull rate limit) and
 * 503 Service Unavailable are retried a bounded number of times, waiting what the registry's
 * Retry-After asks (RFC 9110 §10.2.3: delay-seconds or an HTTP-date), else 1 s, 2 s, 4 s….
 * A registry asking for longer than MAX_RETRY_DELAY_MS is not waited for: Docker Hub's limit
 * resets after hours, and a build should say so rather than sit silent.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** Statuses that mean "come back later". */
export const BUSY_STATUSES = new Set([429, 503]);
/** Attempts in all, the first one included. */
export const MAX_BUSY_ATTEMPTS = 5;
/** The longest Retry-After honoured (and the cap of the exponential default). */
export const MAX_RETRY_DELAY_MS = 60_000;

/**
 * The wait before attempt `attempt + 1` (attempt counts from 1), or undefined when the
 * registry asks for more than MAX_RETRY_DELAY_MS. `now` is for tests.
 */
export function retryDelayMs(retryAfter: string | string[] | undefined, attempt: number, now = Date.now()): number | undefined {
  const v = (Array.isArray(retryAfter) ? retryAfter[0] : retryAfter)?.trim();
  let ms: number | undefined;
  if (v && /^\d+$/.test(v)) ms = Number(v) * 1000;
  else if (v) {
    const at = Date.parse(v);
    if (!Number.isNaN(at)) ms = Math.max(0, at - now);
  }
  if (ms === undefined) return Math.min(MAX_RETRY_DELAY_MS, 1000 * 2 ** (attempt - 1));
  return ms > MAX_RETRY_DELAY_MS ? undefined : ms;
}

/** Waits `ms`, or rejects when `signal` aborts. */
export function waitBeforeRetry(ms: number, signal?: AbortSignal): Promise<void> {
  return sleep(ms, undefined, signal ? { signal } : {});
}

/** `HTTP 429 (too many requests)` / `HTTP 503 (service unavailable)` */
export function busyStatusText(status: number): string {
  return `HTTP ${status} (${status === 429 ? 'too many requests' : 'service unavailable'})`;
}
