/**
 * A step's own loopback proxy for clients that never send credentials from a proxy URL
 * (docs/build-cache.md, "Clients without credentials"): Java's `http(s).proxyHost/Port`
 * properties and Maven's settings.xml have no place for a per-step password that is sent
 * unasked (Java and Maven answer a 407, and htvend never challenges). So for each RUN step the
 * builder listens on a free port of 127.0.0.1, points Java and Maven at it, and this forwarder
 * adds `Proxy-Authorization: Basic <step-id:token>` to every request and CONNECT it passes on
 * to the htvend proxy. The port is the step's identity; it lives as long as the step.
 *
 * RUN shares the host's network namespace (spec.ts), so the container reaches this listener
 * on 127.0.0.1 exactly as it reaches the htvend proxy. The credentials are never logged: errors
 * name the step id and the target, nothing else.
 */
import { createServer, request, type IncomingMessage, type OutgoingHttpHeaders, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HtvendError, describeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';

/** No byte either way for this long ends a connection (a stalled client or proxy). */
const IDLE_MS = 120_000;
/** The htvend proxy must accept a connection within this. */
const CONNECT_MS = 30_000;
/** A client must send its request head within this. */
const HEAD_MS = 30_000;

/** Hop-by-hop request headers a proxy must not pass on (RFC 9110 §7.6.1), plus the client's own credentials. */
const HOP = new Set(['connection', 'proxy-connection', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization']);

export interface StepForwarder {
  /** `127.0.0.1`. */
  host: string;
  port: number;
  /** Closes the listener and every connection still open. */
  stop(): Promise<void>;
}

export interface ForwarderOptions {
  /** The htvend proxy, `http://host:port`. */
  proxy: string;
  /** Step id and token: sent as `Proxy-Authorization: Basic base64(id:token)`. */
  id: string;
  token: string;
  log: Logger;
}

/** Starts a forwarder on a free port of 127.0.0.1. */
export async function startStepForwarder(o: ForwarderOptions): Promise<StepForwarder> {
  const target = new URL(o.proxy);
  if (target.protocol !== 'http:') throw new HtvendError('INTERNAL', `step forwarder: proxy ${target.protocol} is not http:`);
  const proxyHost = target.hostname.replace(/^\[|\]$/g, '');
  const proxyPort = Number(target.port || 80);
  const auth = `Basic ${Buffer.from(`${o.id}:${o.token}`).toString('base64')}`;
  const sockets = new Set<Duplex>();
  const track = (s: Duplex) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  const why = (e: unknown) => `step ${o.id} forwarder: ${describeError(e)}`;

  const server: Server = createServer({ requestTimeout: 0, headersTimeout: HEAD_MS, keepAliveTimeout: 5_000 }, (req, res) => {
    const headers: OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k) && v !== undefined) headers[k] = v;
    headers['proxy-authorization'] = auth;
    // Absolute-form request target (`GET http://host/path`), as a client sends to a proxy.
    const up = request({ host: proxyHost, port: proxyPort, method: req.method, path: req.url, headers, agent: false, timeout: IDLE_MS });
    up.on('response', (r) => {
      const back: OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(r.headers)) if (k !== 'connection' && k !== 'keep-alive' && v !== undefined) back[k] = v;
      res.writeHead(r.statusCode ?? 502, r.statusMessage, back);
      r.pipe(res);
      r.on('error', () => res.destroy());
    });
    up.on('timeout', () => up.destroy(new Error(`no answer from the proxy in ${IDLE_MS / 1000} s`)));
    up.on('error', (e) => {
      o.log.debug(`${why(e)} (${req.method} ${req.url})`);
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end(`htvend step forwarder: ${describeError(e)}\n`);
      else res.destroy();
    });
    req.pipe(up);
    req.on('error', () => up.destroy());
  });
  server.on('connection', (s: Socket) => {
    track(s);
    s.setTimeout(IDLE_MS, () => s.destroy());
  });
  server.on('connect', (req: IncomingMessage, client: Duplex, head: Buffer) => tunnel(req, client, head));
  server.on('clientError', (_e, s) => s.destroy());

  function tunnel(req: IncomingMessage, client: Duplex, head: Buffer): void {
    track(client);
    const up = connect({ host: proxyHost, port: proxyPort });
    track(up);
    up.setTimeout(CONNECT_MS, () => up.destroy(new Error(`the proxy did not accept a connection in ${CONNECT_MS / 1000} s`)));
    const fail = (e: unknown) => {
      o.log.debug(`${why(e)} (CONNECT ${req.url})`);
      if (client.writable) client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      up.destroy();
    };
    up.once('error', fail);
    up.once('connect', () => {
      up.setTimeout(IDLE_MS, () => {
        up.destroy();
        client.destroy();
      });
      // The proxy's answer to our CONNECT goes back to the client as is; then both ways raw.
      up.write(`CONNECT ${req.url} HTTP/1.1\r\nHost: ${req.url}\r\nProxy-Authorization: ${auth}\r\n\r\n`);
      if (head.length) up.write(head);
      up.off('error', fail);
      up.on('error', () => client.destroy());
      client.on('error', () => up.destroy());
      up.pipe(client);
      client.pipe(up);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new HtvendError('INTERNAL', 'step forwarder: no port');
  let stopped: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port: addr.port,
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      })),
  };
}
