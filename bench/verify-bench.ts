/**
 * Benchmark: `htvend verify` (the library function, filesystem store) against coreutils
 * `sha256sum` over the same blob files, both from a warm page cache, in the same run.
 *
 *   node --import tsx bench/verify-bench.ts [--gib 2] [--blob-mib 64] [--jobs 4] [--rounds 2]
 *
 * Prints the best time of each and the ratio sha256sum / verify (> 1 means verify is faster).
 * Also times `xargs -P<cores> sha256sum` so the comparison with a parallel reference is visible.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile, readdir, chmod } from 'node:fs/promises';
import { tmpdir, availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { DirStore } from '../src/store/dir/index.js';
import { verify } from '../src/commands/verify.js';
import { encodeAssets } from '../src/manifest/codec.js';
import type { AssetEntry } from '../src/manifest/types.js';
import { silentLogger } from '../src/util/log.js';
import { patternStream } from '../test/store/conformance.js';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    gib: { type: 'string', default: '2' },
    'blob-mib': { type: 'string', default: '64' },
    jobs: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '2' },
  },
});
const MiB = 1024 * 1024;
const total = Number(values.gib) * 1024 * MiB;
const blobSize = Number(values['blob-mib']) * MiB;
const jobs = Number(values.jobs);
const rounds = Number(values.rounds);

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const dir = await mkdtemp(join(tmpdir(), 'htvend-bench-'));
await chmod(dir, 0o700);
try {
  const store = await DirStore.open(join(dir, 'blobs'));
  const entries = new Map<string, AssetEntry>();
  process.stderr.write(`writing ${total / MiB} MiB of blobs (${blobSize / MiB} MiB each)…\n`);
  for (let i = 0; i * blobSize < total; i++) {
    const w = await store.put();
    await pipeline(patternStream(Math.min(blobSize, total - i * blobSize), i + 1), w.stream);
    entries.set(`https://bench.invalid/blob/${i}`, { Sha256: await w.commit(), Headers: {} });
  }
  const manifestPath = join(dir, 'assets.json');
  await writeFile(manifestPath, encodeAssets(entries));
  const files = (await readdir(join(dir, 'blobs'))).map((f) => join(dir, 'blobs', f));
  const cores = availableParallelism();

  const best = { sha256sum: Infinity, parallel: Infinity, verify: Infinity };
  for (let r = 0; r < rounds; r++) {
    best.sha256sum = Math.min(best.sha256sum, await time(() => run('sha256sum', files, { maxBuffer: 64 * MiB })));
    best.parallel = Math.min(best.parallel, await time(() => run('sh', ['-c', `ls | xargs -P${cores} -n1 sha256sum >/dev/null`], { cwd: join(dir, 'blobs') })));
    best.verify = Math.min(
      best.verify,
      await time(async () => {
        const res = await verify({ manifestPath, store, jobs, log: silentLogger, progress: false });
        if (res.exitCode !== 0 || res.bytes !== total) throw new Error(`verify failed: ${JSON.stringify(res)}`);
      }),
    );
  }
  const gbps = (s: number) => (total / s / 1e9).toFixed(2);
  console.log(`data: ${total / MiB} MiB in ${files.length} blobs; cores: ${cores}; verify --jobs ${jobs}; best of ${rounds}`);
  console.log(`sha256sum (1 process):     ${best.sha256sum.toFixed(2)} s  ${gbps(best.sha256sum)} GB/s`);
  console.log(`sha256sum (xargs -P${cores}):     ${best.parallel.toFixed(2)} s  ${gbps(best.parallel)} GB/s`);
  console.log(`htvend verify:             ${best.verify.toFixed(2)} s  ${gbps(best.verify)} GB/s`);
  console.log(`ratio sha256sum / verify:  ${(best.sha256sum / best.verify).toFixed(2)}x   (parallel sha256sum / verify: ${(best.parallel / best.verify).toFixed(2)}x)`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
