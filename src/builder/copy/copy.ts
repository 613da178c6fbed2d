/**
 * COPY and ADD → layer entries (written by `writeLayer`). Docker's rules:
 * - a directory source copies its CONTENTS into the destination directory;
 * - the destination is a directory if it ends with `/`, if there are several sources, or if it
 *   already is a directory in the image; otherwise it is the file's new name;
 * - relative destinations are relative to WORKDIR; missing parents are created (0755);
 * - context files are owned by root unless `--chown`; files from a stage keep their owners;
 * - `ADD <url>` downloads through the proxy in the environment (mode 0600, mtime = epoch);
 * - `ADD <local tar>` (plain or gzip) is extracted into the destination.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdtemp, open, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { fetch, type Dispatcher } from 'undici';
import { HashingStream } from '../../util/digest.js';
import { HtvendError, describeError } from '../../util/errors.js';
import { redactUrl } from '../../util/redact.js';
import { RootResolver, applyTarStream, openTar, sniffCompression } from '../fs/apply.js';
import type { LayerEntry } from '../fs/types.js';
import { walkTree } from '../fs/walk.js';
import type { Heredoc } from '../dockerfile/types.js';
import { isIgnored, resolveSource, type SourceRoot } from './sources.js';

export interface CopyRequest {
  kind: 'COPY' | 'ADD';
  /** Expanded source words. */
  sources: string[];
  /** Expanded destination. */
  dest: string;
  workdir: string;
  from: SourceRoot;
  /** What already exists in the image at a path (symlinks followed): see `PathLookup`. */
  lookup: PathLookup;
  chown?: { uid: number; gid: number };
  chmod?: number;
  checksum?: string;
  heredocs: Heredoc[];
  /** Expands a heredoc's content (variables) when its delimiter was unquoted. */
  expandHeredoc: (text: string) => string;
  epoch: number;
  tmpDir: string;
  /** undici dispatcher for `ADD <url>` (proxy + CA of the environment). */
  dispatcher: () => Promise<Dispatcher>;
  where: string;
  signal?: AbortSignal;
  /** Told of each `ADD <url>` download (for provenance): the URL and the sha256/size of the body. */
  onFetched?: ((url: string, sha256: string, size: number) => void) | undefined;
}

const URL_RE = /^https?:\/\//i;

/** Kind of the thing at a layer path in the image so far (symlinks followed), or undefined. */
export type PathLookup = (rel: string) => Promise<'dir' | 'other' | undefined>;

/** A `PathLookup` over a materialised rootfs directory. */
export function rootfsLookup(rootfs: string): PathLookup {
  const res = new RootResolver(rootfs);
  return async (rel) => {
    const host = await res.follow(rel).catch(() => undefined);
    const st = host ? await lstat(host).catch(() => undefined) : undefined;
    return st ? (st.isDirectory() ? 'dir' : 'other') : undefined;
  };
}

/** Parses `--chmod` (octal, e.g. 755 or 0644). */
export function parseChmod(v: string, where: string): number {
  if (!/^[0-7]{3,4}$/.test(v)) throw new HtvendError('INPUT', `${where}: --chmod=${v}: expected an octal mode such as 755`);
  return parseInt(v, 8);
}

async function isTarArchive(path: string): Promise<boolean> {
  const kind = await sniffCompression(path);
  if (kind !== 'gzip' && kind !== 'none') return false;
  const head = await new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const src = createReadStream(path, { end: kind === 'gzip' ? 64 * 1024 : 511 });
    const s = kind === 'gzip' ? src.pipe(createGunzip()) : src;
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      n += c.length;
      if (n >= 512) s.destroy();
    });
    s.on('close', () => resolve(Buffer.concat(chunks)));
    s.on('error', () => resolve(Buffer.concat(chunks)));
    src.on('error', () => resolve(Buffer.alloc(0)));
  });
  return head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
}

/** Computes the entries of one COPY/ADD step. */
export async function copyEntries(req: CopyRequest): Promise<LayerEntry[]> {
  const { where } = req;
  const dests = new Map<string, LayerEntry>();
  const put = (e: LayerEntry) => dests.set(e.path, e);
  const destAbs = posix.resolve(req.workdir || '/', req.dest);
  const destRel = destAbs.replace(/^\/+/, '');
  const existingKind = destRel === '' ? 'dir' : await req.lookup(destRel);
  const existingIsDir = existingKind === 'dir';
  const own = (st?: { uid: number; gid: number }) => req.chown ?? (req.from.isContext || !st ? { uid: 0, gid: 0 } : { uid: st.uid, gid: st.gid });

  const paths: string[] = [];
  const urls: string[] = [];
  const heredocFiles: { name: string; path: string }[] = [];
  for (const s of req.sources) {
    const hd = s.startsWith('<<') ? req.heredocs.find((h) => h.name === s.replace(/^<<-?["']?|["']$/g, '')) : undefined;
    if (hd) {
      const p = join(await mkdtemp(join(req.tmpDir, 'heredoc-')), hd.name);
      await writeFile(p, hd.expand ? req.expandHeredoc(hd.content) : hd.content, { mode: 0o644 });
      heredocFiles.push({ name: hd.name, path: p });
    } else if (URL_RE.test(s)) {
      if (req.kind === 'COPY') throw new HtvendError('INPUT', `${where}: COPY cannot fetch URLs (${redactUrl(s)}); use ADD`);
      urls.push(s);
    } else if (/^git@|\.git(#|$)/.test(s) && req.kind === 'ADD') {
      throw new HtvendError('INPUT', `${where}: ADD of a git repository is not supported (${s})`);
    } else paths.push(s);
  }
  const resolved = [];
  for (const src of paths) {
    const found = await resolveSource(req.from, src);
    if (found.length === 0) {
      const inWhat = req.from.isContext ? 'the build context' : 'the source stage/image';
      const ignored = req.from.isContext && isIgnored(req.from, src.replace(/^\.?\/+/, ''));
      throw new HtvendError('NOT_FOUND', `${where}: ${req.kind} ${src}: no such file or directory in ${inWhat}${ignored ? ' (excluded by .dockerignore)' : ''}`);
    }
    resolved.push(...found);
  }
  const total = resolved.length + urls.length + heredocFiles.length;
  const destIsDir = req.dest.endsWith('/') || req.dest === '.' || total > 1 || existingIsDir || (total === 1 && resolved[0]?.st.isDirectory() === true);
  if (total > 1 && !req.dest.endsWith('/') && !existingIsDir) {
    throw new HtvendError('INPUT', `${where}: when using ${req.kind} with more than one source file, the destination must be a directory and end with a /`);
  }

  // Missing parents (and the destination dir itself when it is one) are created, 0755.
  const ensureDirs = async (rel: string) => {
    const parts = rel.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      if (dests.has(p)) continue;
      if (await req.lookup(p)) continue;
      put({ type: 'dir', path: p, mode: 0o755, ...own(), mtime: req.epoch });
    }
  };
  const fileTarget = (name: string) => (destIsDir ? (destRel === '' ? name : `${destRel}/${name}`) : destRel);
  if (destIsDir) await ensureDirs(destRel);
  else await ensureDirs(posix.dirname(destAbs).replace(/^\/+/, ''));

  for (const src of resolved) {
    if (src.st.isDirectory()) {
      const entries = await walkTree(src.abs, {
        prefix: destRel,
        ...(req.chown ? { chown: req.chown } : req.from.isContext ? { chown: { uid: 0, gid: 0 } } : {}),
        ...(req.chmod !== undefined ? { chmod: req.chmod } : {}),
        // With `!` exceptions an ignored directory is still walked: it may hold re-included files.
        exclude: (p, st) => !(st.isDirectory() && req.from.hasExceptions) && isIgnored(req.from, posix.join(src.rel, destRel === '' ? p : p.slice(destRel.length + 1))),
        signal: req.signal,
      });
      for (const e of entries) put(e);
    } else if (req.kind === 'ADD' && req.from.isContext && (await isTarArchive(src.abs))) {
      const tmp = await mkdtemp(join(req.tmpDir, 'add-'));
      await applyTarStream(tmp, await openTar(src.abs, `${where}: ${src.rel}`, req.signal), `${where}: ${src.rel}`, { whiteouts: false, signal: req.signal });
      for (const e of await walkTree(tmp, { prefix: destRel, ...(req.chown ? { chown: req.chown } : {}), signal: req.signal })) put(e);
    } else {
      const name = posix.basename(src.rel) || posix.basename(src.abs);
      put({ type: 'file', path: fileTarget(name), source: src.abs, size: src.st.size, mode: req.chmod ?? src.st.mode & 0o7777, ...own(src.st), mtime: Math.floor(src.st.mtimeMs / 1000) });
    }
  }
  for (const h of heredocFiles) put({ type: 'file', path: fileTarget(h.name), source: h.path, mode: req.chmod ?? 0o644, ...own(), mtime: req.epoch });
  for (const u of urls) {
    const file = await fetchUrl(u, req);
    const name = posix.basename(new URL(u).pathname) || 'index.html';
    put({ type: 'file', path: fileTarget(name), source: file, mode: req.chmod ?? 0o600, ...own(), mtime: req.epoch });
  }
  return [...dests.values()];
}

/** Downloads `ADD <url>` into the temp dir through the environment's proxy; checks `--checksum`. */
async function fetchUrl(url: string, req: CopyRequest): Promise<string> {
  const shown = redactUrl(url);
  const dir = await mkdtemp(join(req.tmpDir, 'add-url-'));
  const path = join(dir, 'body');
  const hash = new HashingStream();
  try {
    const res = await fetch(url, { dispatcher: await req.dispatcher(), redirect: 'follow', signal: req.signal ?? null });
    if (res.status !== 200 || !res.body) throw new HtvendError('UPSTREAM', `${req.where}: ADD ${shown}: HTTP ${res.status}`);
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), hash, createWriteStream(path, { mode: 0o600 }), { signal: req.signal });
  } catch (e) {
    if (e instanceof HtvendError) throw e;
    throw new HtvendError('UPSTREAM', `${req.where}: ADD ${shown}: ${describeError(e)}`, { cause: e });
  }
  if (req.checksum) {
    const want = req.checksum.replace(/^sha256:/, '');
    if (hash.digest() !== want) throw new HtvendError('DIGEST_MISMATCH', `${req.where}: ADD ${shown}: --checksum=${req.checksum} does not match the download (sha256:${hash.digest()})`);
  }
  req.onFetched?.(url, hash.digest(), hash.size);
  return path;
}

/** Resolves `--chown` names against the rootfs' /etc/passwd and /etc/group (Docker: a user without group uses the uid as gid… unless a name gives its primary group). */
export async function resolveChown(rootfs: string, spec: string, where: string): Promise<{ uid: number; gid: number }> {
  const [u = '', g] = spec.split(':', 2) as [string, string | undefined];
  const res = new RootResolver(rootfs);
  const readDb = async (p: string) => {
    const host = await res.follow(p);
    if (!host) return [] as string[][];
    const fh = await open(host, 'r').catch(() => undefined);
    if (!fh) return [];
    try {
      return (await fh.readFile('utf8')).split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
    } finally {
      await fh.close();
    }
  };
  let uid: number;
  let primary: number | undefined;
  if (/^\d+$/.test(u)) uid = Number(u);
  else {
    const e = (await readDb('etc/passwd')).find((f) => f[0] === u);
    if (!e) throw new HtvendError('INPUT', `${where}: --chown=${spec}: no user ${u} in the image's /etc/passwd`);
    uid = Number(e[2]);
    primary = Number(e[3]);
  }
  let gid: number;
  if (g === undefined || g === '') gid = primary ?? uid;
  else if (/^\d+$/.test(g)) gid = Number(g);
  else {
    const e = (await readDb('etc/group')).find((f) => f[0] === g);
    if (!e) throw new HtvendError('INPUT', `${where}: --chown=${spec}: no group ${g} in the image's /etc/group`);
    gid = Number(e[2]);
  }
  return { uid, gid };
}
