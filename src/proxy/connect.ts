/**
 * CONNECT interception, in-process: the tunnel's socket is wrapped in a server-side TLS
 * socket whose certificate the CA mints for the SNI name (or, without SNI, for the CONNECT
 * host, e.g. an IP), and the decrypted socket is handed to the same HTTP server that parses
 * plain proxy requests. Keep-alive works inside the tunnel like anywhere else.
 *
 * The raw socket is wrapped directly (no JS stream in between): Node then encrypts in C++,
 * which is what makes 1 GiB over HTTPS fast. The cost is that the tunnel must carry TLS, sent
 * after the proxy's 200: a client that CONNECTs and speaks plain HTTP, or sends its
 * ClientHello before the reply, is not supported (nothing common does).
 */
import { TLSSocket } from 'node:tls';
import type { Server, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { CertificateAuthority } from '../tls/ca.js';
import type { Logger } from '../util/log.js';
import { describeError } from '../util/errors.js';
import type { Credentials } from './attribution/identity.js';

export interface Tunnel {
  /** `host:port` from the CONNECT request line. */
  authority: string;
  host: string;
  /** The step the CONNECT's Proxy-Authorization named (docs/build-cache.md). */
  credentials?: Credentials;
}

const tunnels = new WeakMap<Socket, Tunnel>();

/** The CONNECT tunnel a decrypted socket belongs to, if any. */
export function tunnelOf(socket: Socket): Tunnel | undefined {
  return tunnels.get(socket);
}

function splitAuthority(authority: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(authority);
  return m ? { host: (m[1] ?? m[2])!, port: Number(m[3]) } : undefined;
}

export interface ConnectContext {
  server: Server;
  ca: CertificateAuthority;
  log: Logger;
  /** Maps a Proxy-Authorization header to the step it names (attribution). */
  identify?: (header: string | string[] | undefined) => Credentials;
}

export function interceptConnect(ctx: ConnectContext, req: IncomingMessage, socket: Socket, head: Buffer): void {
  const authority = req.url ?? '';
  const target = splitAuthority(authority);
  socket.on('error', (e) => ctx.log.debug(`CONNECT ${authority}: ${describeError(e)}`));
  if (!target) {
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  if (head.length > 0) {
    // Bytes sent before our 200 would have to be replayed into the TLS layer, which the
    // direct wrap below cannot do; no common client does this, so say so instead of hanging.
    ctx.log.warn(`CONNECT ${authority}: the client sent data before the proxy's 200 reply; not supported`);
    socket.destroy();
    return;
  }
  // Small responses are written as header + body: without TCP_NODELAY the second write can
  // wait for a delayed ACK (~40 ms).
  socket.setNoDelay(true);
  // Mint (or fetch from cache) the default leaf before answering, so the client's
  // ClientHello never waits on an unanswered SNI callback for the common case.
  ctx.ca.secureContextFor(target.host).then(
    (secureContext) => {
      if (socket.destroyed) return;
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      // The TLS socket inherits allowHalfOpen (true) from the http.Server's raw socket, so a
      // client half-closing the tunnel still gets its response (server.httpAllowHalfOpen).
      const tls = new TLSSocket(socket, {
        isServer: true,
        secureContext,
        ALPNProtocols: ['http/1.1'],
        SNICallback: (name, cb) => ctx.ca.secureContextFor(name).then((c) => cb(null, c), (e: Error) => cb(e)),
      });
      tunnels.set(tls, { authority, host: target.host, ...(ctx.identify ? { credentials: ctx.identify(req.headers['proxy-authorization']) } : {}) });
      tls.on('error', (e) => {
        ctx.log.debug(`TLS in CONNECT ${authority}: ${describeError(e)}`);
        tls.destroy();
      });
      ctx.server.emit('connection', tls);
    },
    (e: unknown) => {
      ctx.log.error(`cannot make a certificate for ${target.host}: ${describeError(e)}`);
      socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    },
  );
}
