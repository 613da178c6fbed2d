/**
 * Proxy test bench: a test upstream, an in-memory store and manifest, a fresh CA, an upstream
 * client trusting the test upstream, and the proxy under test; plus clients that go through
 * the proxy (undici's ProxyAgent for CONNECT, node:http for absolute-form, curl).
 */
import type { TestContext } from 'node:test';
import { request as httpRequest } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ProxyAgent, request as undiciRequest } from 'undici';
import { createCa } from '../../src/tls/ca.js';
import { createUpstreamClient } from '../../src/upstream/client.js';
import { startProxy } from '../../src/proxy/server.js';
import type { ProxyOptions, RunningProxy } from '../../src/proxy/types.js';
import { createLogger, type Logger } from '../../src/util/log.js';
import { MemoryStore } from '../helpers/memory-store.js';
import { MemoryAssets } from '../helpers/memory-assets.js';
import { startUpstream, type Upstream } from '../helpers/https-upstream.js';
import { tempDir } from '../helpers/tmp.js';
import { run } from '../helpers/cli.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AssetEntry } from '../../src/manifest/types.js';

export const GO_DEFAULT_CACHE_HEADERS = ['Content-Length', 'Docker-Content-Digest', 'Content-Type', 'Content-Encoding', 'X-Checksum-Sha1'];

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface Bench {
  up: Upstream;
  store: MemoryStore;
  assets: MemoryAssets;
  proxy: RunningProxy;
  caPem: string;
  caFile: string;
  logs: string[];
  /**
   * The manifest entry for `url` once its recording has committed (the client's response
   * ends before the store's commit, so a test must wait for it).
   */
  entry(url: string): Promise<AssetEntry>;
  /** Starts another proxy (e.g. offline) over the same store/assets. */
  restart(over?: Partial<ProxyOptions>): Promise<RunningProxy>;
  /** A request through the proxy: CONNECT for https URLs, absolute-form for http ones. */
  get(url: string, opts?: { method?: string; headers?: Record<string, string>; body?: string }): Promise<Reply>;
}

/** Log lines are kept so tests can assert warnings. */
function capturingLogger(lines: string[]): Logger {
  return createLogger('debug', 'htvend', (l) => void lines.push(l));
}

export async function startBench(t: TestContext, over: Partial<ProxyOptions> = {}, storeOpts: { rangeReads?: boolean } = {}): Promise<Bench> {
  const up = await startUpstream(t);
  const store = new MemoryStore(storeOpts.rangeReads);
  const assets = new MemoryAssets();
  const ca = await createCa();
  const logs: string[] = [];
  const log = capturingLogger(logs);
  const upstream = await createUpstreamClient({ env: {}, log, extraRoots: [up.caPem], systemBundles: [] });
  t.after(() => upstream.close());
  const dir = await tempDir(t);
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, ca.certPem);
  const base: ProxyOptions = {
    mode: 'build',
    assets,
    store,
    ca,
    upstream,
    noCacheResponse: [/^http.*\/v2\/$/, /\/token\?/],
    dummyOkResponse: [/^http.*\/v2\/$/],
    cacheHeaders: GO_DEFAULT_CACHE_HEADERS,
    forceRefresh: false,
    log,
    ...over,
  };
  const agents: ProxyAgent[] = [];
  t.after(() => Promise.all(agents.map((a) => a.close())));
  const bench: Bench = {
    up,
    store,
    assets,
    caPem: ca.certPem,
    caFile,
    logs,
    proxy: undefined as unknown as RunningProxy,
    async entry(url) {
      const end = Date.now() + 5000;
      for (;;) {
        const e = assets.get(url);
        if (e) return e;
        if (Date.now() > end) throw new Error(`${url} was not recorded`);
        await sleep(5);
      }
    },
    async restart(o = {}) {
      const p = await startProxy({ ...base, ...o });
      t.after(() => p.close());
      bench.proxy = p;
      return p;
    },
    async get(url, o = {}) {
      const method = o.method ?? 'GET';
      if (url.startsWith('https:')) {
        const agent = new ProxyAgent({ uri: bench.proxy.url, requestTls: { ca: ca.certPem } });
        agents.push(agent);
        const r = await undiciRequest(url, { dispatcher: agent, method: method as 'GET', headers: o.headers, body: o.body ?? null });
        const body = Buffer.from(await r.body.arrayBuffer());
        return { status: r.statusCode, headers: r.headers, body };
      }
      const proxyUrl = new URL(bench.proxy.url);
      return new Promise<Reply>((resolve, reject) => {
        const req = httpRequest({ host: proxyUrl.hostname, port: proxyUrl.port, method, path: url, headers: o.headers, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(o.body);
      });
    },
  };
  await bench.restart();
  return bench;
}

/** Runs curl through the proxy trusting its CA; returns status, headers (lowercase) and body. */
export async function curl(b: Bench, url: string, args: string[] = []): Promise<{ code: number | null; status: number; headers: Record<string, string>; body: string; stderr: string }> {
  // Headers go to stdout ahead of the body (`-D -`; curl crashes writing them to a piped /dev/stderr).
  const head = args.includes('-I') ? [] : ['-D', '-']; // -I prints the headers itself
  const r = await run(['curl', '-sS', ...head, '-x', b.proxy.url, '--cacert', b.caFile, ...args, url], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  let rest = r.stdout;
  let last = '';
  while (rest.startsWith('HTTP/')) {
    const end = rest.indexOf('\r\n\r\n');
    last = rest.slice(0, end < 0 ? rest.length : end);
    rest = end < 0 ? '' : rest.slice(end + 4);
  }
  const lines = last.split(/\r\n/);
  const status = Number(/^HTTP\/\S+ (\d+)/.exec(lines[0] ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return { code: r.code, status, headers, body: rest, stderr: r.stderr };
}
