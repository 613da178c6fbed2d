/**
 * Runs one htvend proxy in its own process for bench/proxy-bench.ts, so the load generator
 * (curl) and the proxy do not share a thread and the proxy's peak RSS can be read alone.
 *
 *   node --import tsx bench/proxy-serve.ts MODE BLOBS_DIR ASSETS_JSON CA_OUT_PEM [UPSTREAM_CA_PEM]
 *
 * Prints `READY <proxy url>` once listening. On SIGTERM it closes the proxy, writes the
 * manifest (build mode) to ASSETS_JSON and prints one JSON line: counters + VmHWM (peak RSS).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { createCa } from '../src/tls/ca.js';
import { createUpstreamClient } from '../src/upstream/client.js';
import { startProxy } from '../src/proxy/server.js';
import { DirStore } from '../src/store/dir/index.js';
import { createLogger } from '../src/util/log.js';
import type { AssetEntry, AssetLookup } from '../src/manifest/types.js';
import type { BlobStore } from '../src/store/store.js';
import type { Digest } from '../src/util/digest.js';
import { Writable } from 'node:stream';

const [argMode, blobsDir, assetsPath, caOut, upstreamCa] = process.argv.slice(2);
if ((argMode !== 'build' && argMode !== 'offline' && argMode !== 'relay') || !blobsDir || !assetsPath || !caOut) {
  console.error('usage: proxy-serve.ts build|offline|relay BLOBS_DIR ASSETS_JSON CA_OUT_PEM [UPSTREAM_CA_PEM]');
  process.exit(2);
}
/**
 * `relay`: build mode with a store that neither hashes nor writes (every recording "commits"
 * the same made-up digest). Not a conforming proxy: it is the bench's measured ceiling for
 * recording, what htvend's TLS relay alone (both legs, parser, tee) costs on this machine.
 */
const relay = argMode === 'relay';
const mode: 'build' | 'offline' = relay ? 'build' : argMode;

/** The relay ceiling's store: takes every chunk at once and keeps nothing (see `relay`). */
function discardStore(): BlobStore {
  return {
    description: 'discarding store (bench relay ceiling)',
    stat: async () => undefined,
    get: async () => {
      throw new Error('the relay ceiling store holds nothing');
    },
    put: async () => ({
      stream: new Writable({ write: (_c, _e, cb) => cb(), writev: (_c, cb) => cb() }),
      releasesChunks: true,
      commit: async () => 'f'.repeat(64) as Digest,
      abort: async () => {},
    }),
  };
}

const entries = new Map<string, AssetEntry>(
  Object.entries(JSON.parse(await readFile(assetsPath, 'utf8').catch(() => '{}')) as Record<string, AssetEntry>),
);
const assets: AssetLookup = { get: (k) => entries.get(k), put: (k, e) => void entries.set(k, e) };
const log = createLogger((process.env.LOG_LEVEL as 'warn' | undefined) ?? 'warn', 'htvend-bench');
const ca = await createCa();
await writeFile(caOut, ca.certPem);
const upstream =
  mode === 'build'
    ? // BENCH_DIRECT=0: the undici path for every request (A/B against the direct path).
      await createUpstreamClient({ env: {}, log, extraRoots: upstreamCa ? [await readFile(upstreamCa, 'utf8')] : [], direct: process.env.BENCH_DIRECT !== '0' })
    : undefined;
const proxy = await startProxy({
  mode,
  assets,
  store: relay ? discardStore() : await DirStore.open(blobsDir),
  ca,
  upstream,
  noCacheResponse: [],
  dummyOkResponse: [],
  cacheHeaders: ['Content-Length', 'Content-Type'],
  forceRefresh: false,
  log,
});
process.stdout.write(`READY ${proxy.url}\n`);
// Where the peak RSS comes from (BENCH_MEM=1): largest heap and external (Buffer) memory seen.
const memPeak = { heapMiB: 0, externalMiB: 0 };
if (process.env.BENCH_MEM === '1') {
  setInterval(() => {
    const m = process.memoryUsage();
    memPeak.heapMiB = Math.max(memPeak.heapMiB, Math.round(m.heapTotal / 1048576));
    memPeak.externalMiB = Math.max(memPeak.externalMiB, Math.round(m.external / 1048576));
  }, 50).unref();
}

/** User/system CPU seconds and minor faults of each thread of this process (BENCH_THREADS=1): main, hash worker, libuv pool, V8 helpers. */
async function threadCpu(): Promise<string> {
  const { readdir } = await import('node:fs/promises');
  const parts: string[] = [];
  for (const tid of await readdir('/proc/self/task')) {
    const stat = await readFile(`/proc/self/task/${tid}/stat`, 'utf8').catch(() => '');
    if (!stat) continue;
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const user = Number(f[11]) / 100;
    const sys = Number(f[12]) / 100;
    // minflt: page faults the kernel served without I/O (first touch of fresh memory: zeroing, and on a VM the host's own fault).
    const minflt = Number(f[7]);
    if (user + sys >= 0.02) parts.push(`${tid}:${name}${tid === String(process.pid) ? '(main)' : ''} u${user.toFixed(2)}/s${sys.toFixed(2)}/mf${minflt}`);
  }
  return parts.join(', ');
}

process.once('SIGTERM', () => {
  void (async () => {
    await proxy.close();
    await upstream?.close();
    if (mode === 'build') await writeFile(assetsPath, JSON.stringify(Object.fromEntries(entries)));
    const status = await readFile('/proc/self/status', 'utf8');
    const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    if (process.env.BENCH_THREADS === '1') process.stderr.write(`htvend-bench ${mode}: CPU s per thread: ${await threadCpu()}\n`);
    if (process.env.BENCH_MEM === '1') process.stderr.write(`htvend-bench ${mode}: peak heap ${memPeak.heapMiB} MiB, peak external ${memPeak.externalMiB} MiB\n`);
    process.stdout.write(JSON.stringify({ counters: proxy.counters(), peakRssMiB: Math.round(hwmKb / 1024) }) + '\n');
    process.exit(0);
  })();
});
