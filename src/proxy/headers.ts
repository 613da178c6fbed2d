/** Header handling shared by the proxy's actions. */
import type { OutgoingHttpHeaders } from 'node:http';
import { HOP_BY_HOP, type HeaderMap } from '../upstream/client.js';
import { SECRET_HEADERS } from '../util/redact.js';

/** Go's textproto canonical form: `content-type` → `Content-Type`, `x-checksum-sha1` → `X-Checksum-Sha1`. */
export function canonicalHeaderName(name: string): string {
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

/**
 * Validators recorded with every new entry, whatever `--cache-header` says, so that `htvend
 * outdated` can ask upstream with a conditional request. The `--cache-header` default stays
 * the Go tool's list: files are only ever loaded and saved unchanged (byte-identical), and the
 * Go tool reads extra header names like any other (docs/lifecycle.md). Not replayed to
 * clients (recordedHeaders() in replay.ts): replay answers are always full 200s.
 */
export const VALIDATOR_HEADERS = ['ETag', 'Last-Modified'] as const;

/**
 * The headers recorded in assets.json: the `--cache-header` names plus the validators,
 * canonicalised, first value. Credentials are never recorded, even if someone lists them.
 */
export function pickRecordedHeaders(upstream: HeaderMap, cacheHeaders: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of [...cacheHeaders, ...VALIDATOR_HEADERS]) {
    const lower = name.toLowerCase();
    if (SECRET_HEADERS.has(lower)) continue;
    const v = upstream[lower];
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined) out[canonicalHeaderName(name)] = first;
  }
  return out;
}

/** Upstream response headers as passed on to the client: hop-by-hop ones removed. */
export function responseHeadersForClient(upstream: HeaderMap): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(upstream)) {
    if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  }
  return out;
}

/** First value of a request/response header. */
export function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
