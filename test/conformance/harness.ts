/**
 * Builds a conformance case with our builder and with Debian's buildah 1.28, reads both images
 * the same way and compares them. Deliberate differences (docs/builder.md, "Deliberate
 * differences from BuildKit and buildah") are the only things left out; see DELIBERATE below.
 */
import { chmod, link, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import assert from 'node:assert/strict';
import { run, runCli } from '../helpers/cli.js';
import type { BuiltImage, ComparedConfig, ConformanceCase } from './case.js';
import { dockerArchiveLayers, formatEntry, listRootfs, ociLayers, type Listing } from './rootfs-listing.js';

export interface SuiteEnv {
  /** `127.0.0.1:PORT/busybox:latest` */
  base: string;
  /** Per-case work dirs go under here. */
  work: string;
  /** buildah's storage for the whole run (vfs driver: no mounts to clean up), base pre-pulled. */
  buildahRoot: string;
  buildahRunroot: string;
  policy: string;
  /** Environment for both builders: no proxy variables, SSL_CERT_FILE under /tmp like htvend's. */
  env: NodeJS.ProcessEnv;
}

export function buildahArgs(s: SuiteEnv): string[] {
  return ['buildah', '--root', s.buildahRoot, '--runroot', s.buildahRunroot, '--storage-driver', 'vfs'];
}

/** Writes the case's Dockerfile and context (hard links after the files they point at). */
export async function materialise(c: ConformanceCase, dir: string, base: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Dockerfile'), c.dockerfile.replaceAll('{{base}}', base));
  const entries = Object.entries(c.files ?? {});
  const later: [string, string][] = [];
  for (const [p, f] of entries) {
    const abs = join(dir, p);
    await mkdir(dirname(abs), { recursive: true });
    if (typeof f === 'string') await writeFile(abs, f);
    else if ('archive' in f) await makeArchive(abs, f.archive, f.gzip ?? false);
    else if ('content' in f) {
      await writeFile(abs, f.content);
      if (f.mode !== undefined) await chmod(abs, f.mode);
    } else if ('symlink' in f) await symlink(f.symlink, abs);
    else if ('hardlink' in f) later.push([abs, join(dir, f.hardlink)]);
    else {
      await mkdir(abs, { recursive: true });
      if (f.mode !== undefined) await chmod(abs, f.mode);
    }
  }
  for (const [abs, target] of later) await link(target, abs);
}

async function makeArchive(abs: string, files: Record<string, string>, gzip: boolean): Promise<void> {
  const src = `${abs}.src`;
  for (const [p, content] of Object.entries(files)) {
    await mkdir(dirname(join(src, p)), { recursive: true });
    await writeFile(join(src, p), content);
  }
  const r = await run(['tar', gzip ? '-czf' : '-cf', abs, '--numeric-owner', '--owner=0', '--group=0', '--sort=name', '--mtime=@0', '-C', src, '.']);
  assert.equal(r.code, 0, r.stderr);
  await rm(src, { recursive: true });
}

function buildFlags(c: ConformanceCase): string[] {
  const flags = Object.entries(c.buildArgs ?? {}).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
  if (c.target) flags.push('--target', c.target);
  return flags;
}

export interface BuildResult {
  ok: boolean;
  log: string;
}

export async function buildOurs(c: ConformanceCase, ctx: string, layout: string, s: SuiteEnv): Promise<BuildResult> {
  const r = await runCli('build-img-with-proxy', ['--platform', 'linux/amd64', '--tls-verify=false', ...buildFlags(c), '-t', `oci:${layout}:latest`, ctx], { env: s.env, timeoutMs: 120_000 });
  return { ok: r.code === 0, log: r.stderr };
}

export async function buildBuildah(c: ConformanceCase, ctx: string, archive: string, s: SuiteEnv): Promise<BuildResult> {
  const r = await run(
    [...buildahArgs(s), 'build', '--signature-policy', s.policy, '--isolation', 'chroot', '--layers=false', '--pull=false', '--tls-verify=false', '--format', 'docker', ...buildFlags(c), '-t', `docker-archive:${archive}`, ctx],
    { env: s.env, timeoutMs: 120_000 },
  );
  return { ok: r.code === 0, log: r.stdout + r.stderr };
}

const COMPARED = ['Env', 'Entrypoint', 'Cmd', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal', 'Healthcheck', 'OnBuild', 'Shell'] as const;

const isEmpty = (v: unknown) => v === undefined || v === null || v === '' || (Array.isArray(v) ? v.length === 0 : typeof v === 'object' && Object.keys(v as object).length === 0);

/** `skopeo inspect --raw --config` (plain --config drops Docker-only fields such as Healthcheck). */
async function readConfig(ref: string): Promise<ComparedConfig> {
  const r = await run(['skopeo', 'inspect', '--raw', '--config', ref]);
  assert.equal(r.code, 0, `skopeo inspect ${ref}: ${r.stderr}`);
  const cfg = (JSON.parse(r.stdout).config ?? {}) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of COMPARED) if (!isEmpty(cfg[k])) out[k] = cfg[k];
  return out as ComparedConfig;
}

function imageView(listing: Listing, config: ComparedConfig): BuiltImage {
  return {
    listing,
    config,
    text(path) {
      const e = listing.get(path.replace(/^\/+/, ''));
      assert.ok(e?.content, `${path}: no such regular file in the image`);
      return e.content.toString('utf8');
    },
  };
}

export async function readOurs(layout: string): Promise<BuiltImage> {
  return imageView(await listRootfs(await ociLayers(layout)), await readConfig(`oci:${layout}:latest`));
}

export async function readBuildah(archive: string, unpackDir: string): Promise<BuiltImage> {
  await mkdir(unpackDir, { recursive: true });
  const r = await run(['tar', '-xf', archive, '-C', unpackDir]);
  assert.equal(r.code, 0, r.stderr);
  return imageView(await listRootfs(await dockerArchiveLayers(unpackDir)), await readConfig(`docker-archive:${archive}`));
}

/**
 * The deliberate differences, and only those (docs/builder.md):
 * - buildah's RUN leaves the mountpoints it made in the layer when the base lacked them:
 *   empty directories /dev /proc /sys /run and empty files /etc/hostname /etc/hosts
 *   /etc/resolv.conf. Dropped from buildah's side only when empty and absent from ours.
 * - buildah labels every image `io.buildah.version`.
 */
const BUILDAH_MOUNTPOINT_DIRS = ['dev', 'proc', 'sys', 'run'];
const BUILDAH_MOUNTPOINT_FILES = ['etc/hostname', 'etc/hosts', 'etc/resolv.conf'];

export function withoutDeliberateDifferences(buildah: BuiltImage, ours: BuiltImage): BuiltImage {
  const listing: Listing = new Map(buildah.listing);
  for (const d of BUILDAH_MOUNTPOINT_DIRS) {
    const empty = ![...listing.keys()].some((k) => k.startsWith(d + '/'));
    if (listing.get(d)?.type === 'dir' && empty && !ours.listing.has(d)) listing.delete(d);
  }
  for (const f of BUILDAH_MOUNTPOINT_FILES) {
    const e = listing.get(f);
    if (e?.type === 'file' && e.size === 0 && !ours.listing.has(f)) listing.delete(f);
  }
  const config = { ...buildah.config };
  if (config.Labels) {
    const { ['io.buildah.version']: _v, ...rest } = config.Labels;
    config.Labels = rest;
    if (isEmpty(rest)) delete config.Labels;
  }
  return imageView(listing, config);
}

/** Lines only in ours (`+`) and only in buildah's (`-`); empty when the trees match. */
export function listingDiff(ours: Listing, theirs: Listing): string[] {
  const a = new Set([...ours.values()].map(formatEntry));
  const b = new Set([...theirs.values()].map(formatEntry));
  const out: string[] = [];
  for (const l of b) if (!a.has(l)) out.push(`- ${l}`);
  for (const l of a) if (!b.has(l)) out.push(`+ ${l}`);
  return out.sort((x, y) => x.slice(2).localeCompare(y.slice(2)));
}
