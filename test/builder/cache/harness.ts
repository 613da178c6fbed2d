/**
 * Shared set-up of the build-cache end-to-end tests: one TLS docker-registry with the busybox
 * base image, one HTTPS upstream with a download whose content a test can change, and a
 * project per test (its own blob dir, assets.json and cache dir).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
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
