/**
 * Test fixtures for the RUN executor: a busybox rootfs made from the host's busybox-static
 * (no network, no registry) and a RunStepRequest with sensible defaults.
 */
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, readdir, symlink, writeFile, chmod, lstat, readlink, readFile } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { extract } from 'tar-stream';
import { Writable } from 'node:stream';
import type { RunStepRequest } from '../../../src/builder/run/types.js';
import type { LayerInfo } from '../../../src/builder/fs/types.js';

/** Creates a minimal busybox rootfs in `dir` with users root, app (1000) and group staff (50, app a member). */
export async function makeBusyboxRootfs(dir: string, busybox = '/bin/busybox'): Promise<string> {
  for (const d of ['bin', 'etc', 'tmp', 'root', 'home/app', 'var/lib/gone/sub', 'opt/keep']) await mkdir(join(dir, d), { recursive: true });
  await chmod(join(dir, 'tmp'), 0o1777);
  await copyFile(busybox, join(dir, 'bin', 'busybox'));
  await chmod(join(dir, 'bin', 'busybox'), 0o755);
  const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const a of applets) if (a !== 'busybox') await symlink('busybox', join(dir, 'bin', a));
  await writeFile(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n');
  await writeFile(join(dir, 'etc', 'group'), 'root:x:0:\nstaff:x:50:app\napp:x:1000:\n');
  await writeFile(join(dir, 'var', 'lib', 'gone', 'sub', 'f'), 'lower\n');
  await writeFile(join(dir, 'opt', 'keep', 'old'), 'old\n');
  await writeFile(join(dir, 'etc', 'victim'), 'delete me\n');
  return dir;
}

/** A request running `argv` on `rootfs`, no proxy injection; override anything. */
export function request(rootfs: string, tmpDir: string, argv: string[], over: Partial<RunStepRequest> = {}): RunStepRequest {
  return {
    rootfsLayers: [rootfs],
    argv,
    env: ['PATH=/bin'],
    user: '',
    workdir: '/',
    mounts: [],
    network: 'host',
    privileged: false,
    platform: { os: 'linux', architecture: 'amd64' },
    epoch: 0,
    proxyEnv: { certFileVars: [], env: {} },
    contextDir: tmpDir,
    cacheRoot: join(tmpDir, 'cache'),
    tmpDir,
    stageRootfs: async (s) => {
      throw new Error(`no stage ${s}`);
    },
    signal: new AbortController().signal,
    dockerfileLine: 'Dockerfile:3',
    ...over,
  };
}

export interface TarMember {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname: string | null;
  body: string;
  pax: Record<string, string>;
}

/** Reads a gzip'd layer tar into memory (test layers are tiny). */
export async function readLayer(layer: LayerInfo): Promise<TarMember[]> {
  const ex = extract();
  const out: TarMember[] = [];
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        out.push({
          name: h.name.replace(/\/$/, ''),
          type: h.type ?? 'file',
          mode: h.mode ?? 0,
          uid: h.uid ?? 0,
          gid: h.gid ?? 0,
          mtime: h.mtime ? Math.floor(h.mtime.getTime() / 1000) : 0,
          linkname: h.linkname ?? null,
          body: Buffer.concat(chunks).toString('utf8'),
          pax: ((h as { pax?: Record<string, string> }).pax ?? {}),
        });
        next();
      });
      stream.on('error', reject);
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  createReadStream(layer.path).pipe(createGunzip()).pipe(ex);
  await done;
  return out;
}

/** Names in a layer, sorted. */
export function names(members: TarMember[]): string[] {
  return members.map((m) => m.name).sort();
}

export { readdir, lstat, readlink, readFile };

/** A writable that collects what the container printed. */
export function collector(): { stream: NodeJS.WritableStream; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      cb();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

