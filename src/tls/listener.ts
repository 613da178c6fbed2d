/**
 * A TLS front for a node:http server: a net server whose sockets are wrapped in TLS with a
 * leaf from the CA for each SNI name, then handed to the HTTP server as connections. Used by
 * the proxy's `--tls-listen-addr` and by `htvend mirror`'s TLS listener.
 *
 * A net server wrapping sockets itself, because tls.Server ignores a `secureContext` option,
 * and clients send no SNI for an IP, so the default leaf must come from the CA too.
 */
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { TLSSocket } from 'node:tls';
import { describeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { CertificateAuthority } from './ca.js';

/** `defaultHost`: the name or IP the leaf names when a client sends no SNI (the listen host). */
export async function tlsFrontFor(http: HttpServer, ca: CertificateAuthority, defaultHost: string, log: Logger, what: string): Promise<NetServer> {
  const host = defaultHost === '0.0.0.0' || defaultHost === '::' ? '127.0.0.1' : defaultHost;
  const defaultContext = await ca.secureContextFor(host);
  // allowHalfOpen: the TLS socket inherits it from `raw` (the HTTP server's httpAllowHalfOpen).
  return createNetServer({ noDelay: true, allowHalfOpen: true }, (raw) => {
    const tlsSocket = new TLSSocket(raw, {
      isServer: true,
      secureContext: defaultContext,
      ALPNProtocols: ['http/1.1'],
      SNICallback: (name, cb) => ca.secureContextFor(name).then((c) => cb(null, c), (e: Error) => cb(e)),
    });
    tlsSocket.on('error', (e) => {
      log.debug(`${what}: ${describeError(e)}`);
      tlsSocket.destroy();
    });
    http.emit('connection', tlsSocket);
  });
}
