/**
 * Issue 9 fidelity tests: build a Dockerfile in-process (buildImages + the real runc
 * executor) on the busybox base image of test/helpers/busybox-image.ts, then unpack the
 * result into a directory to look at files as a container would see them.
 */
import { after } from 'node:test';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImages, type BuildOptions, type BuiltImage } from '../../../src/builder/build/build.js';
import { applyLayer } from '../../../src/builder/fs/apply.js';
import { executeRun } from '../../../src/builder/run/execute.js';
import { silentLogger } from '../../../src/util/log.js';
import { startBusyboxRegistry, type BusyboxRegistry } from '../../helpers/busybox-image.js';

let registry: Promise<BusyboxRegistry> | undefined;
// Registered at import (file level): `after()` called inside a test would run when that test ends.
const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** One busybox registry for the whole test file (stopped when the file's tests end). */
export function busybox(): Promise<BusyboxRegistry> {
  return (registry ??= startBusyboxRegistry({ after: (fn) => void cleanups.push(fn as () => unknown) }));
}

/** A temp dir removed when the file's tests end. */
export async function scratchDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `files` (path → content; a trailing `/` makes a directory) under `dir`. */
export async function writeTree(dir: string, files: Record<string, string>): Promise<void> {
  for (const [p, c] of Object.entries(files)) {
    if (p.endsWith('/')) {
      await mkdir(join(dir, p), { recursive: true });
      continue;
    }
    await mkdir(join(dir, p, '..'), { recursive: true });
    await writeFile(join(dir, p), c);
  }
}

export interface Built {
  images: BuiltImage[];
  /** The first platform's image, unpacked. */
  rootfs: string;
}

/** Builds `dockerfile` (`$BASE` = the busybox image) with context `files`; unpacks the result. */
export async function buildIn(dockerfile: string, files: Record<string, string> = {}, over: Partial<BuildOptions> = {}, prepare?: (ctx: string) => Promise<void>): Promise<Built> {
  const bb = await busybox();
  const dir = await scratchDir('htvend-fidelity-');
  const ctx = join(dir, 'ctx');
  await mkdir(ctx);
  await writeTree(ctx, files);
  await prepare?.(ctx);
  await writeFile(join(dir, 'Dockerfile'), dockerfile.replaceAll('$BASE', bb.ref));
  const tmp = join(dir, 'tmp');
  await mkdir(tmp, { mode: 0o700 });
  const images = await buildImages({
    contextDir: ctx, dockerfile: join(dir, 'Dockerfile'), dockerfileName: 'Dockerfile', buildArgs: new Map(), platforms: [{ os: 'linux', architecture: 'amd64' }],
    buildPlatform: { os: 'linux', architecture: 'amd64' }, epoch: 0, labels: new Map(), secrets: new Map(), globalMounts: [], network: 'host', env: {},
    tlsVerify: false, proxy: { certFileVars: [], env: {} }, runExecutor: (req, o) => executeRun({ ...req, output: process.stderr }, o), tmpDir: tmp, log: silentLogger,
    signal: new AbortController().signal, ...over,
  });
  const rootfs = join(dir, 'rootfs');
  await mkdir(rootfs);
  for (const l of images[0]!.image.layers) await applyLayer(rootfs, l.path, `layer ${l.digest}`);
  return { images, rootfs };
}
