/**
 * Benchmark: `htvend export` from a filesystem store to each backend (filesystem, registry =
 * Debian's docker-registry, s3 = s3rver), driven through the real CLI in a child process.
 *
 *   bash bench/export-bench.sh [--small 2000] [--small-kib 100] [--big 4] [--big-mib 256] [--backends filesystem,registry,s3]
 *
 * Per backend it prints: small blobs with --jobs 1 and --jobs 8 (and the speed-up), the big
 * blobs with --jobs 8 in MB/s, and the exporting process's peak RSS (VmHWM, sampled from
 * /proc) during the big export, and htvend's own CPU time per small blob in the --jobs 1 run
 * (the rest of that run's wall time is the server's CPU and the round trips). The filesystem→filesystem row is the reference measured in
 * the same run: absolute numbers drift between runs, ratios less so.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { DirStore } from '../src/store/dir/index.js';
import type { Digest } from '../src/util/digest.js';
import { patternStream } from '../test/store/conformance.js';
import { startRegistry } from '../test/helpers/registry-server.js';
import { startS3Server, s3Env } from '../test/helpers/s3-server.js';
import { cliCommand } from '../test/helpers/cli.js';

const { values } = parseArgs({
  options: {
    small: { type: 'string', default: '2000' },
    'small-kib': { type: 'string', default: '100' },
    big: { type: 'string', default: '4' },
    'big-mib': { type: 'string', default: '256' },
    backends: { type: 'string', default: 'filesystem,registry,s3' },
  },
});
const MiB = 1024 * 1024;
const nSmall = Number(values.small);
const smallSize = Number(values['small-kib']) * 1024;
const nBig = Number(values.big);
const bigSize = Number(values['big-mib']) * MiB;
const backends = values.backends.split(',');

/** The test helpers want a test context; here cleanups run at the end of the bench. */
const cleanups: (() => unknown)[] = [];
const ctx = { after: (fn: () => unknown) => void cleanups.push(fn) };

async function put(store: DirStore, src: Readable): Promise<Digest> {
  const w = await store.put();
  await pipeline(src, w.stream);
  return w.commit();
}

async function writeManifest(path: string, digests: Digest[]): Promise<void> {
  const obj: Record<string, { Sha256: string; Headers: Record<string, string> }> = {};
  digests.forEach((d, i) => (obj[`https://bench.example/${String(i).padStart(6, '0')}`] = { Sha256: d, Headers: {} }));
  await writeFile(path, JSON.stringify(obj, null, 2));
}

interface RunResult {
  seconds: number;
  peakRssMB: number;
  /** CPU time (user + system) of the htvend process, last sampled just before it exited. */
  cpuSeconds: number;
}

/** Runs `htvend export` and samples the child's VmHWM (peak RSS) from /proc while it runs. */
function runExport(args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const [cmd, ...rest] = cliCommand('htvend');
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd!, [...rest, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
    let peakKb = 0;
    let cpuTicks = 0;
    const sample = setInterval(() => {
      readFile(`/proc/${child.pid}/status`, 'utf8').then(
        (s) => (peakKb = Math.max(peakKb, Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0))),
        () => {},
      );
      readFile(`/proc/${child.pid}/stat`, 'utf8').then(
        (s) => {
          const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
          cpuTicks = Math.max(cpuTicks, Number(f[11]) + Number(f[12])); // utime + stime (fields 14, 15)
        },
        () => {},
      );
    }, 25);
    child.on('exit', (code) => {
      clearInterval(sample);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) reject(new Error(`htvend export ${args.join(' ')} exited ${code}: ${stderr}`));
      else resolve({ seconds, peakRssMB: peakKb / 1024, cpuSeconds: cpuTicks / 100 });
    });
  });
}

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'htvend-export-bench-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const srcDir = join(root, 'src');
  const source = await DirStore.open(srcDir);
  process.stderr.write(`writing ${nSmall} x ${smallSize / 1024} KiB + ${nBig} x ${bigSize / MiB} MiB source blobs…\n`);
  const small: Digest[] = [];
  for (let i = 0; i < nSmall; i++) small.push(await put(source, Readable.from([randomBytes(smallSize)])));
  const big: Digest[] = [];
  for (let i = 0; i < nBig; i++) big.push(await put(source, patternStream(bigSize, 100 + i)));
  await writeManifest(join(root, 'small.json'), small);
  await writeManifest(join(root, 'big.json'), big);

  const reg = backends.includes('registry') ? await startRegistry(ctx, {}) : undefined;
  const s3 = backends.includes('s3') ? await startS3Server(ctx, ['bench']) : undefined;
  let runNo = 0;
  const dest = (backend: string): { flags: string[]; env: NodeJS.ProcessEnv } => {
    const id = `run${++runNo}`;
    switch (backend) {
      case 'registry':
        return { flags: ['--dest.blobs-backend', 'registry', '--dest.blobs-registry', `http://${reg!.host}/v2/bench/${id}/`], env: process.env };
      case 's3':
        return { flags: ['--dest.blobs-backend', 's3', '--dest.blobs-bucket', 'bench', '--dest.blobs-prefix', `${id}/`], env: { ...process.env, ...s3Env(s3!) } };
      default:
        return { flags: ['--dest.blobs-backend', 'filesystem', '--dest.blobs-dir', join(root, id)], env: process.env };
    }
  };
  const exportTo = async (backend: string, manifest: string, jobs: number) => {
    const d = dest(backend);
    return runExport(['export', '-m', join(root, manifest), '--blobs-backend', 'filesystem', '--blobs-dir', srcDir, ...d.flags, '--jobs', String(jobs)], d.env);
  };

  const rows: string[] = [];
  const smallMB = (nSmall * smallSize) / 1e6;
  const bigMB = (nBig * bigSize) / 1e6;
  for (const backend of backends) {
    process.stderr.write(`${backend}: small blobs, --jobs 1…\n`);
    const s1 = await exportTo(backend, 'small.json', 1);
    process.stderr.write(`${backend}: small blobs, --jobs 8…\n`);
    const s8 = await exportTo(backend, 'small.json', 8);
    process.stderr.write(`${backend}: big blobs, --jobs 8…\n`);
    const b8 = await exportTo(backend, 'big.json', 8);
    rows.push(
      [
        backend.padEnd(10),
        `${s1.seconds.toFixed(2)} s`.padStart(9),
        `${s8.seconds.toFixed(2)} s`.padStart(9),
        `${(s1.seconds / s8.seconds).toFixed(2)}x`.padStart(8),
        `${(smallMB / s8.seconds).toFixed(0)} MB/s`.padStart(10),
        `${(bigMB / b8.seconds).toFixed(0)} MB/s`.padStart(10),
        `${b8.peakRssMB.toFixed(0)} MB`.padStart(8),
        `${((s1.cpuSeconds / nSmall) * 1000).toFixed(1)} ms`.padStart(9),
      ].join('  '),
    );
  }
  console.log(`export of ${nSmall} x ${smallSize / 1024} KiB (small) and ${nBig} x ${bigSize / MiB} MiB (big) from a filesystem store`);
  console.log(['backend'.padEnd(10), 'small j1'.padStart(9), 'small j8'.padStart(9), 'speed-up'.padStart(8), 'small j8'.padStart(10), 'big j8'.padStart(10), 'peak RSS'.padStart(8), 'cpu/small'.padStart(9)].join('  '));
  for (const r of rows) console.log(r);
}

try {
  await main();
} finally {
  for (const c of cleanups.reverse()) await c();
}
