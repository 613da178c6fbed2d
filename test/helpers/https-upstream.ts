/**
 * An in-process upstream for proxy tests: one route table served over HTTPS (leaf from a CA
 * generated at test time, for `localhost` and 127.0.0.1) and plain HTTP, both on loopback.
 * Counts hits per path and records the last request headers so tests can assert what the
 * proxy forwarded.
 *
 *   const up = await startUpstream(t);
 *   up.route('/a', sendBody('hello'));
 *   await fetch(up.https + '/a') …   up.hits('/a') === 1
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server, type IncomingHttpHeaders } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { gzipSync } from 'node:zlib';
import type { TestContext } from 'node:test';
import type { Socket } from 'node:net';
import { createCa } from '../../src/tls/ca.js';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface Upstream {
  /** `https://localhost:PORT` */
  https: string;
  /** `http://127.0.0.1:PORT` */
  http: string;
  /** PEM of the CA that signed the HTTPS leaf. */
  caPem: string;
  route(path: string, h: Handler): void;
  hits(path: string): number;
  /** TCP connections accepted so far (both listeners): keep-alive reuse shows here. */
  connections(): number;
  /** Request headers of the last hit on `path`. */
  lastHeaders(path: string): IncomingHttpHeaders | undefined;
  close(): Promise<void>;
}

export async function startUpstream(t?: Pick<TestContext, 'after'>): Promise<Upstream> {
  const ca = await createCa({ commonName: 'test upstream CA' });
  const routes = new Map<string, Handler>();
  const hits = new Map<string, number>();
  const last = new Map<string, IncomingHttpHeaders>();
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    last.set(path, req.headers);
    const h = routes.get(path) ?? routes.get(path.replace(/\?.*$/, ''));
    if (h) return h(req, res);
    res.writeHead(404, { 'content-type': 'text/plain' }).end(`no route ${path}`);
  };
  const https = createHttpsServer(
    { SNICallback: (name, cb) => ca.secureContextFor(name).then((c) => cb(null, c), cb), secureContext: await ca.secureContextFor('localhost') },
    handle,
  );
  const http = createHttpServer(handle);
  const sockets = new Set<Socket>();
  let connections = 0;
  for (const s of [https, http] as Server[]) {
    s.on('connection', (sock: Socket) => {
      connections++;
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
    });
  }
  const listen = (s: Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));
  const [hp, p] = await Promise.all([listen(https), listen(http)]);
  const up: Upstream = {
    https: `https://localhost:${hp}`,
    http: `http://127.0.0.1:${p}`,
    caPem: ca.certPem,
    route: (path, h) => void routes.set(path, h),
    hits: (path) => hits.get(path) ?? 0,
    connections: () => connections,
    lastHeaders: (path) => last.get(path),
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([https, http].map((s) => new Promise((r) => s.close(r))));
    },
  };
  t?.after(() => up.close());
  return up;
}

/** 200 with `body` and headers (Content-Length set unless `chunked`). */
export function sendBody(body: Buffer | string, headers: Record<string, string | string[]> = {}, opts: { chunked?: boolean; status?: number } = {}): Handler {
  const buf = Buffer.from(body);
  return (_req, res) => {
    res.writeHead(opts.status ?? 200, { 'content-type': 'application/octet-stream', ...(opts.chunked ? {} : { 'content-length': String(buf.length) }), ...headers });
    res.end(buf);
  };
}

/** 200 with gzip-encoded `text`, whatever the client accepts (as some CDNs do). */
export function sendGzip(text: string, headers: Record<string, string> = {}): Handler {
  return sendBody(gzipSync(Buffer.from(text)), { 'content-type': 'text/plain', 'content-encoding': 'gzip', ...headers });
}

export function redirect(to: string, status = 302): Handler {
  return (_req, res) => res.writeHead(status, { location: to }).end();
}

/** Sends `total` advertised bytes but resets the connection after `sendBytes`. */
export function resetMidBody(total: number, sendBytes: number): Handler {
  return (req, res) => {
    res.writeHead(200, { 'content-length': String(total) });
    res.write(Buffer.alloc(sendBytes, 0x61), () => setTimeout(() => req.socket.destroy(), 20));
  };
}

/** Streams `chunks` of `chunkSize` bytes `delayMs` apart (a slow upstream). */
export function slowBody(chunks: number, chunkSize: number, delayMs: number): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-length': String(chunks * chunkSize) });
    let i = 0;
    const tick = () => {
      if (res.destroyed) return;
      res.write(Buffer.alloc(chunkSize, 0x30 + (i % 10)));
      if (++i === chunks) res.end();
      else setTimeout(tick, delayMs);
    };
    tick();
  };
}

/**
 * A registry-style protected resource: 401 + Bearer challenge unless `Authorization: Bearer
 * TOKEN`; pair with `tokenEndpoint` mounted at `realmPath`.
 */
export function bearerProtected(upstreamBase: () => string, realmPath: string, token: string, inner: Handler): Handler {
  return (req, res) => {
    if (req.headers.authorization === `Bearer ${token}`) return inner(req, res);
    res
      .writeHead(401, {
        'www-authenticate': `Bearer realm="${upstreamBase()}${realmPath}",service="test-registry",scope="repository:lib/x:pull"`,
        'content-type': 'application/json',
      })
      .end('{"errors":[{"code":"UNAUTHORIZED"}]}');
  };
}

export function tokenEndpoint(token: string): Handler {
  return (req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.searchParams.get('service') !== 'test-registry' || u.searchParams.get('scope') !== 'repository:lib/x:pull') {
      return void res.writeHead(400).end('bad token request');
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token }));
  };
}
