/**
 * Proxy benchmarks (docs/proxy.md): every figure is a ratio against a reference measured in
 * the same run on the same machine, with curl as the client everywhere.
 *
 *   bash bench/proxy-bench.sh            # BENCH_BIG_MIB=1024 BENCH_SMALL=10000 by default
 *
 * Issue 12's marks:
 * 1. replay:  1 GiB over HTTPS through `htvend offline`  vs the same file from nginx (≥ 0.8)
 * 2. record:  1 GiB nginx → `htvend build` → curl + blob store vs nginx direct   (≥ 0.5)
 * 3. mitmproxy (mitmdump, stream_large_bodies=1) recording the same 1 GiB: htvend ≥ 1.5× faster
 * 4. 10,000 × 10 KiB HTTPS GETs, 32 parallel keep-alive connections, offline vs nginx (≥ 0.5)
 * 5. peak RSS of the htvend process while moving 1 GiB (< 150 MB)
 *
 * Each 1 GiB ratio is printed with the HARDWARE ceiling of this run, from CPU seconds measured
 * in it (nginx's workers from /proc, curl's from its rusage as a waited-for child of bash):
 *
 * - replay ceiling time = max(nginx time, (curl CPU + nginx CPU + sha256) / cores): a proxy that
 *   did exactly nginx's work (TLS send of the file) plus one sha256 of it, beside the same curl.
 * - recording ceiling time = max(nginx time, (nginx CPU + curl CPU + proxy) / cores), where the
 *   proxy's least work is one server's TLS send (≈ nginx CPU), one client's TLS receive (≈ curl
 *   CPU) and one sha256 of the file: (2·nginx CPU + 2·curl CPU + sha256) / cores. It leaves out
 *   the store write (a page-cache or O_DIRECT copy), so it is an optimistic bound.
 *
 * sha256 here is the in-memory hash of BIG_MIB MiB (one thread, OpenSSL through Node, timed in
 * the same rounds); neither ceiling can be below it, since one sha256 cannot be split. The
 * ceiling ratios are nginx ÷ ceiling (vs the ÷ nginx marks) and mitmproxy ÷ ceiling (the best
 * speed-up any proxy could have over mitmproxy here, vs the 1.5× mark); "÷ ceiling" is how close
 * htvend is. When a ceiling is at or above its mark the mark is reachable here and the bench says
 * so; when it is below, the mark cannot be met on this machine.
 *
 * Each htvend timing is taken in rounds with its references (nginx direct, mitmproxy), one of
 * each per round, best of BENCH_REPEAT rounds: the shared VM's load moves a lot, and this way
 * both sides of a ratio see the same load. CPU seconds are means over the rounds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir, readFile, access } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const BIG_MIB = Number(process.env.BENCH_BIG_MIB ?? 1024);
const SMALL_N = Number(process.env.BENCH_SMALL ?? 10000);
const SMALL_FILES = 100;
/** Each timing is the best of REPEAT rounds: the build VM is shared, and one-off stalls dominate. */
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
/** BENCH_ONLY=record: only the 1 GiB recording against nginx direct (no mitmproxy, no replay, no small files). */
const ONLY_RECORD = process.env.BENCH_ONLY === 'record';
/**
 * BENCH_ONLY=replay: only the 1 GiB replay against nginx direct, with the store seeded directly
 * (no recording phase), and the replay ceiling of this machine printed beside the ratio.
 */
const ONLY_REPLAY = process.env.BENCH_ONLY === 'replay';
const here = fileURLToPath(new URL('.', import.meta.url));

/** Issue 12's marks (the bench's figures are compared with these). */
const MARKS = { recordVsNginx: 0.5, recordVsMitm: 1.5, replayVsNginx: 0.8, smallVsNginx: 0.5, peakRssMB: 150 };

const r = (x: number) => Math.round(x * 100) / 100;

/** What a ceiling is computed from: wall and CPU seconds of one 1 GiB transfer measured in this run. */
interface CeilingInputs {
  /** nginx → curl direct, best wall time of the rounds. */
  nginxS: number;
  /** CPU seconds of nginx's workers per direct transfer (mean of the rounds). */
  nginxCpuS: number;
  /** CPU seconds of curl per direct transfer (its rusage, mean of the rounds). */
  curlCpuS: number;
  /** One thread's sha256 of the GiB in memory, best of the rounds. */
  shaS: number;
  cores: number;
}

/** Replay: a proxy doing nginx's work (TLS send) plus one sha256, beside the same curl. */
function replayCeilingS(c: CeilingInputs): number {
  return Math.max(c.nginxS, (c.curlCpuS + c.nginxCpuS + c.shaS) / c.cores, c.shaS);
}

/**
 * Recording: nginx and curl as in the direct run, plus a proxy doing the least any recording
 * proxy does: receive TLS from the server (≈ curl's CPU), send TLS to the client (≈ nginx's
 * CPU) and sha256 every byte once. The store write is left out (optimistic bound).
 */
function recordCeilingS(c: CeilingInputs): number {
  return Math.max(c.nginxS, (2 * c.nginxCpuS + 2 * c.curlCpuS + c.shaS) / c.cores, c.shaS);
}

function describeCeiling(kind: 'record' | 'replay', c: CeilingInputs): string {
  const n = r(c.nginxCpuS);
  const k = r(c.curlCpuS);
  const sum = kind === 'record' ? `nginx ${n} + curl ${k} + proxy (TLS send ≈ nginx ${n} + TLS receive ≈ curl ${k} + sha256 ${r(c.shaS)})` : `curl ${k} + nginx ${n} + sha256 ${r(c.shaS)}`;
  const s = kind === 'record' ? recordCeilingS(c) : replayCeilingS(c);
  return `${kind} ceiling: max(nginx ${r(c.nginxS)} s, (${sum} CPU-s) / ${c.cores} cores) = ${r(s)} s`;
}

/**
 * `ratio` beside its mark and the hardware ceiling of the same ratio, e.g.
 * `0.33  (mark >= 0.5 not met; hardware ceiling 0.48: the mark is above this machine's ceiling; at 69 % of the ceiling)`.
 */
function vsMark(ratio: number, mark: number, ceilingRatio: number, unit = ''): string {
  const met = ratio >= mark ? 'met' : 'not met';
  const reach = ceilingRatio >= mark ? 'the mark is reachable here' : "the mark is above this machine's ceiling";
  return `${r(ratio)}${unit}  (mark >= ${mark}${unit} ${met}; hardware ceiling ${r(ceilingRatio)}${unit}: ${reach}; at ${Math.round((ratio / ceilingRatio) * 100)} % of the ceiling)`;
}

function sh(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code, out, err }));
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}

async function waitPort(port: number, ms = 15000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = createServer();
      s.once('error', () => r(true)); // in use = someone listens
      s.listen(port, '127.0.0.1', () => s.close(() => r(false)));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`port ${port} never opened`);
    await sleep(50);
  }
}

/** One curl transfer; returns seconds (curl's own time_total). */
async function curlTime(args: string[]): Promise<number> {
  const r = await sh('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}', ...args]);
  const [code, size, secs] = r.out.trim().split(' ');
  if (r.code !== 0 || code !== '200') throw new Error(`curl ${args.join(' ')}: exit ${r.code} http ${code}: ${r.err}`);
  if (Number(size) !== BIG_MIB * 1024 * 1024) throw new Error(`curl got ${size} bytes`);
  return Number(secs);
}

/**
 * One curl transfer, also returning the CPU seconds (user + system) curl itself used: bash's
 * `times` reports its waited-for children. The client's CPU is part of the replay ceiling.
 */
async function curlTimeWithCpu(args: string[]): Promise<{ secs: number; cpuS: number }> {
  const r = await sh('bash', ['-c', 'curl "$@"; rc=$?; times; exit $rc', 'curl', '-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}\n', ...args]);
  const lines = r.out.trim().split('\n');
  const [code, size, secs] = lines[0]!.split(' ');
  if (r.code !== 0 || code !== '200') throw new Error(`curl ${args.join(' ')}: exit ${r.code} http ${code}: ${r.err}`);
  if (Number(size) !== BIG_MIB * 1024 * 1024) throw new Error(`curl got ${size} bytes`);
  // `times`: the shell's user/sys, then its children's, as `0m1.234s 0m0.567s`.
  const toS = (t: string) => {
    const m = /(\d+)m([\d.]+)s/.exec(t);
    return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
  };
  const kids = lines[2]!.trim().split(/\s+/);
  const cpuS = toS(kids[0]!) + toS(kids[1]!);
  // A 1 GiB TLS receive takes CPU: zero or NaN means `times` was not parsed, not a free curl.
  if (!(cpuS > 0)) throw new Error(`could not read curl's CPU from bash's times: ${JSON.stringify(r.out)}`);
  return { secs: Number(secs), cpuS };
}

/** 10,000 small GETs with curl's parallel mode; returns wall seconds. */
async function curlMany(config: string, args: string[]): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await sh('curl', ['-sS', '--fail', '-Z', '--parallel-immediate', '--parallel-max', '32', '-K', config, ...args]);
  if (r.code !== 0) throw new Error(`curl -Z: exit ${r.code}: ${r.err.slice(0, 500)}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** CPU seconds (user + system) used so far by process `pid` and its children that have exited and been waited for. */
async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised name: utime, stime are 14 and 15 of the line (ticks, 100/s).
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** User and system CPU seconds of process `pid` so far (the split shows kernel copies vs TLS/hash work). */
async function cpuSplitOf(pid: number): Promise<{ user: number; sys: number; minflt: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / 100, sys: Number(f[12]) / 100, minflt: Number(f[7]) };
}

/** CPU seconds of nginx's worker processes (the children of its master). */
async function nginxWorkersCpuS(masterPid: number): Promise<number> {
  const kids = (await readFile(`/proc/${masterPid}/task/${masterPid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean);
  let total = 0;
  for (const k of kids) total += await cpuSecondsOf(Number(k));
  return total;
}

interface Served {
  url: string;
  /** CPU seconds (user + system) the proxy process has used so far: unlike wall time, barely moved by other load. */
  cpuS(): Promise<number>;
  /** User and system CPU seconds of the proxy so far. */
  cpuSplit(): Promise<{ user: number; sys: number; minflt: number }>;
  /** RSS of the proxy process just after it started listening. */
  idleRssMiB: number;
  stop(): Promise<{ counters: Record<string, number>; peakRssMiB: number }>;
}

async function serveProxy(mode: 'build' | 'offline' | 'relay', blobs: string, assets: string, caOut: string, upstreamCa: string): Promise<Served> {
  // Compiled (dist/bench) when run from dist, so tsx's loader does not inflate the proxy's RSS.
  const entry = import.meta.url.endsWith('.ts') ? ['--import', 'tsx', join(here, 'proxy-serve.ts')] : [join(here, 'proxy-serve.js')];
  // BENCH_NODE_ARGS, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`, for investigating a run.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  // BENCH_WRAP, e.g. `perf record -g -o /tmp/perf.data --`: runs the proxy under a profiler (its CPU figures then include the wrapper).
  const wrap = (process.env.BENCH_WRAP ?? '').split(' ').filter(Boolean);
  const argv = [...wrap, process.execPath, ...nodeArgs, ...entry, mode, blobs, assets, caOut, upstreamCa];
  const c = spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  c.stdout!.on('data', (d) => (out += d));
  const end = Date.now() + 20000;
  while (!/READY (\S+)/.test(out)) {
    if (Date.now() > end || c.exitCode !== null) throw new Error(`proxy did not start: ${out}`);
    await sleep(20);
  }
  const url = /READY (\S+)/.exec(out)![1]!;
  await sleep(200);
  const rss = Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${c.pid}/status`, 'utf8'))?.[1] ?? 0);
  return {
    url,
    idleRssMiB: Math.round(rss / 1024),
    cpuS: () => cpuSecondsOf(c.pid!),
    cpuSplit: () => cpuSplitOf(c.pid!),
    stop: async () => {
      c.kill('SIGTERM');
      await new Promise((r) => c.once('close', r));
      // BENCH_PROXY_OUT=file keeps the proxy's whole stdout (e.g. with BENCH_NODE_ARGS=--trace-gc).
      if (process.env.BENCH_PROXY_OUT) await writeFile(`${process.env.BENCH_PROXY_OUT}.${mode}`, out);
      return JSON.parse(out.trim().split('\n').pop()!);
    },
  };
}

/**
 * Seconds one thread takes to sha256 `file` with Node's crypto (OpenSSL, the same code the
 * proxy uses), in a child process so it runs alone. SPEC §3 has every byte a proxy records or
 * replays hashed before the transfer completes, and one sha256 cannot be split across cores:
 * no conforming proxy moves the file faster than this on this machine.
 */
async function sha256Seconds(file: string): Promise<number> {
  const code = `const {createHash}=require('node:crypto');const {createReadStream}=require('node:fs');
const h=createHash('sha256');const t=process.hrtime.bigint();
createReadStream(process.argv[1],{highWaterMark:1<<20}).on('data',(c)=>h.update(c)).on('end',()=>{h.digest();console.log(Number(process.hrtime.bigint()-t)/1e9)});`;
  const r = await sh(process.execPath, ['-e', code, file]);
  if (r.code !== 0) throw new Error(`sha256 timing failed: ${r.err}`);
  return Number(r.out.trim());
}

interface ReplayOnlyCtx {
  work: string;
  www: string;
  cert: string;
  bigUrl: string;
  nginxCpu: () => Promise<number>;
  rounds: (m: Record<string, (i: number) => Promise<number>>) => Promise<void>;
  withCpu: (key: string, cpu: () => Promise<number>, f: (i: number) => Promise<number>) => (i: number) => Promise<number>;
  results: Record<string, number>;
  cpuTotals: Record<string, number>;
}

/**
 * BENCH_ONLY=replay: the store is seeded with the file (hashed once here) and an assets.json
 * listing it under one URL per round, then the 1 GiB replay is timed in rounds with nginx
 * direct and the sha256 floor. Beside the ratio it prints the replay ceiling of this run:
 * a proxy that did exactly nginx's work (its CPU per transfer) plus one sha256 of the file,
 * next to the same curl, on this machine's cores. Its wall time cannot be below
 * max(nginx's time, (curl CPU + nginx CPU + sha256) / cores).
 */
async function replayOnly(c: ReplayOnlyCtx): Promise<void> {
  const { createHash } = await import('node:crypto');
  const { createReadStream } = await import('node:fs');
  const { copyFile } = await import('node:fs/promises');
  const { availableParallelism } = await import('node:os');
  const big = join(c.www, 'big.bin');
  const h = createHash('sha256');
  for await (const chunk of createReadStream(big, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  const digest = h.digest('hex');
  const blobs = join(c.work, 'blobs');
  await mkdir(blobs, { recursive: true });
  await copyFile(big, join(blobs, digest));
  const assets = join(c.work, 'assets.json');
  const entry = { Sha256: digest, Headers: { 'Content-Length': String(BIG_MIB * 1024 * 1024), 'Content-Type': 'application/octet-stream' } };
  await writeFile(assets, JSON.stringify(Object.fromEntries(Array.from({ length: REPEAT }, (_, i) => [`${c.bigUrl}?run=${i}`, entry]))));
  // Warm the blob's pages too (the copy may have left them in the cache anyway).
  await sha256Seconds(join(blobs, digest));
  const htvendCa = join(c.work, 'htvend-ca.pem');
  const offline = await serveProxy('offline', blobs, assets, htvendCa, c.cert);
  let curlDirectCpu = 0;
  let curlReplayCpu = 0;
  await c.rounds({
    nginxBigS: c.withCpu('nginxBig', c.nginxCpu, async () => {
      const t = await curlTimeWithCpu(['--cacert', c.cert, c.bigUrl]);
      curlDirectCpu += t.cpuS;
      return t.secs;
    }),
    replayBigS: c.withCpu('replayBig', () => offline.cpuS(), async (i) => {
      const t = await curlTimeWithCpu(['-x', offline.url, '--cacert', htvendCa, `${c.bigUrl}?run=${i}`]);
      curlReplayCpu += t.cpuS;
      return t.secs;
    }),
    sha256S: () => sha256Seconds(big),
    sha256MemS: sha256MemSeconds,
  });
  const split = await offline.cpuSplit();
  const o = await offline.stop();
  if (o.counters.htvend_replayed_total !== REPEAT) throw new Error(`expected ${REPEAT} replays, got ${JSON.stringify(o.counters)}`);
  const res = c.results;
  const nginxCpuS = c.cpuTotals.nginxBig! / REPEAT;
  const replayCpuS = c.cpuTotals.replayBig! / REPEAT;
  const cores = availableParallelism();
  const inputs: CeilingInputs = { nginxS: res.nginxBigS!, nginxCpuS, curlCpuS: curlDirectCpu / REPEAT, shaS: res.sha256MemS!, cores };
  const floorS = replayCeilingS(inputs);
  const gib = (BIG_MIB / 1024) * REPEAT;
  console.log(JSON.stringify({ bigMiB: BIG_MIB, bestOf: REPEAT, ...res, nginxCpuS, replayCpuS, curlDirectCpuS: curlDirectCpu / REPEAT, curlReplayCpuS: curlReplayCpu / REPEAT, replayPeakRssMiB: o.peakRssMiB }));
  console.log(`replay  ${BIG_MIB} MiB HTTPS   htvend/nginx throughput ratio  ${vsMark(res.nginxBigS! / res.replayBigS!, MARKS.replayVsNginx, res.nginxBigS! / floorS)}; nginx ${r(res.nginxBigS!)} s, htvend ${r(res.replayBigS!)} s`);
  console.log(`${describeCeiling('replay', inputs)} (a proxy doing nginx's work plus one hash, beside the same curl)`);
  console.log(`CPU s per run: nginx ${r(nginxCpuS)}, htvend ${r(replayCpuS)} (whole life: user ${r(split.user / gib)}, sys ${r(split.sys / gib)} per GiB); curl direct ${r(curlDirectCpu / REPEAT)}, via htvend ${r(curlReplayCpu / REPEAT)}`);
  console.log(`peak RSS replay: ${o.peakRssMiB} MiB (idle ${offline.idleRssMiB}); load ${(await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ')}`);
}

/**
 * Seconds one thread takes to sha256 BIG_MIB MiB already in memory (a 64 MiB buffer hashed over
 * and over): the hash alone, without the file read that nginx's CPU already counts.
 */
async function sha256MemSeconds(): Promise<number> {
  const code = `const {createHash,randomFillSync}=require('node:crypto');const b=randomFillSync(Buffer.allocUnsafe(64<<20));
const h=createHash('sha256');const t=process.hrtime.bigint();for(let i=0;i<${BIG_MIB}/64;i++)h.update(b);h.digest();console.log(Number(process.hrtime.bigint()-t)/1e9);`;
  const r = await sh(process.execPath, ['-e', code]);
  if (r.code !== 0) throw new Error(`sha256 timing failed: ${r.err}`);
  return Number(r.out.trim());
}

function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null) return Promise.resolve();
  c.kill('SIGTERM');
  return new Promise((r) => c.once('close', () => r()));
}

const work = await mkdtemp(join(tmpdir(), 'htvend-bench-'));
const children: ChildProcess[] = [];
try {
  const www = join(work, 'www');
  await mkdir(join(www, 's'), { recursive: true });
  console.log(`# generating ${BIG_MIB} MiB of random data in ${work}`);
  await sh('sh', ['-c', `head -c ${BIG_MIB * 1024 * 1024} /dev/urandom > ${join(www, 'big.bin')}`]);
  for (let i = 0; i < SMALL_FILES; i++) await writeFile(join(www, 's', `${i}.bin`), Buffer.alloc(10 * 1024, i));

  // nginx over HTTPS with a self-signed ECDSA leaf for 127.0.0.1
  const cert = join(work, 'nginx.pem');
  const key = join(work, 'nginx.key');
  await sh('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
  const nginxPort = await freePort();
  await mkdir(join(work, 'nginx-tmp'));
  const conf = join(work, 'nginx.conf');
  await writeFile(
    conf,
    `user root; worker_processes 2; pid ${work}/nginx.pid; error_log ${work}/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000; keepalive_timeout 60;
  default_type application/octet-stream;
  client_body_temp_path ${work}/nginx-tmp/b; proxy_temp_path ${work}/nginx-tmp/p; fastcgi_temp_path ${work}/nginx-tmp/f;
  uwsgi_temp_path ${work}/nginx-tmp/u; scgi_temp_path ${work}/nginx-tmp/s;
  server { listen 127.0.0.1:${nginxPort} ssl; ssl_certificate ${cert}; ssl_certificate_key ${key}; root ${www}; }
}\n`,
  );
  const nginx = spawn('nginx', ['-c', conf, '-p', work, '-g', 'daemon off;'], { stdio: 'inherit' });
  children.push(nginx);
  await waitPort(nginxPort);
  const origin = `https://127.0.0.1:${nginxPort}`;
  const bigUrl = `${origin}/big.bin`;
  const smallCfg = join(work, 'small.curlrc');
  await writeFile(smallCfg, Array.from({ length: SMALL_N }, (_, i) => `url = "${origin}/s/${i % SMALL_FILES}.bin"\noutput = "/dev/null"\n`).join(''));

  const results: Record<string, number> = {};
  const cpuTotals: Record<string, number> = {};
  /**
   * Runs every measure once per round, REPEAT rounds, in turn, so the references and htvend are
   * timed under the same load (it moves a lot on the shared VM); keeps the best time of each.
   */
  async function rounds(measures: Record<string, (i: number) => Promise<number>>): Promise<void> {
    for (let i = 0; i < REPEAT; i++) {
      for (const [k, f] of Object.entries(measures)) results[k] = Math.min(results[k] ?? Infinity, await f(i));
    }
  }
  /** `f`, also adding the CPU seconds `cpu()` grew by during it to cpuTotals[key]. */
  const withCpu =
    (key: string, cpu: () => Promise<number>, f: (i: number) => Promise<number>) =>
    async (i: number): Promise<number> => {
      const c0 = await cpu();
      const t = await f(i);
      cpuTotals[key] = (cpuTotals[key] ?? 0) + (await cpu()) - c0;
      return t;
    };
  const nginxCpu = () => nginxWorkersCpuS(nginx.pid!);

  if (ONLY_REPLAY) {
    await replayOnly({ work, www, cert, bigUrl, nginxCpu, rounds, withCpu, results, cpuTotals });
    await Promise.all(children.map(stopChild));
    await rm(work, { recursive: true, force: true });
    process.exit(0);
  }

  // mitmproxy, streaming, in front of the same nginx
  const mitmPort = await freePort();
  const mitmConf = join(work, 'mitm');
  const mitm = spawn('mitmdump', ['-q', '--listen-host', '127.0.0.1', '--listen-port', String(mitmPort), '--set', `confdir=${mitmConf}`, '--set', 'stream_large_bodies=1', '--set', `ssl_verify_upstream_trusted_ca=${cert}`], {
    stdio: 'inherit',
  });
  children.push(mitm);
  await waitPort(mitmPort, 30000);
  await access(join(mitmConf, 'mitmproxy-ca-cert.pem'));
  const viaMitm = () => curlTime(['-x', `http://127.0.0.1:${mitmPort}`, '--cacert', join(mitmConf, 'mitmproxy-ca-cert.pem'), bigUrl]);
  const nginxBig = () => curlTime(['--cacert', cert, bigUrl]);
  await nginxBig(); // warm the page cache
  /** curl's CPU seconds per phase's direct transfers (summed; ÷ REPEAT for the mean). */
  const curlDirectCpu = { record: 0, replay: 0 };
  const nginxBigWithCurlCpu = (phase: 'record' | 'replay') => async () => {
    const t = await curlTimeWithCpu(['--cacert', cert, bigUrl]);
    curlDirectCpu[phase] += t.cpuS;
    return t.secs;
  };
  const { availableParallelism } = await import('node:os');
  const cores = availableParallelism();
  const ceilingInputs = (phase: 'record' | 'replay', nginxS: number): CeilingInputs => ({
    nginxS,
    nginxCpuS: cpuTotals[phase === 'record' ? 'nginxBig' : 'nginxReplay']! / REPEAT,
    curlCpuS: curlDirectCpu[phase] / REPEAT,
    shaS: results.sha256MemS!,
    cores,
  });

  // 1. recording through htvend build, in rounds with nginx direct and mitmproxy
  const blobs = join(work, 'blobs');
  const assets = join(work, 'assets.json');
  const htvendCa = join(work, 'htvend-ca.pem');
  const build = await serveProxy('build', blobs, assets, htvendCa, cert);
  // The recording's ceiling here: the same proxy relaying with a store that neither hashes nor
  // writes (bench/proxy-serve.ts `relay`), in the same rounds: TLS both legs, the loopback
  // copies and curl's and nginx's share of the 2 cores, which no recording can beat.
  const relay = await serveProxy('relay', join(work, 'relay-blobs'), join(work, 'relay-assets.json'), join(work, 'relay-ca.pem'), cert);
  await rounds({
    relayBigS: withCpu('relayBig', () => relay.cpuS(), (i) => curlTime(['-x', relay.url, '--cacert', join(work, 'relay-ca.pem'), `${bigUrl}?relay=${i}`])),
    nginxBigS: withCpu('nginxBig', nginxCpu, nginxBigWithCurlCpu('record')),
    // A distinct query string per run: each run is a fresh recording (nginx ignores the query).
    recordBigS: withCpu('recordBig', () => build.cpuS(), (i) => curlTime(['-x', build.url, '--cacert', htvendCa, `${bigUrl}?run=${i}`])),
    ...(ONLY_RECORD ? {} : { mitmRecordPhaseS: viaMitm }),
    // The in-memory hash every ceiling includes, timed in the same rounds as everything else
    // (the machine's speed drifts by 2x over minutes), best of all of them.
    sha256MemS: sha256MemSeconds,
  });
  await relay.stop();
  if (ONLY_RECORD) {
    const split = await build.cpuSplit();
    const b = await build.stop();
    const rec = ceilingInputs('record', results.nginxBigS!);
    const recCeilS = recordCeilingS(rec);
    console.log(JSON.stringify({ bigMiB: BIG_MIB, bestOf: REPEAT, ...results, nginxCpuS: rec.nginxCpuS, curlDirectCpuS: rec.curlCpuS, recordCeilingS: recCeilS, recordPeakRssMiB: b.peakRssMiB }));
    console.log(`record  ${BIG_MIB} MiB HTTPS   htvend/nginx throughput ratio  ${vsMark(results.nginxBigS! / results.recordBigS!, MARKS.recordVsNginx, results.nginxBigS! / recCeilS)}`);
    console.log(describeCeiling('record', rec));
    console.log(`record  relay (same proxy, no hash, no store write) ÷ nginx ${r(results.nginxBigS! / results.relayBigS!)}; record ÷ relay ${r(results.relayBigS! / results.recordBigS!)}`);
    console.log(`server CPU s per run: nginx big ${r(cpuTotals.nginxBig! / REPEAT)}; htvend record big ${r(cpuTotals.recordBig! / REPEAT)}; relay ceiling ${r(cpuTotals.relayBig! / REPEAT)}`);
    const gib = (BIG_MIB / 1024) * REPEAT;
    console.log(`htvend CPU-s per GiB recorded: ${r(cpuTotals.recordBig! / gib)} (whole process life incl. start-up: user ${r(split.user / gib)}, sys ${r(split.sys / gib)}; minor page faults per GiB ${Math.round(split.minflt / gib)})`);
    console.log(`peak RSS recording: ${b.peakRssMiB} MiB (mark < ${MARKS.peakRssMB} MB); load ${(await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ')}`);
    await Promise.all(children.map(stopChild));
    await rm(work, { recursive: true, force: true });
    process.exit(0);
  }
  await curlMany(smallCfg, ['-x', build.url, '--cacert', htvendCa]);
  const b = await build.stop();
  results.recordPeakRssMiB = b.peakRssMiB;
  const recorded = Object.keys(JSON.parse(await readFile(assets, 'utf8'))).length;
  if (recorded !== SMALL_FILES + REPEAT) throw new Error(`expected ${SMALL_FILES + REPEAT} recorded URLs, got ${recorded}`);

  // 2. replay through htvend offline, in rounds with nginx direct and mitmproxy
  const offline = await serveProxy('offline', blobs, assets, htvendCa, cert);
  results.idleRssMiB = offline.idleRssMiB;
  await rounds({
    nginxReplayPhaseS: withCpu('nginxReplay', nginxCpu, nginxBigWithCurlCpu('replay')),
    replayBigS: withCpu('replayBig', () => offline.cpuS(), (i) => curlTime(['-x', offline.url, '--cacert', htvendCa, `${bigUrl}?run=${i}`])),
    mitmBigS: viaMitm,
    sha256MemS: sha256MemSeconds,
  });
  await rounds({
    nginxSmallS: withCpu('nginxSmall', nginxCpu, () => curlMany(smallCfg, ['--cacert', cert])),
    replaySmallS: withCpu('replaySmall', () => offline.cpuS(), () => curlMany(smallCfg, ['-x', offline.url, '--cacert', htvendCa])),
  });
  const o = await offline.stop();
  results.replayPeakRssMiB = o.peakRssMiB;
  if (o.counters.htvend_missing_asset_total !== 0) throw new Error('offline replay missed assets');
  const rec = ceilingInputs('record', results.nginxBigS!);
  const rep = ceilingInputs('replay', results.nginxReplayPhaseS!);
  const recCeilS = recordCeilingS(rec);
  const repCeilS = replayCeilingS(rep);
  for (const [k, v] of Object.entries(cpuTotals)) results[`${k}CpuS`] = v / REPEAT;
  results.curlDirectRecordCpuS = rec.curlCpuS;
  results.curlDirectReplayCpuS = rep.curlCpuS;
  results.recordCeilingS = recCeilS;
  results.replayCeilingS = repCeilS;

  console.log(JSON.stringify({ bigMiB: BIG_MIB, smallRequests: SMALL_N, bestOf: REPEAT, cores, ...results }));
  console.log(`replay  ${BIG_MIB} MiB HTTPS   htvend/nginx throughput ratio  ${vsMark(results.nginxReplayPhaseS! / results.replayBigS!, MARKS.replayVsNginx, results.nginxReplayPhaseS! / repCeilS)}`);
  console.log(`record  ${BIG_MIB} MiB HTTPS   htvend/nginx throughput ratio  ${vsMark(results.nginxBigS! / results.recordBigS!, MARKS.recordVsNginx, results.nginxBigS! / recCeilS)}`);
  console.log(`record  vs mitmproxy  htvend speed-up                ${vsMark(results.mitmRecordPhaseS! / results.recordBigS!, MARKS.recordVsMitm, results.mitmRecordPhaseS! / recCeilS, 'x')}`);
  console.log(`replay  vs mitmproxy  htvend speed-up                ${r(results.mitmBigS! / results.replayBigS!)}x (no mark; hardware ceiling ${r(results.mitmBigS! / repCeilS)}x)`);
  console.log(describeCeiling('record', rec));
  console.log(describeCeiling('replay', rep));
  console.log(`record  relay (same proxy, no hash, no store write) ÷ nginx ${r(results.nginxBigS! / results.relayBigS!)}; record ÷ relay ${r(results.relayBigS! / results.recordBigS!)}`);
  console.log(`small   ${SMALL_N} x 10 KiB   htvend/nginx throughput ratio  ${r(results.nginxSmallS! / results.replaySmallS!)}  (mark >= ${MARKS.smallVsNginx} ${results.nginxSmallS! / results.replaySmallS! >= MARKS.smallVsNginx ? 'met' : 'not met'})`);
  // Server CPU seconds per run: unlike wall time, hardly moved by other load on the machine.
  console.log(`server CPU s per run: nginx big ${r(results.nginxBigCpuS!)} (replay phase ${r(results.nginxReplayCpuS!)}), small ${r(results.nginxSmallCpuS!)}; htvend record big ${r(results.recordBigCpuS!)}, relay ceiling ${r(results.relayBigCpuS!)}, replay big ${r(results.replayBigCpuS!)}, replay small ${r(results.replaySmallCpuS!)}`);
  const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  console.log(`load average at the end: ${load}`);
  console.log(`peak RSS moving 1 GiB: record ${results.recordPeakRssMiB} MiB, replay ${results.replayPeakRssMiB} MiB (mark < ${MARKS.peakRssMB} MB); idle ${results.idleRssMiB} MiB`);
} finally {
  await Promise.all(children.map(stopChild));
  await rm(work, { recursive: true, force: true });
}
