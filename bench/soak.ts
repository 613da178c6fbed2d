/**
 * Soak of `htvend offline` (SPEC §11, not a timed test): CONCURRENCY clients fetch 1 MiB and
 * 16 KiB assets over fresh CONNECT + TLS connections for SOAK_SECONDS, and htvend's RSS is
 * sampled every SAMPLE_SECONDS. Memory is flat when the last third's mean RSS is within a
 * few MiB of the second third's. Prints the curve and a summary line (README "Benchmarks").
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getThroughProxy, rssOf, serveOffline, writeAssets } from '../test/faults/load-client.js';

const seconds = Number(process.env.SOAK_SECONDS ?? 300);
const concurrency = Number(process.env.CONCURRENCY ?? 200);
const sampleEvery = Number(process.env.SAMPLE_SECONDS ?? 15);

const dir = await mkdtemp(join(tmpdir(), 'htvend-soak-'));
try {
  // Mix: 40 assets of 16 KiB and 10 of 1 MiB (made under big/, merged into one store).
  await writeAssets(join(dir, 'big'), 10, 1 << 20);
  const assets = await writeAssets(dir, 40, 16 * 1024);
  await cp(join(dir, 'big', 'blobs'), join(dir, 'blobs'), { recursive: true });
  const bigJson = JSON.parse(await readFile(join(dir, 'big', 'assets.json'), 'utf8')) as Record<string, unknown>;
  const smallJson = JSON.parse(await readFile(join(dir, 'assets.json'), 'utf8')) as Record<string, unknown>;
  const merged: Record<string, unknown> = { ...smallJson };
  const all = new Map(assets);
  for (const [k, v] of Object.entries(bigJson)) {
    const key = k.replace('/files/', '/big/');
    merged[key] = v;
    all.set(new URL(key).pathname, (v as { Sha256: string }).Sha256);
  }
  await writeFile(join(dir, 'assets.json'), JSON.stringify(merged, null, 2));
  const s = await serveOffline(dir, all);
  const paths = [...all.keys()];
  const end = Date.now() + seconds * 1000;
  let done = 0;
  let errors = 0;
  let bytes = 0;
  const worker = async (w: number) => {
    for (let i = w; Date.now() < end; i += concurrency) {
      try {
        const n = await getThroughProxy(s, paths[i % paths.length]!);
        bytes += n;
        done++;
      } catch (e) {
        errors++;
        if (errors <= 5) console.error(String(e));
      }
    }
  };
  const samples: { t: number; rss: number }[] = [];
  const t0 = Date.now();
  const sampler = setInterval(() => {
    void rssOf(s.pid).then((r) => {
      samples.push({ t: Math.round((Date.now() - t0) / 1000), rss: r.rss });
      console.log(`t=${String(samples.at(-1)!.t).padStart(4)}s rss=${r.rss.toFixed(1)} MiB peak=${r.peak.toFixed(1)} MiB requests=${done} errors=${errors}`);
    });
  }, sampleEvery * 1000);
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  clearInterval(sampler);
  const { peak } = await rssOf(s.pid);
  await s.stop();
  const third = Math.floor(samples.length / 3);
  const mean = (xs: { rss: number }[]) => xs.reduce((a, x) => a + x.rss, 0) / Math.max(1, xs.length);
  const mid = mean(samples.slice(third, 2 * third));
  const last = mean(samples.slice(2 * third));
  console.log(
    `soak: ${seconds}s, ${concurrency} connections, ${done} requests (${(bytes / 2 ** 30).toFixed(2)} GiB), ${errors} errors; peak RSS ${peak.toFixed(0)} MiB; mean RSS middle third ${mid.toFixed(0)} MiB, last third ${last.toFixed(0)} MiB (${(last - mid >= 0 ? '+' : '') + (last - mid).toFixed(1)} MiB)`,
  );
  if (errors) process.exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
