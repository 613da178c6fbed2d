/**
 * The recording/replaying MITM proxy (SPEC §3). One node:http server parses every request,
 * whether it arrived as a plain absolute-form proxy request, inside an intercepted CONNECT
 * tunnel, or on the optional TLS listener. Each request is turned into facts, the first
 * matching rule (rules.ts) picks an action, and the action streams the response.
 */
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { type Server as NetServer, type Socket, type AddressInfo } from 'node:net';
import { HtvendError, describeError } from '../util/errors.js';
import { redactUrl } from '../util/redact.js';
import { assetKey } from '../manifest/key.js';
import { Counters } from './counters.js';
import { chooseRule } from './rules.js';
import { replayEntry } from './replay.js';
import { Recorder } from './record.js';
import { passThrough, badGateway } from './passthrough.js';
import { interceptConnect, tunnelOf } from './connect.js';
import { identify, newSessionSecret, type Credentials } from './attribution/identity.js';
import { AttributionLedger, type AttributedAsset } from './attribution/ledger.js';
import { CONTROL_PREFIX, isControlRequest, serveControl } from './attribution/control.js';
import { tlsFrontFor } from '../tls/listener.js';
import type { ProxyOptions, RunningProxy, RequestFacts, ActionName } from './types.js';

export type { ProxyOptions, RunningProxy } from './types.js';

/** Default of `ProxyOptions.headersTimeoutMs`: request headers must arrive within 30 s. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 30_000;
/** Default of `ProxyOptions.exitGraceMs`. */
export const DEFAULT_EXIT_GRACE_MS = 60_000;

/** `host:port`, `:port`, `[v6]:port` → listen arguments. An empty host means loopback. */
export function parseListenAddr(addr: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!m) throw new HtvendError('USAGE', `${flag}: ${JSON.stringify(addr)} is not host:port`);
  const port = Number(m[3]);
  if (port > 65535) throw new HtvendError('USAGE', `${flag}: port ${port} out of range`);
  // Go's ":0" means all interfaces; SPEC §3 says loopback unless told otherwise, and an
  // explicit host (0.0.0.0) is "told otherwise".
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export function listen(server: Server | NetServer, addr: string, flag: string): Promise<AddressInfo> {
  const { host, port } = parseListenAddr(addr, flag);
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(new HtvendError('IO', `${flag}: cannot listen on ${addr}: ${describeError(e)}`, { cause: e }));
    server.once('error', onError);
    // A burst of a thousand clients connecting at once must not overflow Node's default
    // accept backlog of 511 (the kernel caps it at net.core.somaxconn).
    server.listen({ port, host, backlog: 4096 }, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

export function hostPortOf(a: AddressInfo): string {
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** The absolute URL a request is for, or undefined for a request that is not a proxy request. */
function requestUrl(req: IncomingMessage): string | undefined {
  const tunnel = tunnelOf(req.socket);
  const path = req.url ?? '/';
  if (/^https?:\/\//i.test(path)) return path;
  if (!tunnel || !path.startsWith('/')) return undefined;
  // Like the Go tool: scheme from the tunnel, authority from the Host header.
  return `https://${req.headers.host ?? tunnel.authority}${path}`;
}

export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const { mode, assets, store, log } = opts;
  if (mode === 'build' && !opts.upstream) throw new HtvendError('INTERNAL', 'build mode needs an upstream client');
  const counters = new Counters();
  const missing = new Set<string>();
  const missingBlobs = new Set<string>();
  const corrupt = new Set<string>();
  const base = { store, log, counters, signal: opts.signal, onCorrupt: (key: string) => void corrupt.add(key) };
  // Recordings get their own signal: close() cuts those that outlive its grace period.
  const recordings = new AbortController();
  const onOuterAbort = () => recordings.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const recorder = opts.upstream ? new Recorder({ ...base, signal: recordings.signal, upstream: opts.upstream, assets, cacheHeaders: opts.cacheHeaders }) : undefined;
  const matchesAny = (res: RegExp[], key: string) => res.some((r) => r.test(key));
  // Per-step attribution (docs/build-cache.md): who asked for what, for the session's builder.
  const secret = opts.sessionSecret ?? newSessionSecret();
  const ledger = new AttributionLedger();
  const control = { secret, ledger, mode, forceRefresh: opts.forceRefresh };
  const credentialsOf = (req: IncomingMessage): Credentials => {
    const tunnel = tunnelOf(req.socket);
    return tunnel ? (tunnel.credentials ?? { kind: 'none' }) : identify(req.headers['proxy-authorization'], secret);
  };
  /** The asset a finished request was served, for the ledger. */
  const servedAsset = async (f: RequestFacts, action: ActionName): Promise<AttributedAsset | undefined> => {
    if (f.noCache) return undefined;
    if (action === 'replay') return { key: f.key, sha256: f.entry!.Sha256, size: f.blobSize!, status: 'replayed' };
    if (action === 'deny-missing') return { key: f.key, sha256: '', size: 0, status: 'missing' };
    if (action !== 'record' || !recorder?.recordedKeys.has(f.key)) return undefined;
    const entry = assets.get(f.key);
    const st = entry && (await store.stat(entry.Sha256, { signal: opts.signal }));
    return entry && st ? { key: f.key, sha256: entry.Sha256, size: st.size, status: 'recorded' } : undefined;
  };

  async function facts(req: IncomingMessage, url: string): Promise<RequestFacts> {
    const key = assetKey(url);
    const method = (req.method ?? 'GET').toUpperCase();
    const f: RequestFacts = { mode, method, url, key, noCache: matchesAny(opts.noCacheResponse, key), dummyOk: matchesAny(opts.dummyOkResponse, key) };
    if (f.noCache || (method !== 'GET' && method !== 'HEAD')) return f;
    let entry = assets.get(key);
    // --force-refresh: entries of the previous file are ignored, this run's are replayed.
    if (entry && opts.forceRefresh && mode === 'build' && !recorder?.recordedKeys.has(key)) entry = undefined;
    if (entry) {
      f.entry = entry;
      f.blobSize = (await store.stat(entry.Sha256, { signal: opts.signal }))?.size;
    }
    return f;
  }

  const actions: Record<ActionName, (req: IncomingMessage, res: ServerResponse, f: RequestFacts) => Promise<void> | void> = {
    'dummy-ok': (_req, res) => {
      counters.add('htvend_dummy_ok_total');
      res.writeHead(200, { 'Content-Length': '0' }).end();
    },
    'pass-through': (req, res, f) => {
      counters.add('htvend_passthrough_total');
      return passThrough({ upstream: opts.upstream!, log, signal: opts.signal }, req, res, f.url);
    },
    'deny-method': (_req, res, f) => {
      counters.add('htvend_denied_total');
      log.warn(`offline: refused ${f.method} ${f.key} (only GET and HEAD are replayed)`);
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end(`htvend offline: ${f.method} is not replayed, only GET and HEAD\n`);
    },
    replay: (req, res, f) => {
      // Build mode: reusing an entry marks it as requested by this run (AssetLookup contract).
      if (mode === 'build') assets.put(f.key, f.entry!);
      return replayEntry(base, req, res, f.entry!, f.blobSize!, f.key);
    },
    record: (req, res, f) => recorder!.serve(req, res, f),
    'deny-missing': (_req, res, f) => {
      counters.add('htvend_missing_asset_total');
      if (f.entry) {
        // Listed in assets.json, but the bytes are gone: a store problem, not a recording gap.
        counters.add('htvend_missing_blob_total');
        missingBlobs.add(f.key);
        log.warn(`missing blob for URL: ${f.key} (blob ${f.entry.Sha256} is listed in assets.json but not in ${store.description})`);
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`htvend offline: recorded, but its blob is missing from the store: ${f.key}\n`);
        return;
      }
      missing.add(f.key);
      log.warn(`missing asset for URL: ${f.key}`);
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`htvend offline: not recorded: ${f.key}\n`);
    },
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!tunnelOf(req.socket) && isControlRequest(req)) return serveControl(control, req, res);
    const who = credentialsOf(req);
    // Step credentials are for us only: never passed upstream, logged or recorded.
    delete req.headers['proxy-authorization'];
    const url = requestUrl(req);
    if (!url) {
      res.writeHead(400, { 'Content-Type': 'text/plain' }).end('htvend is a proxy: send absolute-form requests or CONNECT\n');
      return;
    }
    try {
      const f = await facts(req, url);
      const rule = chooseRule(f);
      if (log.level === 'debug') log.debug(`rule ${rule.name}: ${rule.explain(f)}`);
      const work = actions[rule.action](req, res, f);
      ledger.observe(who.kind === 'step' ? who.id : undefined, f, rule.action, work, () => servedAsset(f, rule.action));
      await work;
    } catch (e) {
      log.error(`${req.method} ${redactUrl(url)}: ${describeError(e)}`);
      badGateway(res, describeError(e));
    }
  }

  // Slow-loris (SPEC §11): a client must finish its request headers within headersTimeout;
  // Node checks every connectionsCheckingInterval, so that is a fraction of the timeout.
  // requestTimeout stays off: request bodies (uploads through the proxy) may take long.
  const headersTimeout = opts.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  const server = createServer(
    { requestTimeout: 0, headersTimeout, connectionsCheckingInterval: Math.max(100, Math.min(5_000, headersTimeout / 4)), keepAliveTimeout: 30_000 } as Parameters<typeof createServer>[0],
    (req, res) => void handle(req, res),
  );
  // Clients that half-close after sending their request (busybox wget shuts down its write
  // side) must still get the response: by default http.Server aborts such requests.
  // Not in @types/node: an http.Server field that Node reads when a socket ends (socketOnEnd).
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => interceptConnect({ server, ca: opts.ca, log, identify: (h) => identify(h, secret) }, req, socket, head));
  server.on('clientError', (_e, socket: Socket) => socket.destroy());

  const addr = await listen(server, opts.listenAddr ?? '127.0.0.1:0', '--listen-addr');
  const hostPort = hostPortOf(addr);
  let tlsServer: NetServer | undefined;
  let tlsUrl: string | undefined;
  if (opts.tlsListenAddr) {
    // The proxy itself over TLS: decrypted sockets are parsed by the same HTTP server.
    const { host } = parseListenAddr(opts.tlsListenAddr, '--tls-listen-addr');
    tlsServer = await tlsFrontFor(server, opts.ca, host, log, 'TLS listener');
    const taddr = await listen(tlsServer, opts.tlsListenAddr, '--tls-listen-addr');
    tlsUrl = `https://${hostPortOf(taddr)}`;
  }
  log.debug(`proxy (${mode}) listening on ${hostPort}${tlsUrl ? ` and ${tlsUrl}` : ''}`);

  /**
   * Bounded exit (SPEC §11): recordings still running get `exitGraceMs`; then they are named,
   * aborted (nothing of them is recorded) and close() goes on.
   */
  async function waitForRecordings(graceMs?: number): Promise<void> {
    const pending = recorder?.pending() ?? [];
    if (!pending.length) return;
    const grace = graceMs ?? opts.exitGraceMs ?? DEFAULT_EXIT_GRACE_MS;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      Promise.allSettled(pending).then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), grace))),
    ]);
    clearTimeout(timer);
    if (!timedOut) return;
    const keys = recorder!.pendingKeys();
    log.warn(`${keys.length} recording(s) still in progress ${grace / 1000}s after the child exited, dropped (not recorded): ${keys.join(', ')}`);
    recordings.abort(new HtvendError('ABORTED', `recording dropped: still in progress ${grace / 1000}s after the child exited`));
    await Promise.allSettled(recorder!.pending());
  }

  let closing: Promise<void> | undefined;
  return {
    url: `http://${hostPort}`,
    hostPort,
    tlsUrl,
    session: { secret, controlUrl: `http://${hostPort}${CONTROL_PREFIX}` },
    counters: () => counters.snapshot(),
    missing: () => [...missing].sort(),
    missingBlobs: () => [...missingBlobs].sort(),
    corrupt: () => [...corrupt].sort(),
    close: (closeOpts) =>
      (closing ??= (async () => {
        const stopped = Promise.all([server, ...(tlsServer ? [tlsServer] : [])].map((s) => new Promise((r) => s.close(r))));
        // Clients are done (the child exited) or being stopped: cut their sockets; recordings
        // carry on into the store without them and are awaited below.
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
        await waitForRecordings(closeOpts?.graceMs);
        opts.signal?.removeEventListener('abort', onOuterAbort);
        await stopped;
      })()),
    storeFailures: () => [...(recorder?.storeFailures ?? [])],
  };
}
