/**
 * Bounded parallelism and retries for commands that move many blobs (verify, export).
 */
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { HtvendError, isAbortError } from './errors.js';

/**
 * Runs `fn` for every item with at most `jobs` calls in flight. Resolves with the results in
 * item order. The first rejection aborts the `signal` handed to the calls still running, waits
 * for them to settle, and is rethrown; callers that want every item processed catch inside `fn`.
 */
export async function mapPool<T, R>(
  items: Iterable<T>,
  jobs: number,
  fn: (item: T, index: number, signal: AbortSignal) => Promise<R>,
  opts: { signal?: AbortSignal | undefined } = {},
): Promise<R[]> {
  if (!Number.isInteger(jobs) || jobs < 1) throw new HtvendError('USAGE', `--jobs must be a positive integer (got ${jobs})`);
  const list = [...items];
  const results = new Array<R>(list.length);
  const inner = new AbortController();
  // Each call in flight hangs a few abort listeners on this one signal (stream pipelines, store
  // uploads, SDK requests): `jobs` × that exceeds Node's default of 10 and would print a
  // MaxListenersExceededWarning although every listener is removed when its call ends.
  setMaxListeners(Math.max(10, jobs * 8), inner.signal);
  const onOuterAbort = () => inner.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let next = 0;
  let firstError: { e: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!firstError && !inner.signal.aborted && next < list.length) {
      const i = next++;
      try {
        results[i] = await fn(list[i]!, i, inner.signal);
      } catch (e) {
        firstError ??= { e };
        inner.abort(e);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(jobs, list.length) }, worker));
  } finally {
    opts.signal?.removeEventListener('abort', onOuterAbort);
  }
  if (firstError) throw firstError.e;
  opts.signal?.throwIfAborted();
  return results;
}

export interface RetryOptions {
  /** Total attempts including the first (default 4). */
  attempts?: number;
  /** Delay before the 2nd attempt; doubles each time, with ±50 % jitter (default 250 ms). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  signal?: AbortSignal | undefined;
  /** Decides whether an error is worth another attempt (default `isTransient`). */
  retryable?: (e: unknown) => boolean;
  /** Called before each wait, e.g. to log `retrying … in 500 ms`. */
  onRetry?: (e: unknown, attempt: number, delayMs: number) => void;
}

const TRANSIENT_ERRNOS = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/**
 * Default retry policy: network-level failures and failing remote stores / upstreams are
 * transient; a wrong digest, a missing blob, bad input, a local disk error or an abort are not
 * (retrying cannot change their outcome).
 */
export function isTransient(e: unknown): boolean {
  if (isAbortError(e)) return false;
  for (let c: unknown = e, depth = 0; c && depth < 8; c = (c as { cause?: unknown }).cause, depth++) {
    const code = (c as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && TRANSIENT_ERRNOS.has(code)) return true;
  }
  return e instanceof HtvendError && (e.code === 'STORE' || e.code === 'UPSTREAM');
}

/** Calls `fn` until it succeeds, an error is not retryable, or the attempts are used up. */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 4;
  const base = opts.baseDelayMs ?? 250;
  const max = opts.maxDelayMs ?? 10_000;
  const retryable = opts.retryable ?? isTransient;
  for (let attempt = 1; ; attempt++) {
    opts.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (e) {
      if (attempt >= attempts || !retryable(e) || opts.signal?.aborted) throw e;
      const delay = Math.round(Math.min(max, base * 2 ** (attempt - 1)) * (0.5 + Math.random()));
      opts.onRetry?.(e, attempt, delay);
      await sleep(delay, undefined, { signal: opts.signal });
    }
  }
}
