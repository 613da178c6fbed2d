/**
 * `htvend mirror`'s HTTP side: a read-only OCI distribution endpoint (the pull half of the
 * distribution spec) answered from assets.json and the blob store.
 *
 *   GET/HEAD /v2/                                 → 200 {} (no auth: nothing is secret here)
 *   GET/HEAD /v2/<name>/manifests/<tag|digest>    → the recorded manifest
 *   GET/HEAD /v2/<name>/blobs/<digest>            → the recorded blob (Range: 206 slices)
 *
 * Serving goes through the proxy's replayEntry() (src/proxy/replay.ts): recorded headers,
 * Content-Length from the blob, Range, and the bytes verified as they stream (a corrupt blob
 * cuts the connection before its end, so a client never accepts a wrong blob). Anything not
 * recorded gets the spec's error JSON with a 404 and a warning naming what was asked.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import type { AssetEntry } from '../manifest/types.js';
import type { BlobStore } from '../store/store.js';
import type { CertificateAuthority } from '../tls/ca.js';
import type { Logger } from '../util/log.js';
import { describeError } from '../util/errors.js';
import { Counters } from '../proxy/counters.js';
import { replayEntry } from '../proxy/replay.js';
import { hostPortOf, listen, parseListenAddr } from '../proxy/server.js';
import { tlsFrontFor } from '../tls/listener.js';
import { isRepositoryName, isTag } from '../registry/reference.js';
import type { MirrorCatalog, MirrorKind } from './catalog.js';

export interface MirrorOptions {
  catalog: MirrorCatalog;
  store: BlobStore;
  log: Logger;
  /** Plain HTTP listener, `host:port`. */
  listenAddr: string;
  /** TLS listener, `host:port`; needs `ca`. */
  tlsListenAddr?: string | undefined;
  ca?: CertificateAuthority | undefined;
  signal?: AbortSignal | undefined;
}

export interface RunningMirror {
  url: string;
  tlsUrl?: string | undefined;
  counters(): Record<string, number>;
  /** What clients asked for that is not recorded, sorted, each once. */
  missing(): string[];
  close(): Promise<void>;
}

const API_HEADERS = { 'Docker-Distribution-API-Version': 'registry/2.0' };
const ROUTE = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** The distribution spec's error body (`{"errors":[{code,message,detail}]}`). */
function ociError(req: IncomingMessage, res: ServerResponse, status: number, code: string, message: string, detail?: unknown): void {
  const body = JSON.stringify({ errors: [{ code, message, detail: detail ?? null }] });
  res.writeHead(status, { ...API_HEADERS, 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * The entry with the headers a registry client relies on: Docker-Content-Digest is the
 * sha256 of the body when the recording lacks it (containerd resolves a tag with HEAD and
 * reads the digest from that header). Not for an encoded body, whose hash is not the digest.
 */
function withDigestHeader(entry: AssetEntry): AssetEntry {
  const names = Object.keys(entry.Headers).map((k) => k.toLowerCase());
  if (names.includes('docker-content-digest') || names.includes('content-encoding')) return entry;
  return { ...entry, Headers: { ...entry.Headers, 'Docker-Content-Digest': `sha256:${entry.Sha256}` } };
}

export async function startMirror(o: MirrorOptions): Promise<RunningMirror> {
  const { catalog, store, log } = o;
  const counters = new Counters();
  const missing = new Set<string>();
  const replayCtx = { store, log, counters, signal: o.signal };

  const notFound = (req: IncomingMessage, res: ServerResponse, kind: MirrorKind, what: string, why: string) => {
    counters.add('htvend_missing_asset_total');
    missing.add(what);
    log.warn(`mirror: ${req.method} ${what}: ${why}`);
    if (kind === 'manifests') ociError(req, res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown', { name: what, reason: why });
    else ociError(req, res, 404, 'BLOB_UNKNOWN', 'blob unknown to registry', { name: what, reason: why });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://mirror');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return ociError(req, res, 405, 'UNSUPPORTED', `htvend mirror is read-only: ${req.method} is not served`);
    }
    if (url.pathname === '/v2/' || url.pathname === '/v2') {
      res.writeHead(200, { ...API_HEADERS, 'Content-Type': 'application/json', 'Content-Length': '2' }).end(req.method === 'HEAD' ? undefined : '{}');
      return;
    }
    const m = ROUTE.exec(url.pathname);
    if (!m) return ociError(req, res, 404, 'UNSUPPORTED', `not a pull route of the distribution API: ${url.pathname}`);
    const [, name, kind, reference] = m as unknown as [string, string, MirrorKind, string];
    const ns = url.searchParams.get('ns') || undefined;
    const what = `${ns ? `${ns}/` : ''}${name}${DIGEST.test(reference) ? '@' : ':'}${reference}`;
    if (!isRepositoryName(name)) return ociError(req, res, 400, 'NAME_INVALID', `invalid repository name ${JSON.stringify(name)}`);
    if (kind === 'blobs' ? !DIGEST.test(reference) : !DIGEST.test(reference) && !isTag(reference)) {
      return ociError(req, res, 400, kind === 'blobs' ? 'DIGEST_INVALID' : 'MANIFEST_INVALID', `invalid reference ${JSON.stringify(reference)}`);
    }
    const r = catalog.resolve({ kind, name, reference, ns });
    if (r.kind === 'ambiguous') {
      return notFound(req, res, kind, what, `recorded from several registries (${r.origins.join(', ')}): give --default-registry or use a client that sends ns= (containerd)`);
    }
    if (r.kind === 'unknown') return notFound(req, res, kind, what, `not recorded (looked up ${r.tried.join(', ') || 'no registry holding this repository'})`);
    const size = (await store.stat(r.entry.Sha256, { signal: o.signal }))?.size;
    if (size === undefined) return notFound(req, res, kind, what, `recorded as ${r.key}, but blob ${r.entry.Sha256} is not in ${store.description}`);
    log.debug(`mirror: ${req.method} ${what} → ${r.key} (blob ${r.entry.Sha256}, ${size} bytes)`);
    for (const [k, v] of Object.entries(API_HEADERS)) res.setHeader(k, v);
    await replayEntry(replayCtx, req, res, withDigestHeader(r.entry), size);
  }

  const server: Server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      log.error(`mirror: ${req.method} ${req.url}: ${describeError(e)}`);
      if (!res.headersSent) ociError(req, res, 500, 'UNKNOWN', describeError(e));
      else res.destroy();
    });
  });
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('clientError', (_e, socket: Socket) => socket.destroy());

  const servers: (Server | NetServer)[] = [server];
  try {
    const addr = await listen(server, o.listenAddr, '--listen-addr');
    let tlsUrl: string | undefined;
    if (o.tlsListenAddr) {
      if (!o.ca) throw new Error('a TLS listener needs a CA');
      const front = await tlsFrontFor(server, o.ca, parseListenAddr(o.tlsListenAddr, '--tls-listen-addr').host, log, 'mirror TLS listener');
      servers.push(front);
      tlsUrl = `https://${hostPortOf(await listen(front, o.tlsListenAddr, '--tls-listen-addr'))}`;
    }
    let closing: Promise<void> | undefined;
    return {
      url: `http://${hostPortOf(addr)}`,
      tlsUrl,
      counters: () => counters.snapshot(),
      missing: () => [...missing].sort(),
      close: () => (closing ??= closeAll(servers, sockets)),
    };
  } catch (e) {
    await closeAll(servers, sockets);
    throw e;
  }
}

async function closeAll(servers: (Server | NetServer)[], sockets: Set<Socket>): Promise<void> {
  const stopped = Promise.all(servers.map((s) => new Promise((r) => (s.listening ? s.close(r) : r(undefined)))));
  for (const s of sockets) s.destroy();
  await stopped;
}
