/**
 * The one GET the proxy performs to record a URL, shared with `htvend verify --fetch` so a
 * re-fetch produces the same bytes the proxy stored (SPEC §3 Content-Encoding).
 *
 * - Range / If-Range and conditional headers are dropped: a recording is always the whole
 *   200 body, whatever the client asked.
 * - Redirects are followed here; the caller keys the entry by the URL it asked for.
 * - Registry bearer-token dance: a 401 with `WWW-Authenticate: Bearer realm=…` is answered by
 *   fetching an anonymous token from the realm and retrying once. Token URLs are fetched
 *   directly, never through the proxy's rules, so they are never recorded.
 */
import type { Readable } from 'node:stream';
import type { AssetEntry } from '../manifest/types.js';
import { HtvendError } from '../util/errors.js';
import { redactUrl } from '../util/redact.js';
import type { HeaderMap, UpstreamClient, UpstreamResponse } from './client.js';
import { bearerChallenge } from '../util/www-authenticate.js';

/** Request headers never forwarded on a recording fetch (lowercase). */
export const NOT_FORWARDED_WHEN_RECORDING = new Set([
  'range',
  'if-range',
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
]);

const MAX_TOKEN_BYTES = 1024 * 1024;

export interface FetchForRecordingOptions {
  signal?: AbortSignal | undefined;
  /** The client's request headers (proxy), or `headersForRefetch(entry)` (verify --fetch). */
  headers?: HeaderMap | undefined;
}

/** Parses `Bearer realm="…",service="…",scope="…"` (RFC 6750 §3 auth-params). */
export const parseBearerChallenge = bearerChallenge;

async function readSmall(body: Readable, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > MAX_TOKEN_BYTES) {
      body.destroy();
      throw new HtvendError('UPSTREAM', `${what}: token response larger than ${MAX_TOKEN_BYTES} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Fetches an anonymous token for a Bearer challenge; undefined if the realm refuses. */
async function anonymousToken(client: UpstreamClient, challenge: Record<string, string>, signal?: AbortSignal): Promise<string | undefined> {
  const u = new URL(challenge.realm!);
  if (challenge.service) u.searchParams.set('service', challenge.service);
  for (const s of (challenge.scope ?? '').split(' ').filter(Boolean)) u.searchParams.append('scope', s);
  const res = await client.request(u.toString(), { method: 'GET', headers: { accept: 'application/json' }, signal, followRedirects: true });
  if (res.status !== 200) {
    res.body.resume();
    return undefined;
  }
  const text = await readSmall(res.body, `token from ${redactUrl(challenge.realm!)}`);
  try {
    const j = JSON.parse(text) as { token?: unknown; access_token?: unknown };
    const t = typeof j.token === 'string' ? j.token : typeof j.access_token === 'string' ? j.access_token : undefined;
    return t || undefined;
  } catch {
    return undefined;
  }
}

/** The headers a recording GET sends, from the client's request headers. */
export function recordingRequestHeaders(clientHeaders: HeaderMap = {}): HeaderMap {
  const out: HeaderMap = {};
  for (const [k, v] of Object.entries(clientHeaders)) {
    if (!NOT_FORWARDED_WHEN_RECORDING.has(k.toLowerCase())) out[k] = v;
  }
  return out;
}

/**
 * Headers for re-fetching a recorded entry without its original client (verify --fetch):
 * ask for the recorded Content-Encoding (or none) and the recorded Content-Type, so the
 * upstream has every reason to send the same bytes again.
 */
export function headersForRefetch(entry: AssetEntry): HeaderMap {
  const enc = entry.Headers['Content-Encoding'];
  const type = entry.Headers['Content-Type'];
  return { 'accept-encoding': enc ? enc : 'identity', ...(type ? { accept: type } : {}) };
}

/**
 * Performs the recording GET of `url`: conditionals and Range dropped, redirects followed,
 * a Bearer challenge answered once with an anonymous token. The caller records the body only
 * when `status === 200`.
 */
export async function fetchForRecording(client: UpstreamClient, url: string, opts: FetchForRecordingOptions = {}): Promise<UpstreamResponse> {
  const headers = recordingRequestHeaders(opts.headers);
  const res = await client.request(url, { method: 'GET', headers, signal: opts.signal, followRedirects: true });
  if (res.status !== 401) return res;
  const challenge = parseBearerChallenge(res.headers['www-authenticate']);
  if (!challenge) return res;
  const token = await anonymousToken(client, challenge, opts.signal);
  if (!token) return res;
  res.body.resume();
  const authed: HeaderMap = { ...Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization')), authorization: `Bearer ${token}` };
  return client.request(url, { method: 'GET', headers: authed, signal: opts.signal, followRedirects: true });
}
