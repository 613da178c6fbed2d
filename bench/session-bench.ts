/**
 * Benchmark: the fixed cost of wrapping a command in an htvend session (CLI start, CA,
 * proxy listen, truststore + PEM + env, child spawn, teardown), against bare Node start-up
 * measured in the same run.
 *
 *   npx tsc -p . && node dist/bench/session-bench.js [--rounds 10]
 *
 * Prints the median wall time of `node -e 0`, `htvend offline -- true` and
 * `htvend build -- true`, and each htvend figure as a ratio of bare Node start-up.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '10' } } });
const rounds = Number(values.rounds);
const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, '..', 'src', 'cli', 'htvend.js');
const dir = mkdtempSync(join(tmpdir(), 'htvend-bench-'));
writeFileSync(join(dir, 'assets.json'), '{}');
const env = { PATH: process.env['PATH'], HOME: dir, LOG_LEVEL: 'warn' };

function median(argv: string[]): number {
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(argv[0]!, argv.slice(1), { env, cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}`);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

try {
  const node = median([process.execPath, '-e', '0']);
  const offline = median([process.execPath, cli, 'offline', '--blobs-dir', join(dir, 'blobs'), '--', 'true']);
  const build = median([process.execPath, cli, 'build', '--blobs-dir', join(dir, 'blobs'), '--', 'true']);
  console.log(`rounds=${rounds} (median wall time)`);
  console.log(`node -e 0                 ${node.toFixed(0)} ms  (reference)`);
  console.log(`htvend offline -- true    ${offline.toFixed(0)} ms  ${(offline / node).toFixed(1)}x node start-up`);
  console.log(`htvend build -- true      ${build.toFixed(0)} ms  ${(build / node).toFixed(1)}x node start-up`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
