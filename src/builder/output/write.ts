/**
 * Output formats (buildah's transports): `oci:DIR[:name]`, `oci-archive:PATH[:name]`,
 * `docker-archive:PATH[:name]` and `docker://registry/repo:tag`. Files are written to a temp
 * name beside the target and renamed into place, so nothing partial is ever left behind.
 * `oci:DIR` adds to an existing OCI layout as skopeo and buildah do (other images kept) and
 * never replaces a directory that is not one.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, link, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pack as tarPack, type Headers, type Pack } from 'tar-stream';
import { RegistryClient, parseImageReference, formatImageReference, type Env } from '../../registry/index.js';
import { parseDigest } from '../../util/digest.js';
import { HtvendError, describeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { openTar } from '../fs/apply.js';
import type { BuiltImage } from '../build/build.js';
import { collectBlobs, layoutIndex, mergeLayoutIndex, type ImageSet, type LayoutIndex, type OutputBlob } from './blobs.js';

export type OutputTarget =
  | { kind: 'oci'; path: string; name?: string }
  | { kind: 'oci-archive'; path: string; name?: string }
  | { kind: 'docker-archive'; path: string; name?: string }
  | { kind: 'docker'; ref: string };

/** Parses a `--tag` value. A bare name (no transport) is buildah's local storage: not supported here. */
export function parseOutputTarget(tag: string): OutputTarget {
  const m = /^(oci|oci-archive|docker-archive):([^:]+)(?::(.+))?$/.exec(tag);
  if (m) {
    const [, kind, path, name] = m;
    if (!path) throw new HtvendError('USAGE', `--tag ${tag}: missing path`);
    return { kind: kind as 'oci', path: resolve(path), ...(name ? { name } : {}) };
  }
  if (tag.startsWith('docker://')) {
    const ref = tag.slice('docker://'.length);
    try {
      parseImageReference(ref);
    } catch (e) {
      // A bad tag is a usage error like every other bad --tag (exit 2), not bad input.
      throw new HtvendError('USAGE', `--tag ${tag}: ${describeError(e)}`, { hint: 'e.g. docker://registry.example/team/app:1.0' });
    }
    return { kind: 'docker', ref };
  }
  throw new HtvendError('USAGE', `--tag ${tag}: unsupported destination`, {
    hint: 'use oci:DIR[:name], oci-archive:PATH[:name], docker-archive:PATH[:name] or docker://registry/repo:tag (there is no local image store)',
  });
}

/**
 * Checks that `target` can be written, before the build: an `oci:` path must be missing, an
 * empty directory or an OCI layout; an archive's directory must exist and the path must not
 * be a directory. Nothing is created.
 */
export async function checkOutputTarget(target: OutputTarget): Promise<void> {
  if (target.kind === 'docker') return;
  if (target.kind === 'oci') {
    await existingLayout(target.path);
    return;
  }
  const parent = await stat(dirname(target.path)).catch(() => undefined);
  if (!parent?.isDirectory()) throw new HtvendError('USAGE', `${target.kind}:${target.path}: directory ${dirname(target.path)} does not exist`);
  const here = await stat(target.path).catch(() => undefined);
  if (here?.isDirectory()) throw new HtvendError('USAGE', `${target.kind}:${target.path}: is a directory`, { hint: `an archive is one file; use oci:${target.path} for a layout directory` });
}

export interface WriteOptions {
  epoch: number;
  env: Env;
  tlsVerify?: boolean;
  certDir?: string;
  log: Logger;
  signal: AbortSignal;
}

function tmpBeside(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${randomBytes(4).toString('hex')}`);
}

async function placeBlob(b: OutputBlob, dest: string): Promise<void> {
  if (b.bytes) return writeFile(dest, b.bytes);
  // Hard link when on the same filesystem (instant for a 1 GiB layer), else copy.
  await link(b.path!, dest).catch(() => copyFile(b.path!, dest));
}

const OCI_LAYOUT = '{"imageLayoutVersion":"1.0.0"}';

async function writeLayoutDir(dir: string, set: ImageSet, name: string | undefined): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const b of set.blobs) await placeBlob(b, join(dir, 'blobs', 'sha256', b.digest));
  await writeFile(join(dir, 'oci-layout'), OCI_LAYOUT);
  await writeFile(join(dir, 'index.json'), layoutIndex(set, name));
}

/**
 * The index of the OCI layout at `dir`; undefined when there is nothing there (or an empty
 * directory). Anything else at `dir` is refused: it is not ours to replace.
 */
async function existingLayout(dir: string): Promise<LayoutIndex | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') throw new HtvendError('USAGE', `oci:${dir}: exists and is not a directory`, { hint: 'use oci-archive: for a single file' });
    throw e;
  }
  if (names.length === 0) return undefined;
  const notLayout = (why: string) =>
    new HtvendError('USAGE', `oci:${dir}: the directory is not an OCI image layout (${why}); refusing to write into it`, { hint: 'choose a new or empty directory, or an existing OCI layout' });
  if (!names.includes('oci-layout') || !names.includes('index.json')) throw notLayout('no oci-layout and index.json');
  let index: LayoutIndex;
  try {
    index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as LayoutIndex;
  } catch (e) {
    throw notLayout(`index.json: ${describeError(e)}`);
  }
  if (index?.schemaVersion !== 2 || !Array.isArray(index.manifests)) throw notLayout('index.json is not an OCI image index');
  return index;
}

/**
 * Adds the built image(s) to an existing layout: blobs first (each renamed into place, those
 * already there kept), index.json last, replaced atomically. Cut short, the layout holds
 * some unreferenced blobs and its previous index: still valid.
 */
async function addToLayout(dir: string, index: LayoutIndex, set: ImageSet, name: string | undefined): Promise<void> {
  const blobDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });
  for (const b of set.blobs) {
    const dest = join(blobDir, b.digest);
    if ((await stat(dest).catch(() => undefined))?.size === b.size) continue;
    const tmp = tmpBeside(dest);
    try {
      await placeBlob(b, tmp);
      await rename(tmp, dest);
    } finally {
      await rm(tmp, { force: true });
    }
  }
  const tmp = tmpBeside(join(dir, 'index.json'));
  try {
    await writeFile(tmp, mergeLayoutIndex(index, set, name));
    await rename(tmp, join(dir, 'index.json'));
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Adds a file or buffer entry to a tar pack, deterministically. */
async function tarEntry(pack: Pack, name: string, epoch: number, src: { bytes?: Buffer; path?: string; size: number }, signal: AbortSignal): Promise<void> {
  const header: Headers = { name, size: src.size, mode: 0o644, mtime: new Date(epoch * 1000), uid: 0, gid: 0, type: 'file' };
  await new Promise<void>((res, rej) => {
    const w = pack.entry(header, (e) => (e ? rej(e) : res()));
    if (src.bytes) w.end(src.bytes);
    else pipeline(createReadStream(src.path!, { highWaterMark: 1 << 20 }), w, { signal }).catch(rej);
  });
}

async function writeTar(path: string, signal: AbortSignal, fill: (pack: Pack) => Promise<void>): Promise<void> {
  const pack = tarPack();
  const sink = pipeline(pack, createWriteStream(path, { mode: 0o644 }), { signal });
  try {
    await fill(pack);
    pack.finalize();
  } catch (e) {
    pack.destroy(e as Error);
    await sink.catch(() => {});
    throw e;
  }
  await sink;
}

async function tarDir(pack: Pack, name: string, epoch: number): Promise<void> {
  await new Promise<void>((res, rej) => pack.entry({ name: `${name}/`, type: 'directory', mode: 0o755, mtime: new Date(epoch * 1000), uid: 0, gid: 0 }, (e) => (e ? rej(e) : res())));
}

async function writeOciArchive(path: string, set: ImageSet, name: string | undefined, o: WriteOptions): Promise<void> {
  await writeTar(path, o.signal, async (pack) => {
    const idx = layoutIndex(set, name);
    await tarDir(pack, 'blobs', o.epoch);
    await tarDir(pack, 'blobs/sha256', o.epoch);
    for (const b of set.blobs) await tarEntry(pack, `blobs/sha256/${b.digest}`, o.epoch, b, o.signal);
    await tarEntry(pack, 'index.json', o.epoch, { bytes: idx, size: idx.length }, o.signal);
    const layout = Buffer.from('{"imageLayoutVersion":"1.0.0"}');
    await tarEntry(pack, 'oci-layout', o.epoch, { bytes: layout, size: layout.length }, o.signal);
  });
}

/** `docker save` layout: manifest.json + config + UNCOMPRESSED layer tars named by diff_id. */
async function writeDockerArchive(path: string, set: ImageSet, name: string | undefined, o: WriteOptions): Promise<void> {
  if (set.manifests.length !== 1) throw new HtvendError('USAGE', `docker-archive holds one platform; this build made ${set.manifests.length} (use --platform with one value, or oci/oci-archive)`);
  const { built, config } = set.manifests[0]!;
  const tmpLayers = `${path}.layers`;
  await mkdir(tmpLayers, { recursive: true, mode: 0o700 });
  try {
    await writeTar(path, o.signal, async (pack) => {
      const layerNames: string[] = [];
      const seen = new Set<string>();
      for (const l of built.image.layers) {
        const lname = `${l.diffId}.tar`;
        layerNames.push(lname);
        if (seen.has(lname)) continue;
        seen.add(lname);
        // Decompress to a temp file first: a tar entry needs its size up front.
        const raw = join(tmpLayers, l.diffId);
        await pipeline(await openTar(l.path, `layer sha256:${l.digest}`, o.signal), createWriteStream(raw), { signal: o.signal });
        const { size } = await stat(raw);
        await tarEntry(pack, lname, o.epoch, { path: raw, size }, o.signal);
        await rm(raw);
      }
      await tarEntry(pack, `${config.digest}.json`, o.epoch, { bytes: config.bytes, size: config.bytes.length }, o.signal);
      // docker load wants repo:tag; a name without a tag means :latest.
      const repoTag = name ? (name.lastIndexOf(':') > name.lastIndexOf('/') ? name : `${name}:latest`) : undefined;
      const manifest = Buffer.from(JSON.stringify([{ Config: `${config.digest}.json`, RepoTags: repoTag ? [repoTag] : null, Layers: layerNames }]));
      await tarEntry(pack, 'manifest.json', o.epoch, { bytes: manifest, size: manifest.length }, o.signal);
    });
  } finally {
    await rm(tmpLayers, { recursive: true, force: true });
  }
}

async function push(ref: string, set: ImageSet, o: WriteOptions): Promise<void> {
  const r = parseImageReference(ref);
  const client = await RegistryClient.open(r.registry, r.repository, {
    env: o.env,
    log: o.log,
    ...(o.tlsVerify === false ? { tlsVerify: false } : {}),
    ...(o.certDir ? { certDir: o.certDir } : {}),
    signal: o.signal,
  });
  try {
    for (const b of set.blobs) {
      if (set.manifests.some((m) => m.manifest.digest === b.digest) || b.digest === set.index.digest) continue;
      const expected = parseDigest(b.digest);
      await client.putBlob(b.bytes ?? createReadStream(b.path!), { expected, size: b.size, signal: o.signal });
    }
    const tag = r.digest ? `sha256:${r.digest}` : (r.tag ?? 'latest');
    if (set.manifests.length === 1) {
      const m = set.manifests[0]!.manifest;
      await client.putManifest(tag, m.bytes, m.mediaType, { signal: o.signal });
    } else {
      for (const m of set.manifests) await client.putManifest(`sha256:${m.manifest.digest}`, m.manifest.bytes, m.manifest.mediaType, { signal: o.signal });
      await client.putManifest(tag, set.index.bytes, set.index.mediaType, { signal: o.signal });
    }
    o.log.info(`pushed ${formatImageReference(r)}`);
  } finally {
    await client.close();
  }
}

/** Writes the built images to `target`; returns the digest users refer to (manifest or index). */
export async function writeOutput(target: OutputTarget, images: BuiltImage[], o: WriteOptions): Promise<string> {
  const set = collectBlobs(images);
  const top = set.manifests.length === 1 ? set.manifests[0]!.manifest.digest : set.index.digest;
  if (target.kind === 'docker') {
    await push(target.ref, set, o);
    return `sha256:${top}`;
  }
  const tmp = tmpBeside(target.path);
  try {
    if (target.kind === 'oci') {
      const index = await existingLayout(target.path);
      if (index) {
        await addToLayout(target.path, index, set, target.name);
        return `sha256:${top}`;
      }
      await writeLayoutDir(tmp, set, target.name);
      // rename() replaces an empty directory, and nothing else (ENOTEMPTY if one appeared).
    } else if (target.kind === 'oci-archive') await writeOciArchive(tmp, set, target.name, o);
    else await writeDockerArchive(tmp, set, target.name, o);
    // An archive replaces a file at PATH; a directory there makes rename() fail (EISDIR), never emptied.
    await rename(tmp, target.path);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    if (e instanceof HtvendError) throw e;
    throw new HtvendError('IO', `writing ${target.kind}:${target.path}: ${describeError(e)}`, { cause: e });
  }
  return `sha256:${top}`;
}
