/**
 * An S3-compatible server for tests: s3rver (npm) on a free 127.0.0.1 port with a temp
 * directory and pre-created buckets. s3rver checks the access key id (`S3RVER`) but not
 * signatures. `s3Env()` gives the environment an SDK client or an htvend process needs.
 *
 * It runs in a child `node` (not in the test process): under tsx, s3rver's dependency
 * `generator-function` resolves to its ESM build and koa breaks, and a separate process also
 * keeps the server's CPU off the test's event loop. `s3ServerCommand()` gives the argv, so a
 * test can start the same server inside a network namespace.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { repoRoot } from './cli.js';

export interface S3Server {
  /** `http(s)://127.0.0.1:PORT` */
  endpoint: string;
  /** s3rver's storage directory (`<dir>/<bucket>/<key>._S3rver_object`). */
  dir: string;
  stop(): Promise<void>;
  /** Registers a check to run at the end of the test while the server is still up. */
  beforeStop(check: () => Promise<void>): void;
}

/** The access key s3rver knows (its secret is not checked). */
export const S3RVER_KEY = 'S3RVER';

/** Environment for an SDK client (or an htvend process) talking to `server`. */
export function s3Env(server: Pick<S3Server, 'endpoint'>): Record<string, string> {
  return { AWS_ENDPOINT_URL: server.endpoint, AWS_ACCESS_KEY_ID: S3RVER_KEY, AWS_SECRET_ACCESS_KEY: S3RVER_KEY, AWS_REGION: 'us-east-1' };
}

const SCRIPT = `
const S3rver = require('s3rver');
const fs = require('fs');
const [dir, port, ...buckets] = process.argv.slice(1);
const tls = process.env.S3_TLS_CERT ? { cert: fs.readFileSync(process.env.S3_TLS_CERT), key: fs.readFileSync(process.env.S3_TLS_KEY) } : {};
const s = new S3rver({ port: Number(port), address: '127.0.0.1', directory: dir, silent: true, configureBuckets: buckets.map((name) => ({ name })), ...tls });
const scheme = tls.cert ? 'https' : 'http';
s.run().then((a) => process.stdout.write(scheme + '://127.0.0.1:' + a.port + '\\n'), (e) => { console.error(e); process.exit(1); });
const stop = () => s.close().then(() => process.exit(0), () => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
`;

/** argv that serves `dir` with `buckets` on `port` (0 = free port) and prints its endpoint. */
export function s3ServerCommand(dir: string, buckets: string[], port = 0): string[] {
  return [process.execPath, '-e', SCRIPT, dir, String(port), ...buckets];
}

/**
 * Starts s3rver with `buckets`; stopped and its storage removed when the test ends. With
 * `tls`, it serves HTTPS with the given certificate and key files.
 */
export async function startS3Server(t: Pick<TestContext, 'after'>, buckets: string[] = ['htvend-test'], tls?: { cert: string; key: string }): Promise<S3Server> {
  const dir = await mkdtemp(join(tmpdir(), 'htvend-s3-'));
  const [cmd, ...args] = s3ServerCommand(dir, buckets);
  const env = tls ? { ...process.env, S3_TLS_CERT: tls.cert, S3_TLS_KEY: tls.key } : process.env;
  const child = spawn(cmd!, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
  };
  const checks: (() => Promise<void>)[] = [];
  t.after(async () => {
    try {
      for (const c of checks) await c();
    } finally {
      await stop();
    }
    await rm(dir, { recursive: true, force: true });
  });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) resolve(out.trim());
    });
    child.on('exit', (code) => reject(new Error(`s3rver exited with ${code}: ${stderr}`)));
  });
  return { endpoint, dir, stop, beforeStop: (c) => void checks.push(c) };
}
