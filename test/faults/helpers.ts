/**
 * Fault-injection helpers (SPEC §11): upstream handlers that stall, trickle, or answer
 * 429, a tmpfs of our own for disk-full tests, and small assertions on what a failed run
 * left behind.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Handler } from '../helpers/https-upstream.js';

/** Sends the headers (Content-Length `total`) and `sendBytes`, then nothing: a stalled body. */
export function stallMidBody(total: number, sendBytes: number): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
    res.write(Buffer.alloc(sendBytes, 0x62));
  };
}

/** One byte every `intervalMs` (never idle long enough to trip an idle timeout). */
export function trickle(total: number, intervalMs: number): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
    let sent = 0;
    const timer = setInterval(() => {
      if (res.destroyed) return clearInterval(timer);
      res.write('t');
      if (++sent === total) {
        clearInterval(timer);
        res.end();
      }
    }, intervalMs);
    res.on('close', () => clearInterval(timer));
  };
}

/**
 * A tmpfs of `size` (e.g. `1m`) mounted on a mkdtemp dir of our own, unmounted and removed
 * when the test ends. Needs root.
 */
export async function smallTmpfs(t: Pick<TestContext, 'after'>, size: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'htvend-faults-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  t.after(async () => {
    spawnSync('umount', [dir]);
    await rm(dir, { recursive: true, force: true });
  });
  await mkdir(join(dir, 'blobs'));
  return join(dir, 'blobs');
}

/** True when this process may mount (root with CAP_SYS_ADMIN). */
export const canMount = process.getuid?.() === 0;

/** Names in `dir` that are in-progress temp files of the filesystem store. */
export async function tempFilesIn(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => !/^[0-9a-f]{64}$/.test(n));
}

/** assets.json parsed (throws when it is not valid JSON). */
export async function readAssets(path: string): Promise<Record<string, { Sha256: string }>> {
  return JSON.parse(await readFile(path, 'utf8')) as Record<string, { Sha256: string }>;
}
