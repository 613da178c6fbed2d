/**
 * The proxy's own HTTP client for upstream servers (SPEC §3): honours htvend's own
 * HTTP(S)_PROXY / NO_PROXY, trusts the system roots plus SSL_CERT_FILE / SSL_CERT_DIR /
 * NODE_EXTRA_CA_CERTS of htvend's startup environment, never decodes Content-Encoding (the
 * body is the bytes on the wire) and follows redirects itself when asked.
 *
 * undici is used rather than node:https because its EnvHttpProxyAgent already implements
 * proxy selection with NO_PROXY matching (and CONNECT tunnelling through a corporate proxy),
 * its keep-alive pool is per origin, and `request()` hands back the raw body stream.
 */
import type { Readable } from 'node:stream';
// undici is loaded by createUpstreamClient() only: `htvend offline` never needs it (~20 MiB RSS).
import type { Dispatcher, EnvHttpProxyAgent } from 'undici';
import { HtvendError, describeError, isAbortError } from '../util/errors.js';
import { redactUrl } from '../util/redact.js';
import type { Logger } from '../util/log.js';
import { loadTrustedRoots, trustedSecureContext } from './roots.js';
import { newEnvHttpProxyAgent } from './undici-lite.js';
import { DirectAgent, type DirectTarget, type RawBody } from './direct/agent.js';

/** Response header values as Node and undici give them: lowercase names. */
export type HeaderMap = Record<string, string | string[] | undefined>;

export interface UpstreamRequestOptions {
  method: string;
  headers: HeaderMap;
  body?: Readable | undefined;
  signal?: AbortSignal | undefined;
  /** Follow 301/302/303/307/308 here (GET/HEAD only); `url` of the result is the final one. */
  followRedirects?: boolean | undefined;
}

export interface UpstreamResponse {
  status: number;
  headers: HeaderMap;
  /** The body as on the wire (no Content-Encoding undone). Consume or destroy it. */
  body: Readable;
  /** The URL that produced this response (after redirects). */
  url: string;
  /**
   * Set by the direct path (src/upstream/direct/): the body without a stream per read. A
   * consumer uses either this or `body`, never both (`body` is made on first access).
   */
  raw?: RawBody | undefined;
}

export interface UpstreamClient {
  request(url: string, opts: UpstreamRequestOptions): Promise<UpstreamResponse>;
  close(): Promise<void>;
}

export interface UpstreamClientOptions {
  /** Snapshot of htvend's own environment taken at startup. */
  env: Readonly<Record<string, string | undefined>>;
  log: Logger;
  /** Extra trusted roots (PEM), e.g. a test upstream's CA. */
  extraRoots?: readonly string[];
  /** Override the system bundle locations (tests). */
  systemBundles?: readonly string[];
  /**
   * Idle timeout in ms (`--upstream-timeout`, SPEC §11): connecting, waiting for the response
   * headers, and any gap between two body chunks. Default {@link DEFAULT_UPSTREAM_TIMEOUT_MS}.
   */
  idleTimeoutMs?: number | undefined;
  signal?: AbortSignal;
  /**
   * Use the direct path (src/upstream/direct/) for plain GET/HEAD requests when htvend has no
   * proxy of its own. Default true; false keeps every request on undici (A/B benchmarks).
   */
  direct?: boolean | undefined;
}

/** 60 s: long enough for a slow mirror's first byte, short enough that a stall ends a build. */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 60_000;

/** Headers that belong to one connection and are never forwarded (RFC 9110 §7.6.1). */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'expect',
]);

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 20;
/** 1 MiB body buffer: fewer, larger chunks through the proxy (64 KiB cost ~15% on 1 GiB, 256 KiB ~17% more CPU than 1 MiB). */
const BODY_HIGH_WATER_MARK = 1024 * 1024;

/** The direct path's view of an origin (`scheme://host[:port]`, userinfo already removed). */
function directTarget(origin: string, path: string): DirectTarget {
  const u = new URL(origin);
  const protocol = u.protocol === 'https:' ? 'https:' : 'http:';
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return { protocol, host, port: u.port ? Number(u.port) : protocol === 'https:' ? 443 : 80, authority: u.host, path };
}

/** Lower-case first-match lookup across both spellings (curl prefers lowercase). */
function envVar(env: UpstreamClientOptions['env'], name: string): string {
  return env[name.toLowerCase()] ?? env[name.toUpperCase()] ?? '';
}

/** Splits `scheme://authority/path?query` textually so the path keeps its exact encoding. */
export function splitUrl(url: string): { origin: string; path: string } {
  const m = /^(https?:\/\/[^/?#]+)([^#]*)/i.exec(url);
  if (!m) throw new HtvendError('INPUT', `not an http(s) URL: ${redactUrl(url)}`);
  const authority = m[1]!.replace(/\/\/[^@/]*@/, '//'); // userinfo never goes on the wire as a host
  return { origin: authority, path: m[2] || '/' };
}

function forwardable(headers: HeaderMap): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k.toLowerCase())) continue;
    out[k] = v;
  }
  return out;
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

/** Creates the upstream client. Reads the trusted roots once. */
interface Connections {
  agent: EnvHttpProxyAgent;
  direct: DirectAgent | undefined;
}

export async function createUpstreamClient(opts: UpstreamClientOptions): Promise<UpstreamClient> {
  const { env, log } = opts;
  const idle = opts.idleTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
  // Built on the first request, not at startup: reading the roots, parsing them into a secure
  // context and loading undici cost ~80 ms of CPU, and a session whose child fetches nothing
  // (or replays only) never needs them (docs/build-cache.md, "Where the warm time goes").
  let conn: Promise<Connections> | undefined;
  const connections = (): Promise<Connections> => (conn ??= connect());
  async function connect(): Promise<Connections> {
    const roots = await loadTrustedRoots({ env, systemBundles: opts.systemBundles, signal: opts.signal });
    const ca = [...roots, ...(opts.extraRoots ?? [])];
    // One secure context for every connection: passing `ca` alone makes Node parse the few
    // hundred system roots again for each new TLS connection (measured: 15% of the CPU of a
    // recording run with many small files). Shared with the registry transport (roots.ts).
    const tlsOpts = { secureContext: trustedSecureContext(ca) };
    // '' (not undefined) for unset values: undici would otherwise fall back to process.env,
    // which by then may hold the child's settings (pointing at htvend itself).
    const agent = newEnvHttpProxyAgent({
      httpProxy: envVar(env, 'http_proxy'),
      httpsProxy: envVar(env, 'https_proxy'),
      noProxy: envVar(env, 'no_proxy'),
      connect: tlsOpts,
      requestTls: tlsOpts,
      proxyTls: tlsOpts,
      keepAliveTimeout: 30_000,
      // Every network wait has a timeout (SPEC §11): a stalled upstream errors the request or
      // its body stream, so a recording is dropped instead of waited on forever.
      connectTimeout: Math.min(idle, 10_000), // undici default 10 s
      headersTimeout: idle,
      bodyTimeout: idle,
    } as ConstructorParameters<typeof EnvHttpProxyAgent>[0]);
    // Without a proxy of htvend's own, plain GET/HEAD requests (every recording) take the lean
    // path: node:tls with reads into one fixed buffer (docs/proxy.md, "Recording, third round").
    // Everything else, and everything behind a proxy, stays on undici.
    const direct =
      opts.direct === false || envVar(env, 'http_proxy') || envVar(env, 'https_proxy')
        ? undefined
        : new DirectAgent({ secureContext: tlsOpts.secureContext, connectTimeoutMs: Math.min(idle, 10_000), idleTimeoutMs: idle });
    return { agent, direct };
  }


  async function once(url: string, method: string, headers: HeaderMap, body: Readable | undefined, signal?: AbortSignal): Promise<UpstreamResponse> {
    const { origin, path } = splitUrl(url);
    const { agent, direct } = await connections();
    if (direct && !body && (method === 'GET' || method === 'HEAD')) {
      try {
        const d = await direct.request(directTarget(origin, path), method, forwardable(headers), signal);
        return {
          status: d.status,
          headers: d.headers,
          raw: d.raw,
          url,
          get body() {
            return d.body;
          },
        };
      } catch (e) {
        if (isAbortError(e)) throw e;
        throw new HtvendError('UPSTREAM', `${method} ${redactUrl(url)}: ${describeError(e)}`, { cause: e });
      }
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await agent.request({
        origin,
        path,
        method: method as Dispatcher.HttpMethod,
        headers: forwardable(headers),
        body: body ?? null,
        signal: signal ?? null,
        highWaterMark: BODY_HIGH_WATER_MARK,
      });
    } catch (e) {
      if (isAbortError(e)) throw e;
      throw new HtvendError('UPSTREAM', `${method} ${redactUrl(url)}: ${describeError(e)}`, { cause: e });
    }
    return { status: res.statusCode, headers: res.headers as HeaderMap, body: res.body, url };
  }

  return {
    async request(url, r) {
      let current = url;
      let method = r.method;
      let headers = r.headers;
      let body = r.body;
      for (let hop = 0; ; hop++) {
        const res = await once(current, method, headers, body, r.signal);
        const location = res.headers.location;
        if (!r.followRedirects || !REDIRECTS.has(res.status) || typeof location !== 'string') return res;
        if (hop >= MAX_REDIRECTS) {
          res.body.destroy();
          throw new HtvendError('UPSTREAM', `${redactUrl(url)}: more than ${MAX_REDIRECTS} redirects`);
        }
        res.body.resume(); // drain so the connection returns to the pool
        const next = new URL(location, current).toString();
        log.debug(`upstream ${res.status} redirect ${redactUrl(current)} -> ${redactUrl(next)}`);
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
          method = 'GET';
          body = undefined;
        }
        if (!sameOrigin(current, next)) {
          // Credentials stay with the origin they were meant for; signed CDN URLs also
          // reject requests carrying an Authorization header.
          headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !/^(authorization|cookie)$/i.test(k)));
        }
        current = next;
      }
    },
    close: async () => {
      if (!conn) return;
      const { agent, direct } = await conn;
      await Promise.all([agent.close(), direct?.close()]);
    },
  };
}
