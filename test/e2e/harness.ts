/**
 * End-to-end harness: a project dir with its own blob dir, an in-process HTTPS upstream on
 * 127.0.0.1 with a test CA (htvend's own SSL_CERT_FILE points at it, so its upstream client
 * trusts it), and runners for `htvend build` (normal network) and `htvend offline` inside
 * `unshare -n` (a fresh network namespace where only `lo` exists: the upstream, living in
 * the outer namespace, is unreachable, so replay really is offline).
 */
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { spawnSync } from 'node:child_process';
import { tempDir } from '../helpers/tmp.js';
import { cliCommand, run, type RunResult } from '../helpers/cli.js';
import { startUpstream, type Upstream } from '../helpers/https-upstream.js';

export interface Project {
  dir: string;
  blobs: string;
  up: Upstream;
  /** htvend's own environment: PATH, a private HOME, SSL_CERT_FILE = the test upstream's CA. */
  env: NodeJS.ProcessEnv;
}

export async function project(t: TestContext, opts: { upstream?: boolean } = {}): Promise<Project> {
  const dir = await tempDir(t, 'htvend-e2e-');
  const blobs = join(dir, 'blobs');
  await mkdir(join(dir, 'home'));
  const up = opts.upstream === false ? (undefined as unknown as Upstream) : await startUpstream(t);
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], HOME: join(dir, 'home'), LANG: 'C.UTF-8' };
  if (up) {
    await writeFile(join(dir, 'upstream-ca.pem'), up.caPem);
    env['SSL_CERT_FILE'] = join(dir, 'upstream-ca.pem');
  }
  return { dir, blobs, up, env };
}

/** POSIX single-quoting for building `sh -c` strings. */
export function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `htvend -C DIR build --blobs-dir BLOBS ARGS…` */
export function build(p: Project, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return run([...cliCommand('htvend'), '-C', p.dir, 'build', '--blobs-dir', p.blobs, ...args], { env: { ...p.env, ...opts.env }, timeoutMs: opts.timeoutMs ?? 120_000 });
}

/** `unshare -n sh -c 'ip link set lo up && exec htvend -C DIR offline --blobs-dir BLOBS ARGS…'` */
export function offlineUnshared(p: Project, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  const cmd = [...cliCommand('htvend'), '-C', p.dir, 'offline', '--blobs-dir', p.blobs, ...args].map(q).join(' ');
  return run(['unshare', '-n', 'sh', '-c', `ip link set lo up && exec ${cmd}`], { env: { ...p.env, ...opts.env }, timeoutMs: opts.timeoutMs ?? 120_000 });
}

/** True when `unshare -n` works here (root or user namespaces). */
export const canUnshare = spawnSync('unshare', ['-n', 'true']).status === 0;

/** Tests needing the npm registry are skipped when HTVEND_TEST_NO_NETWORK=1. */
export const noNetwork = process.env['HTVEND_TEST_NO_NETWORK'] === '1';

export function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${q(cmd)}`]).status === 0;
}
