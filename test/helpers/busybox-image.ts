/**
 * A busybox base image for builder tests, made without internet: /bin/busybox from Debian's
 * busybox-static plus its applet symlinks (`busybox --list-full`), a small /etc/passwd and
 * /etc/group, packed by our own layer writer into an OCI layout, then pushed with skopeo (a
 * tool nobody here wrote) to a real docker-registry on loopback.
 *
 * arm64: busybox-static:arm64 from the Debian mirror, downloaded once into
 * /var/cache/htvend-test (scripts/setup.sh does it too). Unavailable → `arm64: false` and the
 * caller skips with a message.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestContext } from 'node:test';
import { writeLayer } from '../../src/builder/fs/layer-writer.js';
import type { LayerEntry } from '../../src/builder/fs/types.js';
import { appendLayer, imageBlobs, indexBlob, scratchImage, withConfig, type Image } from '../../src/builder/image/image.js';
import { startRegistry, type RegistryServer, type RegistryServerOptions } from './registry-server.js';
import { tempDir } from './tmp.js';

const exec = promisify(execFile);
export const ARM64_CACHE = '/var/cache/htvend-test/busybox-arm64';

/** Path of an arm64 busybox binary, downloading busybox-static:arm64 once if allowed. */
export async function arm64Busybox(): Promise<string | undefined> {
  const bin = join(ARM64_CACHE, 'bin', 'busybox');
  if (existsSync(bin)) return bin;
  if (process.env['HTVEND_TEST_NO_NETWORK'] === '1') return undefined;
  try {
    await mkdir(ARM64_CACHE, { recursive: true });
    const dl = await mkdtemp(join(ARM64_CACHE, 'dl-'));
    const archs = (await exec('dpkg', ['--print-foreign-architectures'])).stdout;
    if (!archs.split('\n').includes('arm64')) {
      await exec('dpkg', ['--add-architecture', 'arm64']);
      await exec('apt-get', ['update', '-qq'], { timeout: 300_000 });
    }
    await exec('apt-get', ['download', '-qq', 'busybox-static:arm64'], { cwd: dl, timeout: 300_000 });
    const deb = (await readdir(dl)).find((f) => f.endsWith('.deb'));
    if (!deb) return undefined;
    await exec('dpkg-deb', ['-x', join(dl, deb), ARM64_CACHE]);
    return existsSync(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}

async function busyboxEntries(busybox: string, etcDir: string): Promise<LayerEntry[]> {
  const list = (await exec('/bin/busybox', ['--list-full'])).stdout.split('\n').filter(Boolean);
  const dirs = new Set(['bin', 'etc', 'root', 'tmp', 'usr', 'usr/bin', 'usr/sbin', 'sbin', 'var', 'home']);
  const entries: LayerEntry[] = [];
  for (const d of dirs) entries.push({ type: 'dir', path: d, mode: d === 'tmp' ? 0o1777 : d === 'root' ? 0o700 : 0o755 });
  entries.push({ type: 'file', path: 'bin/busybox', source: busybox, mode: 0o755 });
  for (const a of list) {
    if (a === 'bin/busybox') continue;
    const dir = a.split('/').slice(0, -1).join('/');
    if (!dirs.has(dir)) continue;
    entries.push({ type: 'symlink', path: a, target: '/bin/busybox' });
  }
  entries.push({ type: 'file', path: 'etc/passwd', source: join(etcDir, 'passwd'), mode: 0o644 });
  entries.push({ type: 'file', path: 'etc/group', source: join(etcDir, 'group'), mode: 0o644 });
  return entries;
}

/** Writes an OCI layout (`<dir>`, ref name `latest`) with busybox for amd64 and, if given, arm64 (then as an index). */
export async function writeBusyboxLayout(dir: string, work: string, arm64?: string): Promise<void> {
  const etc = join(work, 'etc');
  await mkdir(etc, { recursive: true });
  await writeFile(join(etc, 'passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  await writeFile(join(etc, 'group'), 'root:x:0:\nappgroup:x:1001:app\nnogroup:x:65534:\n');
  const images: { image: Image; arch: string }[] = [];
  for (const [arch, bin] of [['amd64', '/bin/busybox'], ...(arm64 ? [['arm64', arm64]] : [])] as [string, string][]) {
    const layer = await writeLayer(await busyboxEntries(bin, etc), { epoch: 0, dir: work });
    let img = appendLayer(scratchImage({ os: 'linux', architecture: arch }), layer, { created: '1970-01-01T00:00:00Z', created_by: 'busybox-static' });
    img = withConfig(img, (c) => ({ ...c, Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] }));
    images.push({ image: img, arch });
  }
  const blobsDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobsDir, { recursive: true });
  const manifests = [];
  for (const { image, arch } of images) {
    const { config, manifest } = imageBlobs(image);
    await writeFile(join(blobsDir, config.digest), config.bytes);
    await writeFile(join(blobsDir, manifest.digest), manifest.bytes);
    for (const l of image.layers) await exec('cp', [l.path, join(blobsDir, l.digest)]);
    manifests.push({ manifest, platform: { os: 'linux', architecture: arch } });
  }
  let top = manifests[0]!.manifest;
  if (manifests.length > 1) {
    top = indexBlob(manifests);
    await writeFile(join(blobsDir, top.digest), top.bytes);
  }
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: top.mediaType, digest: `sha256:${top.digest}`, size: top.bytes.length, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }] }),
  );
}

export interface BusyboxRegistry {
  registry: RegistryServer;
  /** `127.0.0.1:PORT/busybox:latest` (an index when `arm64`, else a single manifest). */
  ref: string;
  arm64: boolean;
}

/** Starts a registry holding busybox:latest (multi-arch when arm64 busybox is available and wanted). */
export async function startBusyboxRegistry(t: Pick<TestContext, 'after'>, opts: RegistryServerOptions & { multiArch?: boolean } = {}): Promise<BusyboxRegistry> {
  const work = await tempDir(t, 'busybox-');
  const arm = opts.multiArch ? await arm64Busybox() : undefined;
  await writeBusyboxLayout(join(work, 'layout'), work, arm);
  const registry = await startRegistry(t, opts);
  const creds = opts.auth && opts.auth !== 'none' ? ['--dest-creds', `${Object.keys(registry.users)[0]}:${Object.values(registry.users)[0]}`] : [];
  const tls = registry.caFile ? ['--dest-cert-dir', await certDirFor(work, registry.caFile)] : ['--dest-tls-verify=false'];
  await exec('skopeo', ['copy', '--all', '-q', ...tls, ...creds, `oci:${join(work, 'layout')}:latest`, `docker://${registry.host}/busybox:latest`]);
  return { registry, ref: `${registry.host}/busybox:latest`, arm64: !!arm };
}

async function certDirFor(work: string, caFile: string): Promise<string> {
  const d = join(work, 'certs');
  await mkdir(d, { recursive: true });
  await exec('cp', [caFile, join(d, 'ca.crt')]);
  return d;
}
