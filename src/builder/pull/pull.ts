/**
 * Base images over the OCI distribution API (src/registry/ client), fresh for every build:
 * blobs are downloaded into the build's private temp dir and never reused across builds, so
 * every fetch goes through the proxy in the environment (and so is seen by htvend).
 * Within one build the same image (reference and platform) is resolved once, however many
 * stages start from it, and the same blob is downloaded once.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { RegistryClient, parseImageReference, manifestReference, formatImageReference, selectPlatform, formatPlatform, INDEX_TYPES, type Env, type ImageReference, type Platform, type ImageManifest, type ImageIndex } from '../../registry/index.js';
import { HtvendError, describeError } from '../../util/errors.js';
import { parseDigest, type Digest } from '../../util/digest.js';
import type { Logger } from '../../util/log.js';
import type { Image, ImageConfig, ImageLayer } from '../image/image.js';

export interface PullOptions {
  env: Env;
  tlsVerify?: boolean;
  certDir?: string;
  /** Where blobs land (`<dir>/<hex>`); part of the build's private temp dir. */
  blobDir: string;
  log: Logger;
  signal?: AbortSignal;
}

/** Pulls images for one build: remembers downloaded blobs so a layer shared by two bases is fetched once. */
export class Puller {
  private readonly inflight = new Map<string, Promise<string>>();
  /** Images by `reference platform`: stages sharing a base share one pull. */
  private readonly images = new Map<string, Promise<Image>>();
  private readonly clients = new Map<string, Promise<RegistryClient>>();
  constructor(private readonly opts: PullOptions) {}

  private client(registry: string, repository: string): Promise<RegistryClient> {
    const key = `${registry}/${repository}`;
    let c = this.clients.get(key);
    if (!c) {
      c = RegistryClient.open(registry, repository, {
        env: this.opts.env,
        log: this.opts.log,
        ...(this.opts.tlsVerify === false ? { tlsVerify: false } : {}),
        ...(this.opts.certDir ? { certDir: this.opts.certDir } : {}),
        signal: this.opts.signal,
      });
      this.clients.set(key, c);
    }
    return c;
  }

  /** Pulls `ref` for `platform` (an index is resolved to that platform's manifest). */
  pull(ref: string, platform: Platform, where: string): Promise<Image> {
    const r = parseImageReference(ref);
    const key = `${formatImageReference(r)} ${formatPlatform(platform)}`;
    let image = this.images.get(key);
    if (!image) {
      image = this.pullOnce(r, platform, where);
      this.images.set(key, image);
      image.catch(() => this.images.delete(key));
    }
    return image;
  }

  private async pullOnce(r: ImageReference, platform: Platform, where: string): Promise<Image> {
    const name = formatImageReference(r);
    const signal = this.opts.signal;
    const client = await this.client(r.registry, r.repository);
    this.opts.log.info(`pulling ${name} (${formatPlatform(platform)})`);
    const wrap = (e: unknown): never => {
      if (e instanceof HtvendError) throw new HtvendError(e.code, `${where}: pulling ${name}: ${e.message}`, { cause: e, hint: e.hint });
      throw new HtvendError('UPSTREAM', `${where}: pulling ${name}: ${describeError(e)}`, { cause: e });
    };
    try {
      let m = await client.getManifest(manifestReference(r), { signal });
      if (INDEX_TYPES.includes(m.mediaType)) {
        const index = JSON.parse(m.body.toString('utf8')) as ImageIndex;
        const d = selectPlatform(index, platform, name);
        m = await client.getManifest(d.digest, { signal });
      }
      const manifest = JSON.parse(m.body.toString('utf8')) as ImageManifest;
      if (!manifest.config || !Array.isArray(manifest.layers)) throw new HtvendError('UPSTREAM', `manifest ${m.digest} (${m.mediaType}) is not an image manifest`);
      const configPath = await this.blob(client, parseDigest(manifest.config.digest, 'config digest'), manifest.config.size);
      const config = JSON.parse(await readFile(configPath, 'utf8')) as ImageConfig;
      const diffIds = config.rootfs?.diff_ids ?? [];
      if (diffIds.length !== manifest.layers.length) throw new HtvendError('UPSTREAM', `config lists ${diffIds.length} diff_ids for ${manifest.layers.length} layers`);
      // BuildKit only warns (InvalidBaseImagePlatform) and then labels the result with the
      // target platform: an amd64 image called arm64. We refuse instead, naming what there is.
      if ((config.architecture && config.architecture !== platform.architecture) || (config.os && config.os !== platform.os)) {
        const has = formatPlatform({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) });
        throw new HtvendError('NOT_FOUND', `no manifest for platform ${formatPlatform(platform)}: the image is ${has} only (a single-platform manifest, not an index)`, {
          hint: `build with --platform ${has} (or PLATFORMS=${has}), or use a base image that offers ${formatPlatform(platform)}`,
        });
      }
      // Up to 3 layers in flight: enough to fill a link, few enough to keep memory flat.
      const layers: ImageLayer[] = new Array(manifest.layers.length);
      let next = 0;
      const worker = async () => {
        while (next < manifest.layers.length) {
          const i = next++;
          const d = manifest.layers[i]!;
          const digest = parseDigest(d.digest, 'layer digest');
          layers[i] = { digest, diffId: parseDigest(diffIds[i]!, 'diff_id'), size: d.size, mediaType: d.mediaType, path: await this.blob(client, digest, d.size) };
        }
      };
      await Promise.all([worker(), worker(), worker()]);
      return { config: { ...config, config: config.config ?? {} }, layers };
    } catch (e) {
      return wrap(e);
    }
  }

  private blob(client: RegistryClient, digest: Digest, size: number): Promise<string> {
    let p = this.inflight.get(digest);
    if (!p) {
      p = (async () => {
        await mkdir(this.opts.blobDir, { recursive: true, mode: 0o700 });
        const path = join(this.opts.blobDir, digest);
        const tmp = `${path}.part`;
        try {
          const body = await client.getBlob(digest, { size, signal: this.opts.signal });
          await pipeline(body, createWriteStream(tmp, { mode: 0o600 }), { signal: this.opts.signal });
          await rename(tmp, path);
        } catch (e) {
          await rm(tmp, { force: true });
          this.inflight.delete(digest);
          throw e;
        }
        return path;
      })();
      this.inflight.set(digest, p);
    }
    return p;
  }

  async close(): Promise<void> {
    for (const c of this.clients.values()) await (await c.catch(() => undefined))?.close();
  }
}
