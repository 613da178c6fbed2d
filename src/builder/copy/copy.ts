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
import { createReadStream, createWriteStream, type Stats } from 'node:fs';
import { lstat, mkdtemp, open, readlink, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import { HashingStream } from '../../util/digest.js';
import { HtvendError, describeError } from '../../util/errors.js';
import { redactUrl } from '../../util/redact.js';
import { RootResolver, applyTarStream, openTar } from '../fs/apply.js';
import type { LayerEntry } from '../fs/types.js';
import { applyChmod, parseSymbolicMode, type Chmod } from '../fs/chmod.js';
import { walkTree } from '../fs/walk.js';
import type { Heredoc } from '../dockerfile/types.js';
import { isIgnored, newIgnore, resolveSource, type SourceRoot } from './sources.js';
import { isLiteralParentsSource, matchParents, type ParentsMatch } from './parents.js';

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
  /** Target of the symlink at a layer path of the image, if it is one (to write through links). */
  readlink?: SymlinkReader;
  chown?: { uid: number; gid: number };
  chmod?: Chmod;
  /**
   * `--exclude` patterns (.dockerignore syntax, `!` exceptions too), matched as BuildKit does
   * against the paths under each matched source, never against the source itself.
   */
  exclude?: string[];
  /**
   * COPY --parents: each source keeps its path relative to the source root, or to the `/./`
   * pivot in it, under the destination (BuildKit's include-pattern copy; see parents.ts).
   */
  parents?: boolean;
  checksum?: string;
  /** ADD --unpack: false keeps local archives as files, true also extracts downloaded ones; default: local only. */
  unpack?: boolean;
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

/** Docker's isGitURL: git@host:…, git://…, github.com/…, or an http(s) URL whose path ends in .git (optionally #ref). */
function isGitSource(s: string): boolean {
  if (/^git@|^git:\/\/|^github\.com\//.test(s)) return true;
  if (!URL_RE.test(s)) return /\.git(#|$)/.test(s);
  const hash = s.indexOf('#');
  return /\.git\/?$/.test((hash >= 0 ? s.slice(0, hash) : s).split('?')[0]!);
}

/** Kind of the thing at a layer path in the image so far (symlinks followed), or undefined. */
export type PathLookup = (rel: string) => Promise<'dir' | 'other' | undefined>;

/** The target of the symlink at a layer path (parents already resolved), or undefined. */
export type SymlinkReader = (rel: string) => Promise<string | undefined>;

/**
 * `rel` with the symlinks of the image followed, as BuildKit resolves a destination inside the
 * root (continuity's RootPath): links are followed even when their target does not exist yet
 * (`COPY f /link/` with a dangling `/link -> /target` creates /target), never out of the root.
 * The last component is followed only when `followLast`.
 */
export async function resolveSymlinks(rel: string, readlinkAt: SymlinkReader, followLast: boolean): Promise<string> {
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  let cur: string[] = [];
  let hops = 0;
  while (parts.length > 0) {
    const name = parts.shift()!;
    if (name === '..') {
      cur.pop();
      continue;
    }
    const next = [...cur, name].join('/');
    const target = parts.length > 0 || followLast ? await readlinkAt(next) : undefined;
    if (target === undefined) {
      cur.push(name);
      continue;
    }
    if (++hops > 40) throw new HtvendError('INPUT', `too many symlinks resolving /${rel} in the image`);
    if (target.startsWith('/')) cur = [];
    parts.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
  }
  return cur.join('/');
}

/** A `SymlinkReader` over a materialised rootfs directory. */
export function rootfsReadlink(rootfs: string): SymlinkReader {
  return async (rel) => {
    const host = join(rootfs, rel);
    const st = await lstat(host).catch(() => undefined);
    return st?.isSymbolicLink() ? readlink(host) : undefined;
  };
}

/** A `PathLookup` over a materialised rootfs directory. */
export function rootfsLookup(rootfs: string): PathLookup {
  const res = new RootResolver(rootfs);
  return async (rel) => {
    const host = await res.follow(rel).catch(() => undefined);
    const st = host ? await lstat(host).catch(() => undefined) : undefined;
    return st ? (st.isDirectory() ? 'dir' : 'other') : undefined;
  };
}

/**
 * Parses `--chmod`: octal of any length as BuildKit's ParseUint(v, 8, 32) (755, 0644, 0), or
 * chmod(1) symbolic notation (`+x`, `u=rwX,go=rX`; Dockerfile 1.14).
 */
export function parseChmod(v: string, where: string): Chmod {
  // BuildKit: a value that starts like a number is octal or refused as one (`64a`, `8`).
  if (/^[0-9]/.test(v)) {
    if (!/^[0-7]{1,5}$/.test(v) || parseInt(v, 8) > 0o7777) throw new HtvendError('INPUT', `${where}: --chmod=${v}: invalid chmod parameter, it should be an octal string between 0 and 07777`);
    return parseInt(v, 8);
  }
  const fn = parseSymbolicMode(v);
  if (!fn) throw new HtvendError('INPUT', `${where}: --chmod=${v}: expected an octal mode such as 755 or a symbolic one such as u=rwX,go=rX`);
  return fn;
}

/** Is `path` a tar, plain or compressed in a format `openTar` reads (judged by content, not name)? */
async function isTarArchive(path: string): Promise<boolean> {
  let tar: Readable;
  try {
    tar = await openTar(path, path);
  } catch {
    return false;
  }
  const head = await new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    let n = 0;
    tar.on('data', (c: Buffer) => {
      chunks.push(c);
      n += c.length;
      if (n >= 512) tar.destroy();
    });
    tar.on('close', () => resolve(Buffer.concat(chunks)));
    tar.on('error', () => resolve(Buffer.concat(chunks)));
  });
  return head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
}

/** Computes the entries of one COPY/ADD step. */
export async function copyEntries(req: CopyRequest): Promise<LayerEntry[]> {
  const { where } = req;
  const dests = new Map<string, LayerEntry>();
  const put = (e: LayerEntry) => dests.set(e.path, e);
  // Entries go where the image's symlinks lead (parents always, the destination itself when it
  // is a directory), so a link is written through instead of being replaced by a directory.
  const written = posix.resolve(req.workdir || '/', req.dest).replace(/^\/+/, '');
  let destRel = req.readlink ? await resolveSymlinks(written, req.readlink, false) : written;
  const existingKind = destRel === '' ? 'dir' : await req.lookup(destRel);
  const existingIsDir = existingKind === 'dir';
  const own = (st?: { uid: number; gid: number }) => req.chown ?? (req.from.isContext || !st ? { uid: 0, gid: 0 } : { uid: st.uid, gid: st.gid });

  const paths: string[] = [];
  const urls: string[] = [];
  const heredocFiles: { name: string; path: string }[] = [];
  for (const s of req.sources) {
    // Sources arrive expanded (quotes removed): `<<"EOF"` is `<<EOF` here.
    const hd = /^\d*<</.test(s) ? req.heredocs.find((h) => h.name === s.replace(/^\d*<<-?/, '')) : undefined;
    if (hd) {
      const p = join(await mkdtemp(join(req.tmpDir, 'heredoc-')), hd.name);
      await writeFile(p, hd.expand ? req.expandHeredoc(hd.content) : hd.content, { mode: 0o644 });
      heredocFiles.push({ name: hd.name, path: p });
    } else if (req.kind === 'ADD' && isGitSource(s)) {
      // Checked before URLs: https://host/repo.git is a repository for Docker, not a file to download.
      throw new HtvendError('INPUT', `${where}: ADD of a git repository is not supported (${redactUrl(s)})`, {
        hint: 'clone it in a RUN step (RUN git clone URL /dir, through the proxy) or copy a checkout from the build context',
      });
    } else if (URL_RE.test(s)) {
      if (req.kind === 'COPY') throw new HtvendError('INPUT', `${where}: COPY cannot fetch URLs (${redactUrl(s)}); use ADD`);
      urls.push(s);
    } else paths.push(s);
  }
  if (req.checksum !== undefined) {
    // BuildKit's rules (dispatchCopy): one source, a URL, and a `sha256:` digest.
    if (req.sources.length !== 1) throw new HtvendError('INPUT', `${where}: ADD --checksum can't be specified for multiple sources`);
    if (urls.length !== 1) throw new HtvendError('INPUT', `${where}: ADD --checksum requires an HTTP(S) source`);
    if (!/^sha256:[0-9a-f]{64}$/.test(req.checksum)) {
      throw new HtvendError('INPUT', `${where}: ADD --checksum=${req.checksum}: expected sha256:<64 hex digits>`, { hint: 'SHA-256 is the only algorithm ADD --checksum supports (sha256sum FILE gives the hex digits)' });
    }
  }
  const resolved = [];
  const inWhat = req.from.isContext ? 'the build context' : 'the source stage/image';
  const excluded = req.exclude?.length ? newIgnore().add(req.exclude) : undefined;
  const excludeExceptions = req.exclude?.some((x) => x.startsWith('!')) === true;
  const kept: ParentsMatch[] = [];
  if (req.parents) {
    for (const src of paths) {
      // .dockerignore sees context paths; --exclude sees paths under the pivot directory.
      const found = (await matchParents(req.from, src, req.signal)).filter((m) => m.rel === '' || (!isIgnored(req.from, posix.join(m.base.rel, m.rel)) && !excluded?.ignores(m.rel)));
      // As BuildKit since it requires such paths: a source without wildcards must exist.
      if (found.length === 0 && isLiteralParentsSource(src)) {
        throw new HtvendError('NOT_FOUND', `${where}: ${req.kind} --parents ${src}: no such file or directory in ${inWhat} (symlinks after the directory part are not followed)`);
      }
      kept.push(...found);
    }
  }
  for (const src of req.parents ? [] : paths) {
    const found = await resolveSource(req.from, src);
    // A wildcard matching nothing is fine while another source exists (BuildKit's AllowEmptyWildcard).
    if (found.length === 0 && !GLOB_CHARS.test(src)) {
      const ignored = req.from.isContext && isIgnored(req.from, src.replace(/^\.?\/+/, ''));
      throw new HtvendError('NOT_FOUND', `${where}: ${req.kind} ${src}: no such file or directory in ${inWhat}${ignored ? ' (excluded by .dockerignore)' : ''}`);
    }
    resolved.push(...found);
  }
  // ADD extracts local tar archives into the destination directory: they are not "files" for
  // the one-source rule, so `ADD *.tar /dest` with two archives extracts both.
  const archives = new Set<(typeof resolved)[number]>();
  if (req.kind === 'ADD' && req.from.isContext && req.unpack !== false) for (const r of resolved) if (r.st.isFile() && (await isTarArchive(r.abs))) archives.add(r);
  const total = resolved.length + kept.length + urls.length + heredocFiles.length;
  if (total === 0) throw new HtvendError('NOT_FOUND', `${where}: ${req.kind} ${paths.join(' ')}: no source files matched in ${inWhat}`);
  const items = total - archives.size;
  // --parents copies into the destination as a directory whatever it names (BuildKit copies the
  // pivot directory's contents there).
  const destIsDir = req.parents === true || req.dest.endsWith('/') || req.dest === '.' || items > 1 || archives.size > 0 || existingIsDir || (total === 1 && resolved[0]?.st.isDirectory() === true);
  if (items > 1 && !req.parents && !req.dest.endsWith('/') && !existingIsDir) {
    throw new HtvendError('INPUT', `${where}: when using ${req.kind} with more than one source file, the destination must be a directory and end with a /`);
  }
  if (destIsDir && req.readlink) destRel = await resolveSymlinks(destRel, req.readlink, true);
  const destAbs = `/${destRel}`;

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

  // Single files sharing an inode (hard links in the context) stay hard links in the layer.
  const byInode = new Map<string, string>();
  const putFile = (path: string, abs: string, st: Stats) => {
    const inode = st.nlink > 1 ? `${st.dev}:${st.ino}` : undefined;
    const first = inode === undefined ? undefined : byInode.get(inode);
    if (first !== undefined && first !== path) put({ type: 'hardlink', path, target: first, ...own(st), mtime: Math.floor(st.mtimeMs / 1000) });
    else {
      if (inode !== undefined) byInode.set(inode, path);
      put({ type: 'file', path, source: abs, size: st.size, mode: req.chmod === undefined ? st.mode & 0o7777 : applyChmod(req.chmod, st.mode, false), ...own(st), mtime: Math.floor(st.mtimeMs / 1000) });
    }
  };
  const walkOwn = req.chown ? { chown: req.chown } : req.from.isContext ? { chown: { uid: 0, gid: 0 } } : {};
  for (const m of kept) {
    const under = (rel: string) => (destRel === '' ? rel : rel === '' ? destRel : `${destRel}/${rel}`);
    const dirEntry = (rel: string, st: Stats): LayerEntry => ({ type: 'dir', path: under(rel), mode: req.chmod === undefined ? st.mode & 0o7777 : applyChmod(req.chmod, st.mode, true), ...own(st), mtime: Math.floor(st.mtimeMs / 1000) });
    // The parents between the pivot directory and the match, with their own metadata.
    const comps = m.rel === '' ? [] : m.rel.split('/');
    for (let i = 1; i < comps.length; i++) {
      const rel = comps.slice(0, i).join('/');
      if (!dests.has(under(rel))) put(dirEntry(rel, await lstat(join(m.base.abs, rel))));
    }
    if (m.st.isDirectory()) {
      if (m.rel !== '') put(dirEntry(m.rel, m.st));
      const prefix = under(m.rel);
      const underBase = (p: string) => posix.join(m.rel, prefix === '' ? p : p.slice(prefix.length + 1));
      const ignoredAt = (p: string) => isIgnored(req.from, posix.join(m.base.rel, underBase(p)));
      const excludedAt = (p: string) => excluded !== undefined && excluded.ignores(underBase(p));
      const entries = await walkTree(m.abs, {
        prefix,
        ...walkOwn,
        ...(req.chmod !== undefined ? { chmod: req.chmod } : {}),
        exclude: (p, st) => (!(st.isDirectory() && req.from.hasExceptions) && ignoredAt(p)) || (!(st.isDirectory() && excludeExceptions) && excludedAt(p)),
        signal: req.signal,
      });
      for (const e of dropIgnoredDirs(entries, (p) => ignoredAt(p) || excludedAt(p))) put(e);
    } else if (m.st.isFile()) putFile(under(m.rel), m.abs, m.st);
    else if (m.st.isSymbolicLink()) put({ type: 'symlink', path: under(m.rel), target: await readlink(m.abs), ...own(m.st), mtime: Math.floor(m.st.mtimeMs / 1000) });
  }
  for (const src of resolved) {
    if (src.st.isDirectory()) {
      const underSource = (p: string) => (destRel === '' ? p : p.slice(destRel.length + 1));
      // .dockerignore sees context paths; --exclude sees paths under this source.
      const ignoredAt = (p: string) => isIgnored(req.from, posix.join(src.rel, underSource(p)));
      const excludedAt = (p: string) => excluded !== undefined && excluded.ignores(underSource(p));
      const entries = await walkTree(src.abs, {
        prefix: destRel,
        ...walkOwn,
        ...(req.chmod !== undefined ? { chmod: req.chmod } : {}),
        // With `!` exceptions an ignored directory is still walked: it may hold re-included files.
        exclude: (p, st) => (!(st.isDirectory() && req.from.hasExceptions) && ignoredAt(p)) || (!(st.isDirectory() && excludeExceptions) && excludedAt(p)),
        signal: req.signal,
      });
      for (const e of dropIgnoredDirs(entries, (p) => ignoredAt(p) || excludedAt(p))) put(e);
    } else if (archives.has(src)) {
      const tmp = await mkdtemp(join(req.tmpDir, 'add-'));
      await applyTarStream(tmp, await openTar(src.abs, `${where}: ${src.rel}`, req.signal), `${where}: ${src.rel}`, { whiteouts: false, signal: req.signal });
      for (const e of await walkTree(tmp, { prefix: destRel, ...(req.chown ? { chown: req.chown } : {}), signal: req.signal })) put(e);
    } else {
      const name = posix.basename(src.rel) || posix.basename(src.abs);
      putFile(fileTarget(name), src.abs, src.st);
    }
  }
  for (const h of heredocFiles) put({ type: 'file', path: fileTarget(h.name), source: h.path, mode: req.chmod === undefined ? 0o644 : applyChmod(req.chmod, 0o644, false), ...own(), mtime: req.epoch });
  for (const u of urls) {
    const file = await fetchUrl(u, req);
    if (req.unpack === true && (await isTarArchive(file))) {
      // ADD --unpack=true <url>: a downloaded archive is extracted like a local one (BuildKit 1.17).
      const tmp = await mkdtemp(join(req.tmpDir, 'add-'));
      await applyTarStream(tmp, await openTar(file, `${where}: ${redactUrl(u)}`, req.signal), `${where}: ${redactUrl(u)}`, { whiteouts: false, signal: req.signal });
      for (const e of await walkTree(tmp, { prefix: destRel, ...(req.chown ? { chown: req.chown } : {}), signal: req.signal })) put(e);
      continue;
    }
    // BuildKit's name for a URL without a last path segment (`ADD http://host/ /d/`).
    const name = posix.basename(new URL(u).pathname) || '__unnamed__';
    put({ type: 'file', path: fileTarget(name), source: file, mode: req.chmod === undefined ? 0o600 : applyChmod(req.chmod, 0o600, false), ...own(), mtime: req.epoch });
  }
  return [...dests.values()];
}

const GLOB_CHARS = /[*?[]/;

/**
 * Drops directories excluded by `.dockerignore` that were only walked because of `!`
 * exceptions and hold nothing re-included (BuildKit creates an excluded directory only as
 * the parent of something it copies).
 */
function dropIgnoredDirs(entries: LayerEntry[], ignored: (layerPath: string) => boolean): LayerEntry[] {
  const needed = new Set<string>();
  const out: LayerEntry[] = [];
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    if (e.type === 'dir' && !needed.has(e.path) && ignored(e.path)) continue;
    out.push(e);
    for (let p = e.path; p.includes('/') && !needed.has((p = p.slice(0, p.lastIndexOf('/')))); ) needed.add(p);
  }
  return out.reverse();
}

/** Downloads `ADD <url>` into the temp dir through the environment's proxy; checks `--checksum`. */
async function fetchUrl(url: string, req: CopyRequest): Promise<string> {
  const shown = redactUrl(url);
  const dir = await mkdtemp(join(req.tmpDir, 'add-url-'));
  const path = join(dir, 'body');
  const hash = new HashingStream();
  try {
    // undici's fetch is loaded only by builds with an ADD <url> (src/upstream/undici-lite.ts).
    const { fetch } = await import('undici');
    const res = await fetch(url, { dispatcher: await req.dispatcher(), redirect: 'follow', signal: req.signal ?? null });
    if (res.status !== 200 || !res.body) throw new HtvendError('UPSTREAM', `${req.where}: ADD ${shown}: HTTP ${res.status}`);
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), hash, createWriteStream(path, { mode: 0o600 }), { signal: req.signal });
  } catch (e) {
    if (e instanceof HtvendError) throw e;
    throw new HtvendError('UPSTREAM', `${req.where}: ADD ${shown}: ${describeError(e)}`, { cause: e });
  }
  if (req.checksum) {
    if (`sha256:${hash.digest()}` !== req.checksum) throw new HtvendError('DIGEST_MISMATCH', `${req.where}: ADD ${shown}: --checksum=${req.checksum} does not match the download (sha256:${hash.digest()})`);
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
