/**
 * Packages installed in an image's final rootfs, read from the package managers' own records
 * (the image SBOM's second half, next to the fetched assets): the dpkg status file (and
 * distroless' status.d), the apk database, npm `node_modules/<name>/package.json`, Python
 * `*.dist-info/METADATA`. Layers are streamed in order; only those small files are kept, and
 * whiteouts in later layers remove what earlier ones added.
 */
import { pipeline } from 'node:stream/promises';
import { extract as tarExtract } from 'tar-stream';
import { PackageURL } from 'packageurl-js';
import type { ImageLayer } from '../../builder/image/image.js';
import { openTar } from '../../builder/fs/apply.js';

export interface RootfsPackage {
  purl: PackageURL;
  ecosystem: 'deb' | 'apk' | 'npm' | 'pypi';
  name: string;
  version: string;
  /** Where in the image the record was found (`/var/lib/dpkg/status`). */
  foundIn: string;
}

/** Files we read (path without leading slash); everything else is skipped unread. */
function interesting(path: string): boolean {
  return (
    path === 'var/lib/dpkg/status' ||
    (path.startsWith('var/lib/dpkg/status.d/') && !path.endsWith('.md5sums')) ||
    path === 'lib/apk/db/installed' ||
    path === 'etc/os-release' ||
    path === 'usr/lib/os-release' ||
    /(^|\/)node_modules\/(@[^/]+\/)?[^/@][^/]*\/package\.json$/.test(path) ||
    /(^|\/)(site|dist)-packages\/[^/]+\.dist-info\/METADATA$/.test(path)
  );
}

/** A record bigger than this is not a package record we understand (a 4 MiB dpkg status holds ~3000 packages). */
const MAX_RECORD = 16 << 20;

/** Reads the package records of the rootfs the layers make (lowest layer first). */
export async function readRootfsRecords(layers: readonly ImageLayer[], signal?: AbortSignal): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const remove = (path: string) => {
    for (const k of [...files.keys()]) if (k === path || k.startsWith(`${path}/`)) files.delete(k);
  };
  for (const layer of layers) {
    const ex = tarExtract();
    ex.on('entry', (header, stream, next) => {
      const path = header.name.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
      const slash = path.lastIndexOf('/');
      const base = path.slice(slash + 1);
      const dir = slash >= 0 ? path.slice(0, slash) : '';
      if (base === '.wh..wh..opq') {
        for (const k of [...files.keys()]) if (dir === '' || k.startsWith(`${dir}/`)) files.delete(k);
      } else if (base.startsWith('.wh.')) {
        remove(dir ? `${dir}/${base.slice(4)}` : base.slice(4));
      }
      const keep = header.type === 'file' && interesting(path) && (header.size ?? 0) <= MAX_RECORD;
      // A link or an oversized file at a record's path hides the record, as in the merged rootfs.
      if (!keep && header.type !== 'directory') files.delete(path);
      if (keep) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          files.set(path, Buffer.concat(chunks));
          next();
        });
        return;
      }
      stream.on('end', () => next());
      stream.resume();
    });
    await pipeline(await openTar(layer.path, `layer sha256:${layer.digest}`, signal), ex, { signal });
  }
  return files;
}

function osRelease(files: Map<string, Buffer>): { id?: string; versionId?: string } {
  const text = (files.get('etc/os-release') ?? files.get('usr/lib/os-release'))?.toString('utf8') ?? '';
  const get = (k: string) => new RegExp(`^${k}=["']?([^"'\\n]*)`, 'm').exec(text)?.[1] || undefined;
  return { id: get('ID'), versionId: get('VERSION_ID') };
}

/** RFC 822-style stanzas (dpkg status, METADATA headers): field → value of each stanza. */
function stanzas(text: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const m = new Map<string, string>();
    for (const line of block.split('\n')) {
      const i = line.indexOf(':');
      if (i > 0 && !/^\s/.test(line)) m.set(line.slice(0, i).toLowerCase(), line.slice(i + 1).trim());
    }
    if (m.size) out.push(m);
  }
  return out;
}

function debPackages(files: Map<string, Buffer>, out: RootfsPackage[]): void {
  const os = osRelease(files);
  const namespace = os.id === 'ubuntu' ? 'ubuntu' : 'debian';
  const distro = os.id && os.versionId ? `${os.id}-${os.versionId}` : undefined;
  for (const [path, bytes] of files) {
    if (path !== 'var/lib/dpkg/status' && !path.startsWith('var/lib/dpkg/status.d/')) continue;
    for (const s of stanzas(bytes.toString('utf8'))) {
      const name = s.get('package');
      const version = s.get('version');
      const status = s.get('status');
      if (!name || !version || (status !== undefined && !/\binstalled$/.test(status))) continue;
      const q: Record<string, string> = {};
      if (s.get('architecture')) q['arch'] = s.get('architecture')!;
      if (distro) q['distro'] = distro;
      out.push({ purl: new PackageURL('deb', namespace, name, version, q, undefined), ecosystem: 'deb', name, version, foundIn: `/${path}` });
    }
  }
}

function apkPackages(files: Map<string, Buffer>, out: RootfsPackage[]): void {
  const db = files.get('lib/apk/db/installed');
  if (!db) return;
  for (const block of db.toString('utf8').split(/\n\s*\n/)) {
    const field = (k: string) => new RegExp(`^${k}:(.*)$`, 'm').exec(block)?.[1]?.trim();
    const name = field('P');
    const version = field('V');
    if (!name || !version) continue;
    const arch = field('A');
    out.push({ purl: new PackageURL('apk', 'alpine', name, version, arch ? { arch } : undefined, undefined), ecosystem: 'apk', name, version, foundIn: '/lib/apk/db/installed' });
  }
}

function npmPackages(files: Map<string, Buffer>, out: RootfsPackage[]): void {
  for (const [path, bytes] of files) {
    if (!path.endsWith('/package.json') || !path.includes('node_modules/')) continue;
    let j: { name?: unknown; version?: unknown };
    try {
      j = JSON.parse(bytes.toString('utf8')) as typeof j;
    } catch {
      continue; // not every package.json under node_modules is valid JSON (test fixtures)
    }
    if (typeof j.name !== 'string' || typeof j.version !== 'string' || !j.name || !j.version) continue;
    const [scope, name] = j.name.startsWith('@') ? (j.name.split('/', 2) as [string, string]) : [undefined, j.name];
    if (!name) continue;
    out.push({ purl: new PackageURL('npm', scope, name, j.version, undefined, undefined), ecosystem: 'npm', name: j.name, version: j.version, foundIn: `/${path}` });
  }
}

function pythonPackages(files: Map<string, Buffer>, out: RootfsPackage[]): void {
  for (const [path, bytes] of files) {
    if (!path.endsWith('.dist-info/METADATA')) continue;
    const head = stanzas(bytes.subarray(0, 64 << 10).toString('utf8'))[0];
    const name = head?.get('name');
    const version = head?.get('version');
    if (!name || !version) continue;
    out.push({ purl: new PackageURL('pypi', undefined, name, version, undefined, undefined), ecosystem: 'pypi', name, version, foundIn: `/${path}` });
  }
}

/** The installed packages, one per purl (the first place found), sorted by purl. */
export async function rootfsPackages(layers: readonly ImageLayer[], signal?: AbortSignal): Promise<RootfsPackage[]> {
  const files = await readRootfsRecords(layers, signal);
  const all: RootfsPackage[] = [];
  debPackages(files, all);
  apkPackages(files, all);
  npmPackages(files, all);
  pythonPackages(files, all);
  const byPurl = new Map<string, RootfsPackage>();
  for (const p of all.sort((a, b) => (a.foundIn < b.foundIn ? -1 : a.foundIn > b.foundIn ? 1 : 0))) {
    const k = p.purl.toString();
    if (!byPurl.has(k)) byPurl.set(k, p);
  }
  return [...byPurl.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, p]) => p);
}
