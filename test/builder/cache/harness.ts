/**
 * Shared set-up of the build-cache end-to-end tests: one TLS docker-registry with the busybox
 * base image, one HTTPS upstream with a download whose content a test can change, and a
 * project per test (its own blob dir, assets.json and cache dir).
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, type TestContext } from 'node:test';
import { startBusyboxRegistry, type BusyboxRegistry } from '../../helpers/busybox-image.js';
import { startUpstream, type Upstream } from '../../helpers/https-upstream.js';
import { tempDir } from '../../helpers/tmp.js';
import { cliCommand, run, type RunResult } from '../../helpers/cli.js';
import { q } from '../../e2e/harness.js';

export interface World {
  bb: BusyboxRegistry;
  up: Upstream;
  /** Body of `${up.https}/data.txt`; change it to change upstream. */
  data: { body: string };
  /** registry CA + upstream CA, for htvend's own upstream trust. */
  trustFile: string;
  certDir: string;
}

export async function world(t: Pick<TestContext, 'after'>): Promise<World> {
  const bb = await startBusyboxRegistry(t, { tls: true });
  const up = await startUpstream(t);
  const data = { body: 'version one\n' };
  up.route('/data.txt', (_req, res) => res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(data.body) }).end(data.body));
  const dir = await tempDir(t, 'htvend-cache-world-');
  const trustFile = join(dir, 'trust.pem');
  await writeFile(trustFile, `${await readFile(bb.registry.caFile!, 'utf8')}\n${up.caPem}`);
  const certDir = join(dir, 'certs');
  await mkdir(certDir);
  await writeFile(join(certDir, 'ca.crt'), await readFile(bb.registry.caFile!));
  return { bb, up, data, trustFile, certDir };
}

export interface Proj {
  dir: string;
  ctx: string;
  blobs: string;
  cache: string;
  env: NodeJS.ProcessEnv;
}

export async function proj(t: TestContext, w: World, dockerfile: string, files: Record<string, string> = {}): Promise<Proj> {
  const dir = await tempDir(t, 'htvend-cache-');
  const ctx = join(dir, 'ctx');
  await mkdir(ctx);
  await mkdir(join(dir, 'home'));
  await writeFile(join(ctx, 'Dockerfile'), dockerfile);
  for (const [k, v] of Object.entries(files)) await writeFile(join(ctx, k), v);
  return { dir, ctx, blobs: join(dir, 'blobs'), cache: join(dir, 'cache'), env: { PATH: process.env['PATH'], HOME: join(dir, 'home'), LANG: 'C.UTF-8', SSL_CERT_FILE: w.trustFile } };
}

export function builder(p: Proj, out: string, extra: string[] = []): string[] {
  return [...cliCommand('build-img-with-proxy'), '--platform', 'linux/amd64', '--layers', '--cache-dir', p.cache, '-t', `oci-archive:${join(p.dir, out)}`, ...extra, p.ctx];
}

/** `htvend build -- build-img-with-proxy …` */
export function online(p: Proj, out: string, extra: string[] = [], htvendFlags: string[] = []): Promise<RunResult> {
  return run([...cliCommand('htvend'), '-C', p.dir, 'build', '--blobs-dir', p.blobs, ...htvendFlags, '--', ...builder(p, out, extra)], { env: p.env, timeoutMs: 180_000 });
}

/** `htvend offline` inside `unshare -n` (nothing but loopback). */
export function offline(p: Proj, out: string, extra: string[] = []): Promise<RunResult> {
  const cmd = [...cliCommand('htvend'), '-C', p.dir, 'offline', '--blobs-dir', p.blobs, '--', ...builder(p, out, extra)].map(q).join(' ');
  return run(['unshare', '-n', 'sh', '-c', `ip link set lo up && exec ${cmd}`], { env: p.env, timeoutMs: 180_000 });
}

export interface ReportStep {
  kind: string;
  line: number;
  status: 'run' | 'cached';
  assets: { url: string; sha256: string; size: number }[];
  layer: { digest: string; size: number } | null;
  note?: string;
}

export async function reportSteps(file: string): Promise<ReportStep[]> {
  return (JSON.parse(await readFile(file, 'utf8')) as { steps: ReportStep[] }).steps;
}

export function digestOf(r: RunResult): string | undefined {
  return r.stdout.match(/sha256:[0-9a-f]{64}/)?.[0];
}

/**
 * One World for the whole test file, started before its first test and stopped after its
 * last (tests in a file share the registry and the upstream; each makes its own project).
 */
export function sharedWorld(): () => World {
  let w: World | undefined;
  const cleanups: (() => unknown)[] = [];
  before(async () => {
    w = await world({ after: (fn: () => unknown) => void cleanups.push(fn) } as never);
  });
  after(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return () => {
    if (!w) throw new Error('the test world is not started (sharedWorld() must be called at the top level of the test file)');
    return w;
  };
}

/**
 * The shared libraries (and the dynamic loader) that `bins` need, copied from the host to
 * the same paths under `root/` (for `COPY root/ /` onto the busybox base, which has no libc).
 */
export async function hostLibs(root: string, bins: string[]): Promise<void> {
  const libs = new Set<string>();
  for (const bin of bins) {
    const r = await run(['ldd', bin]);
    assert.equal(r.code, 0, `ldd ${bin}: ${r.stderr}`);
    for (const m of r.stdout.matchAll(/(\/\S+\.so[^\s]*)/g)) if (!m[1]!.startsWith(root)) libs.add(m[1]!);
  }
  for (const f of libs) await copyHostFile(f, join(root, f));
}

/** The host's `bin` with the shared libraries it needs, laid out under `root/` for COPY. */
export async function hostTool(root: string, bin: string): Promise<void> {
  await copyHostFile(bin, join(root, bin));
  await hostLibs(root, [bin]);
}

async function copyHostFile(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  const cp = await run(['cp', '-L', from, to]);
  assert.equal(cp.code, 0, cp.stderr);
}
