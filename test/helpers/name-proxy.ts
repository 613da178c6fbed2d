/**
 * A tiny "corporate" CONNECT proxy for tests that maps made-up host names to 127.0.0.1.
 *
 * Go clients (skopeo, containerd) never send loopback addresses through a proxy, so a
 * registry on 127.0.0.1 cannot be recorded by `htvend build -- skopeo copy …`. Under a made-up
 * name (`registry.test:PORT`) they do use the proxy; htvend then reaches the name upstream
 * through *its own* HTTPS_PROXY (SPEC §3 "Upstream connections"), which is this proxy, and
 * this proxy connects the name's port on 127.0.0.1. No /etc/hosts edit, no DNS.
 */
import { createServer, type Server } from 'node:http';
import { connect, type Socket, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import type { TestContext } from 'node:test';

export interface NameProxy {
  /** `http://127.0.0.1:PORT`: htvend's own HTTPS_PROXY. */
  url: string;
  /** CONNECT targets seen, `host:port`. */
  seen: string[];
  stop(): Promise<void>;
}

/** `names`: host names (without port) sent to 127.0.0.1; any other CONNECT gets 403. */
export async function startNameProxy(t: Pick<TestContext, 'after'>, names: readonly string[]): Promise<NameProxy> {
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((_req, res) => res.writeHead(405).end('CONNECT only\n'));
  server.on('connect', (req, client: Socket, head: Buffer) => {
    const target = req.url ?? '';
    seen.push(target);
    const m = /^([^:]+):(\d+)$/.exec(target);
    if (!m || !names.includes(m[1]!)) {
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const upstream = connect(Number(m[2]), '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const stop = async () => {
    if (!server.listening) return;
    const closed = new Promise((r) => server.close(r));
    for (const s of sockets) s.destroy();
    await closed;
  };
  t.after(stop);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, stop };
}
