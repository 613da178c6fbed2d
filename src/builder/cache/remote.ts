/**
 * The fleet cache (docs/build-cache.md, "Sharing through a registry"): entries as OCI
 * artifacts, one manifest per key, tagged with the key's hex:
 *
 *     manifest  artifactType application/vnd.htvend.build-cache.step.v1
 *       config  application/vnd.htvend.build-cache.entry.v1+json   (the entry file)
 *       layers  the step's layer blob, if any
 *
 * Everything pulled is verified by digest (the registry client checks blobs as they stream;
 * the entry carries its own digest). The cache registry is reached directly, never through
 * htvend's proxy: cache entries are not build inputs and must not land in assets.json.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { RegistryClient, type Env } from '../../registry/index.js';
import { HtvendError, describeError } from '../../util/errors.js';
import { parseDigest, sha256Hex } from '../../util/digest.js';
import type { Logger } from '../../util/log.js';
import type { CacheEntry, CacheStore } from './store.js';
import { canonicalJson as canonical } from '../image/image.js';

export const ARTIFACT_TYPE = 'application/vnd.htvend.build-cache.step.v1';
export const ENTRY_MEDIA_TYPE = 'application/vnd.htvend.build-cache.entry.v1+json';
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

/** `docker://REG/REPO` or `REG/REPO` → registry host and repository. */
export function parseCacheRef(ref: string, flag: string): { registry: string; repository: string } {
  const s = ref.replace(/^docker:\/\//, '');
  const i = s.indexOf('/');
  if (i <= 0 || i === s.length - 1 || /[:@]/.test(s.slice(i + 1))) throw new HtvendError('USAGE', `${flag} ${ref}: want docker://REGISTRY/REPOSITORY (no tag)`);
  return { registry: s.slice(0, i), repository: s.slice(i + 1) };
}

export interface RemoteOptions {
  env: Env;
  tlsVerify?: boolean;
  certDir?: string;
  log: Logger;
  signal?: AbortSignal;
}

/** The environment without proxy variables: the cache registry is not an asset source. */
function direct(env: Env): Env {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) if (!/^(https?|ftp|all|no)_proxy$/i.test(k)) out[k] = v;
  return out;
}

export class RemoteCache {
  private client: Promise<RegistryClient> | undefined;
  private broken = false;
  constructor(readonly ref: string, private readonly flag: string, private readonly o: RemoteOptions) {
    parseCacheRef(ref, flag);
  }

  private open(): Promise<RegistryClient> {
    const { registry, repository } = parseCacheRef(this.ref, this.flag);
    return (this.client ??= RegistryClient.open(registry, repository, {
      env: direct(this.o.env),
      log: this.o.log,
      ...(this.o.tlsVerify === false ? { tlsVerify: false } : {}),
      ...(this.o.certDir ? { certDir: this.o.certDir } : {}),
      signal: this.o.signal,
    }));
  }

  /** Fetches `key` into `store` if the registry has it. Failures are warnings (once). */
  async fetch(key: string, store: CacheStore, tmpDir: string): Promise<boolean> {
    if (this.broken) return false;
    const signal = this.o.signal;
    let dir: string | undefined;
    try {
      const c = await this.open();
      const head = await c.headManifest(key, { accept: [MANIFEST_TYPE], signal });
      if (!head) return false;
      const m = await c.getManifest(head.digest || key, { accept: [MANIFEST_TYPE], signal });
      const manifest = JSON.parse(m.body.toString('utf8')) as { artifactType?: string; config: { digest: string; size: number }; layers: { digest: string; size: number }[] };
      if (manifest.artifactType !== ARTIFACT_TYPE) throw new Error(`tag ${key.slice(0, 12)} is not a build-cache entry`);
      const chunks: Buffer[] = [];
      for await (const ch of await c.getBlob(parseDigest(manifest.config.digest, 'entry digest'), { size: manifest.config.size, signal })) chunks.push(ch as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      const entry = store.checkEntry(key, text);
      if (!entry) throw new Error(`entry ${key.slice(0, 12)} does not match its digest`);
      let layerPath: string | undefined;
      if (entry.layer) {
        dir = await mkdtemp(join(tmpDir, 'remote-'));
        layerPath = join(dir, 'layer');
        await pipeline(await c.getBlob(entry.layer.digest, { size: entry.layer.size, signal }), createWriteStream(layerPath, { mode: 0o600 }), { signal });
      }
      const ok = await store.put(entry, layerPath);
      if (ok) this.o.log.info(`build cache: step ${key.slice(0, 12)} fetched from ${this.ref}`);
      return ok;
    } catch (e) {
      this.broken = true;
      this.o.log.warn(`build cache: ${this.flag} ${this.ref}: ${describeError(e)}; going on without it`);
      return false;
    } finally {
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  }

  /** Pushes `entry` (its layer blob from the local store) unless the registry has it. */
  async push(entry: CacheEntry, store: CacheStore): Promise<void> {
    if (this.broken) return;
    const signal = this.o.signal;
    try {
      const c = await this.open();
      if (await c.headManifest(entry.key, { accept: [MANIFEST_TYPE], signal })) return;
      const entryText = Buffer.from(JSON.stringify({ entry, digest: sha256Hex(canonical(entry)) }));
      const entryDigest = sha256Hex(entryText);
      await c.putBlob(entryText, { expected: entryDigest, size: entryText.length, signal });
      const layers: unknown[] = [];
      if (entry.layer) {
        await c.putBlob(createReadStream(store.blobPath(entry.layer.digest)), { expected: entry.layer.digest, size: entry.layer.size, signal });
        layers.push({ mediaType: entry.layer.mediaType, digest: `sha256:${entry.layer.digest}`, size: entry.layer.size });
      }
      const manifest = {
        schemaVersion: 2,
        mediaType: MANIFEST_TYPE,
        artifactType: ARTIFACT_TYPE,
        config: { mediaType: ENTRY_MEDIA_TYPE, digest: `sha256:${entryDigest}`, size: entryText.length },
        layers,
        annotations: { 'org.opencontainers.image.title': entry.text.slice(0, 200) },
      };
      await c.putManifest(entry.key, JSON.stringify(manifest), MANIFEST_TYPE, { signal });
    } catch (e) {
      this.broken = true;
      this.o.log.warn(`build cache: ${this.flag} ${this.ref}: ${describeError(e)}; entries not pushed`);
    }
  }

  async close(): Promise<void> {
    if (this.client) await (await this.client.catch(() => undefined))?.close();
  }
}
