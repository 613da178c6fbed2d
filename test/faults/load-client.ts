/**
 * A load client for `htvend offline` (test/faults/load.test.ts and bench/soak.ts): a served
 * assets.json + blob dir, `htvend offline --daemon` started on it, and HTTPS GETs through the
 * proxy's CONNECT, each on its own TLS connection, with the body checked against its digest.
 * Written on raw sockets so that a thousand of them cost the client little.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { cliCommand } from '../helpers/cli.js';

export const ASSET_HOST = 'assets.load.test';

export interface Served {
  child: ChildProcess;
  pid: number;
  proxyPort: number;
  caPem: string;
  /** path → sha256 hex of the body. */
  assets: Map<string, string>;
  stop(): Promise<void>;
}

/** Writes `count` assets of `size` bytes each into `dir` (assets.json + blobs/). */
export async function writeAssets(dir: string, count: number, size: number): Promise<Map<string, string>> {
  const blobs = join(dir, 'blobs');
  await mkdir(blobs, { recursive: true });
  const out = new Map<string, string>();
  const json: Record<string, { Sha256: string; Headers: Record<string, string> }> = {};
  for (let i = 0; i < count; i++) {
    const body = Buffer.alloc(size, i % 251);
    body.write(`asset ${i}\n`);
    const digest = createHash('sha256').update(body).digest('hex');
    await writeFile(join(blobs, digest), body);
    const path = `/files/${i}.bin`;
    json[`https://${ASSET_HOST}${path}`] = { Sha256: digest, Headers: { 'Content-Length': String(size), 'Content-Type': 'application/octet-stream' } };
    out.set(path, digest);
  }
  await writeFile(join(dir, 'assets.json'), JSON.stringify(json, null, 2));
  return out;
}

/** Starts `htvend offline --daemon` on `dir` (see writeAssets) and waits for its export lines. */
export async function serveOffline(dir: string, assets: Map<string, string>, extraArgs: string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<Served> {
  const cli = cliCommand('htvend');
  const args = [...cli.slice(1), '-C', dir, 'offline', '--daemon', '--blobs-dir', join(dir, 'blobs'), '--tls-cert-pem', join(dir, 'ca.pem'), '--tls-key-pem', join(dir, 'ca.key'), '--tls-generate-if-missing', ...extraArgs];
  const child = spawn(cli[0]!, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-20_000)));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /HTTPS_PROXY='http:\/\/127\.0\.0\.1:(\d+)'/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (c) => reject(new Error(`htvend offline exited (${c}): ${err}`)));
  });
  const caPem = await readFile(join(dir, 'ca.pem'), 'utf8');
  return {
    child,
    pid: child.pid!,
    proxyPort: port,
    caPem,
    assets,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function readHead(socket: Socket): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      socket.off('data', onData).off('error', reject).off('close', onClose);
      socket.pause();
      resolve({ head: buf.subarray(0, i).toString('latin1'), rest: buf.subarray(i + 4) });
    };
    const onClose = () => reject(new Error(`connection closed before a response head (${buf.length} bytes)`));
    socket.on('data', onData).once('error', reject).once('close', onClose);
  });
}

/**
 * One GET of `path` over a fresh CONNECT + TLS connection, the body's sha256 checked; rejects
 * on any error, a non-200, a short body or a wrong digest. `timeoutMs` bounds the whole.
 */
export async function getThroughProxy(s: Pick<Served, 'proxyPort' | 'caPem' | 'assets'>, path: string, timeoutMs = 60_000): Promise<number> {
  const raw = netConnect(s.proxyPort, '127.0.0.1');
  const timer = setTimeout(() => raw.destroy(new Error(`GET ${path}: no answer in ${timeoutMs} ms`)), timeoutMs);
  try {
    await new Promise<void>((resolve, reject) => raw.once('connect', resolve).once('error', reject));
    raw.write(`CONNECT ${ASSET_HOST}:443 HTTP/1.1\r\nHost: ${ASSET_HOST}:443\r\n\r\n`);
    const connectReply = await readHead(raw);
    if (!/^HTTP\/1\.1 200/.test(connectReply.head)) throw new Error(`CONNECT: ${connectReply.head.split('\r\n')[0]}`);
    const tls = tlsConnect({ socket: raw, servername: ASSET_HOST, ca: s.caPem });
    tls.on('error', () => {}); // reported through the promises below
    await new Promise<void>((resolve, reject) => tls.once('secureConnect', resolve).once('error', reject));
    tls.write(`GET ${path} HTTP/1.1\r\nHost: ${ASSET_HOST}\r\nConnection: close\r\n\r\n`);
    const { head, rest } = await readHead(tls);
    if (!/^HTTP\/1\.1 200/.test(head)) throw new Error(`GET ${path}: ${head.split('\r\n')[0]}`);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
    const hash = createHash('sha256').update(rest);
    let n = rest.length;
    await new Promise<void>((resolve, reject) => {
      tls.on('data', (d: Buffer) => {
        n += d.length;
        hash.update(d);
      });
      tls.once('end', resolve).once('error', reject).once('close', resolve);
      tls.resume();
    });
    tls.destroy();
    if (n !== length) throw new Error(`GET ${path}: ${n} bytes, Content-Length ${length}`);
    if (hash.digest('hex') !== s.assets.get(path)) throw new Error(`GET ${path}: wrong body`);
    return n;
  } finally {
    clearTimeout(timer);
    raw.destroy();
  }
}

/** RSS and peak RSS (VmHWM) of `pid` in MiB. */
export async function rssOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0) / 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** Runs `total` GETs with `concurrency` in flight at a time; returns the errors seen. */
export async function loadRun(s: Pick<Served, 'proxyPort' | 'caPem' | 'assets'>, total: number, concurrency: number, timeoutMs = 60_000): Promise<Error[]> {
  const paths = [...s.assets.keys()];
  const errors: Error[] = [];
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      await getThroughProxy(s, paths[i % paths.length]!, timeoutMs).catch((e: Error) => errors.push(e));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return errors;
}
