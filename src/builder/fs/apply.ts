/**
 * Applies layer tars, in order, to a rootfs directory on the host (the stage's working rootfs).
 * Handles OCI whiteouts (`.wh.name`, `.wh..wh..opq`), hard links, symlinks, ownership and modes.
 *
 * Safety: we run as root, so a layer (or a symlink an earlier layer planted) must never make
 * us write outside the rootfs. Every parent directory is resolved component by component
 * inside the root (symlinks re-anchored at the root, like chroot would), and the final
 * component is never followed: an existing symlink there is replaced, not written through.
 *
 * Device nodes and fifos are made with mknod(1) when running as root, else skipped (logged). Extended attributes are restored through GNU tar (see restoreXattrs).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, chown, lchown, link, lstat, lutimes, mkdir, open, readdir, readlink, rm, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PassThrough, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract, type Headers } from 'tar-stream';
import { HtvendError, describeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { silentLogger } from '../../util/log.js';

/** Compression of a blob, sniffed from its first bytes (media types lie more often than magic). */
export async function sniffCompression(path: string): Promise<'gzip' | 'zstd' | 'bzip2' | 'xz' | 'none'> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(6);
    const { bytesRead } = await fh.read(buf, 0, 6, 0);
    const b = buf.subarray(0, bytesRead);
    if (b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
    if (b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return 'zstd';
    if (b[0] === 0x42 && b[1] === 0x5a && b[2] === 0x68) return 'bzip2';
    if (b[0] === 0xfd && b[1] === 0x37 && b[2] === 0x7a && b[3] === 0x58) return 'xz';
    return 'none';
  } finally {
    await fh.close();
  }
}

/**
 * A readable of the uncompressed tar inside `path`: gzip (zlib), zstd, xz or bzip2 (Debian's
 * `zstd`/`xz`/`bzip2` decoders in a child process: Node 20 has none of them, and the reference
 * C decoders keep up with a layer), or plain. xz and bzip2 are for `ADD` of local archives
 * (BuildKit extracts those four formats); base layers are gzip or zstd by the OCI spec.
 */
export async function openTar(path: string, what: string, signal?: AbortSignal): Promise<Readable> {
  const kind = await sniffCompression(path);
  if (kind !== 'gzip' && kind !== 'none') return programDecompress(kind, path, what, signal);
  const file = createReadStream(path, { signal });
  if (kind === 'none') return file;
  const gunzip = createGunzip();
  file.on('error', (e) => gunzip.destroy(e));
  return file.pipe(gunzip);
}

const DECODERS = { zstd: 'zstd', xz: 'xz-utils', bzip2: 'bzip2' } as const;

/**
 * `zstd|xz|bzip2 -dc PATH` as a stream. The stream errors (naming the layer and the program's
 * own message) if the program is missing or fails, so a corrupt layer never reads as a short,
 * complete tar; ending early (destroy, abort) kills the process.
 */
function programDecompress(program: keyof typeof DECODERS, path: string, what: string, signal?: AbortSignal): Readable {
  const child = spawn(program, ['-dcq', '--', path], { stdio: ['ignore', 'pipe', 'pipe'], signal });
  const out = child.stdout;
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const fail = (message: string, cause?: unknown) => out.destroy(new HtvendError('INPUT', `${what}: ${message}`, { cause, hint: `${program} data is decoded by the ${program} program (apt-get install ${DECODERS[program]})` }));
  child.on('error', (e) => {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') fail(`${program}-compressed, and the ${program} program is not installed`, e);
    else if (e.name !== 'AbortError') fail(`${program}: ${describeError(e)}`, e);
    else out.destroy(e);
  });
  // stdout may end before the exit status is known: hold the end back until the program says it succeeded.
  const checked = new PassThrough();
  out.on('error', (e) => checked.destroy(e));
  out.pipe(checked, { end: false });
  let exited: number | null | undefined;
  let drained = false;
  const finish = () => {
    if (!drained || exited === undefined) return;
    if (exited === 0) checked.end();
    else checked.destroy(new HtvendError('INPUT', `${what}: ${program} failed (exit ${exited}): ${stderr.trim() || 'no message'}`));
  };
  out.on('end', () => {
    drained = true;
    finish();
  });
  child.on('exit', (code) => {
    exited = code;
    finish();
  });
  checked.on('close', () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return checked;
}

/** Normalises a tar member name to a clean relative path; rejects `..` escapes. */
export function cleanMemberPath(name: string, what: string): string {
  const p = posix.normalize('/' + name).slice(1).replace(/\/+$/, '');
  if (p.split('/').includes('..')) throw new HtvendError('INPUT', `${what}: tar member escapes the root: ${name}`);
  return p;
}

/** Resolves parent directories of layer paths inside a root without ever leaving it. */
export class RootResolver {
  private readonly dirCache = new Map<string, string>();
  constructor(readonly root: string) {}

  /** Host path of the directory `rel` (a layer path), following symlinks within the root; creates missing dirs when `create`. */
  async dir(rel: string, create: boolean): Promise<string | undefined> {
    if (rel === '') return this.root;
    const cached = this.dirCache.get(rel);
    if (cached) return cached;
    let cur = '';
    const parts = rel.split('/');
    let hops = 0;
    while (parts.length > 0) {
      const name = parts.shift()!;
      if (name === '' || name === '.') continue;
      if (name === '..') {
        cur = posix.dirname(cur) === '.' ? '' : posix.dirname(cur);
        continue;
      }
      const next = cur === '' ? name : `${cur}/${name}`;
      const host = join(this.root, next);
      const st = await lstat(host).catch(() => undefined);
      if (st?.isSymbolicLink()) {
        if (++hops > 40) throw new HtvendError('INPUT', `too many symlinks resolving /${rel} in the image`);
        const target = await readlink(host);
        parts.unshift(...target.split('/'));
        if (target.startsWith('/')) cur = '';
        continue;
      }
      if (!st) {
        if (!create) return undefined;
        await mkdir(host, { mode: 0o755 });
      } else if (!st.isDirectory()) {
        if (!create) return undefined;
        throw new HtvendError('INPUT', `/${next} is not a directory in the image`);
      }
      cur = next;
    }
    const host = join(this.root, cur);
    this.dirCache.set(rel, host);
    return host;
  }

  /** Host path of `rel` with its parent resolved and the last component NOT followed. */
  async path(rel: string, create: boolean): Promise<string | undefined> {
    const parent = await this.dir(posix.dirname(rel) === '.' ? '' : posix.dirname(rel), create);
    return parent === undefined ? undefined : join(parent, posix.basename(rel));
  }

  /** Host path of `rel` with every symlink (the last one too) resolved inside the root. */
  async follow(rel: string, hops = 0): Promise<string | undefined> {
    const host = await this.path(rel, false);
    if (host === undefined) return undefined;
    const st = await lstat(host).catch(() => undefined);
    if (!st?.isSymbolicLink()) return host;
    if (hops > 40) throw new HtvendError('INPUT', `too many symlinks resolving /${rel} in the image`);
    const target = await readlink(host);
    const parent = posix.dirname(rel) === '.' ? '' : posix.dirname(rel);
    const next = posix.normalize(target.startsWith('/') ? target : `/${parent}/${target}`).replace(/^\/+/, '');
    return this.follow(next === '.' ? '' : next, hops + 1);
  }

  /** Forget cached resolutions at or under `rel` (it was replaced). */
  invalidate(rel: string): void {
    for (const k of this.dirCache.keys()) if (k === rel || k.startsWith(rel + '/')) this.dirCache.delete(k);
  }
}

export interface ApplyOptions {
  signal?: AbortSignal;
  log?: Logger;
}

/** Applies one layer blob (gzip or plain tar) to `root`. */
export async function applyLayer(root: string, blobPath: string, what: string, opts: ApplyOptions = {}): Promise<void> {
  const tar = await openTar(blobPath, what, opts.signal);
  await applyTarStream(root, tar, what, { ...opts, blobPath });
}

/** Applies an uncompressed tar stream to `root` (also used by ADD of local archives, without whiteouts). */
export async function applyTarStream(
  root: string,
  tar: Readable,
  what: string,
  opts: ApplyOptions & { whiteouts?: boolean; prefix?: string; blobPath?: string } = {},
): Promise<void> {
  const log = opts.log ?? silentLogger;
  const res = new RootResolver(root);
  const created = new Set<string>();
  const dirTimes: { host: string; mtime: Date }[] = [];
  const ex = tarExtract();
  const whiteouts = opts.whiteouts ?? true;
  const prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
  const withXattrs: string[] = [];
  const handle = async (h: Headers, body: Readable): Promise<void> => {
    let rel = cleanMemberPath(h.name, what);
    if (prefix) rel = rel === '' ? prefix : `${prefix}/${rel}`;
    const base = posix.basename(rel);
    const parentRel = posix.dirname(rel) === '.' ? '' : posix.dirname(rel);
    if (whiteouts && base === '.wh..wh..opq') {
      const dir = await res.dir(parentRel, false);
      if (dir) {
        for (const name of await readdir(dir)) {
          const childRel = parentRel === '' ? name : `${parentRel}/${name}`;
          if (!created.has(childRel)) {
            await rm(join(dir, name), { recursive: true, force: true });
            res.invalidate(childRel);
          }
        }
      }
      return void body.resume();
    }
    if (whiteouts && base.startsWith('.wh.')) {
      const victimRel = parentRel === '' ? base.slice(4) : `${parentRel}/${base.slice(4)}`;
      const victim = await res.path(victimRel, false);
      if (victim) await rm(victim, { recursive: true, force: true });
      res.invalidate(victimRel);
      return void body.resume();
    }
    if (rel === '') {
      body.resume();
      return;
    }
    const host = (await res.path(rel, true))!;
    const existing = await lstat(host).catch(() => undefined);
    const mtime = h.mtime ?? new Date(0);
    const uid = h.uid ?? 0;
    const gid = h.gid ?? 0;
    const mode = (h.mode ?? 0o644) & 0o7777;
    created.add(rel);
    const pax = (h as Headers & { pax?: Record<string, string> }).pax;
    if (pax && Object.keys(pax).some((k) => k.startsWith('SCHILY.xattr.')) && (h.type === 'file' || h.type === 'directory')) {
      // Only when no symlink sits between the root and the entry (GNU tar would follow it).
      if (host === join(root, rel)) withXattrs.push(h.name);
    }
    if (h.type === 'directory') {
      if (existing && !existing.isDirectory()) await rm(host, { force: true });
      if (!existing || !existing.isDirectory()) await mkdir(host, { mode });
      await chown(host, uid, gid);
      await chmod(host, mode);
      dirTimes.push({ host, mtime });
      body.resume();
      return;
    }
    if (existing) {
      await rm(host, { recursive: true, force: true });
      res.invalidate(rel);
    }
    switch (h.type) {
      case 'file':
      case 'contiguous-file': {
        // One open file handle for data, owner, mode and times: fewer path lookups per file.
        const fh = await open(host, 'wx', 0o600);
        try {
          for await (const chunk of body) await fh.write(chunk as Buffer);
          await fh.chown(uid, gid);
          await fh.chmod(mode);
          await fh.utimes(mtime, mtime);
        } finally {
          await fh.close();
        }
        return;
      }
      case 'symlink':
        await symlink(h.linkname ?? '', host);
        await lchown(host, uid, gid);
        await lutimes(host, mtime, mtime).catch(() => {});
        body.resume();
        return;
      case 'link': {
        const target = await res.path(cleanMemberPath(prefix ? `${prefix}/${h.linkname ?? ''}` : (h.linkname ?? ''), what), false);
        if (!target) throw new HtvendError('INPUT', `${what}: hard link ${h.name} -> ${h.linkname}: target missing`);
        await link(target, host);
        body.resume();
        return;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo':
        body.resume();
        // Node cannot mknod; coreutils can, as root. Unprivileged: skipped (logged).
        if (process.getuid?.() === 0 && (await mknod(host, h, mode))) {
          await lchown(host, uid, gid);
          return;
        }
        log.debug(`${what}: skipping ${h.type} entry ${h.name}`);
        created.delete(rel);
        return;
      default:
        log.debug(`${what}: skipping ${h.type} entry ${h.name}`);
        created.delete(rel);
        body.resume();
    }
  };
  ex.on('entry', (h, body, next) => {
    handle(h, body).then(
      () => next(),
      (e) => ex.destroy(e instanceof HtvendError ? e : new HtvendError('IO', `${what}: extracting ${h.name}: ${describeError(e)}`, { cause: e })),
    );
  });
  await pipeline(tar, ex, { signal: opts.signal });
  if (withXattrs.length && opts.blobPath) await restoreXattrs(root, opts.blobPath, withXattrs, what, log, opts.signal);
  // Directory mtimes last: creating children above changed them.
  for (const { host, mtime } of dirTimes.reverse()) await utimes(host, mtime, mtime).catch(() => {});
}

/** `mknod -m MODE PATH c|b|p [MAJOR MINOR]`; true on success. */
function mknod(host: string, h: Headers, mode: number): Promise<boolean> {
  const kind = h.type === 'character-device' ? ['c', String(h.devmajor ?? 0), String(h.devminor ?? 0)] : h.type === 'block-device' ? ['b', String(h.devmajor ?? 0), String(h.devminor ?? 0)] : ['p'];
  return new Promise((resolve) => {
    const p = spawn('mknod', ['-m', mode.toString(8), host, ...kind], { stdio: 'ignore' });
    p.on('error', () => resolve(false));
    p.on('close', (c) => resolve(c === 0));
  });
}

/**
 * Extended attributes (e.g. `security.capability` on ping) are restored by GNU tar, which
 * reads PAX `SCHILY.xattr.*` records byte for byte (tar-stream decodes them as UTF-8, lossy):
 * the few members that carry xattrs are extracted a second time with `--xattrs`. Best effort:
 * without GNU tar or xattr support the rootfs simply lacks them (the layer itself is intact).
 */
async function restoreXattrs(root: string, blobPath: string, names: string[], what: string, log: Logger, signal?: AbortSignal): Promise<void> {
  const list = join(root, '..', `.xattr-members-${process.pid}-${Date.now()}`);
  await writeFile(list, names.map((n) => n + '\0').join(''), { mode: 0o600 });
  try {
    const code = await new Promise<number>((resolve) => {
      // -C must come before -T: GNU tar applies it only to the member names that follow it.
      const p = spawn('tar', ['--xattrs', '--xattrs-include=*', '--no-recursion', '-xf', blobPath, '-C', root, '--null', '-T', list], { stdio: ['ignore', 'ignore', 'pipe'], signal });
      let err = '';
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      p.on('error', () => resolve(-1));
      p.on('close', (c) => {
        if (c !== 0) log.debug(`${what}: restoring xattrs with GNU tar failed: ${err.trim()}`);
        resolve(c ?? -1);
      });
    });
    if (code === 0) log.debug(`${what}: restored xattrs of ${names.length} entries`);
  } finally {
    await rm(list, { force: true });
  }
}

/** Removes a path recursively; unlink for non-dirs. */
export async function removePath(host: string): Promise<void> {
  const st = await lstat(host).catch(() => undefined);
  if (!st) return;
  if (st.isDirectory()) await rm(host, { recursive: true, force: true });
  else await unlink(host);
}
