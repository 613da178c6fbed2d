/**
 * Step cache keys (docs/build-cache.md, "The key"). Pure functions: a key is the sha256 of the
 * canonical JSON of everything a step can see, and nothing else.
 *
 * - The parent state is the image's ChainID (OCI image spec: the chain of diff_ids), so it is
 *   content-addressed: the same files reached by another route (a COPY whose changed sources
 *   give the same layer) keep every later step cacheable.
 * - RUN: argv, the environment it runs with (config Env + ARGs in scope), user, workdir,
 *   network, privilege, platform, and its mounts by content: bind mounts of the context by the
 *   digest of the tree, of stages and images by their ChainID; secrets by id and where they go,
 *   never by value; what the builder injects by path and name, never by the session's CA or
 *   proxy address (those change every session and never reach a layer).
 * - COPY/ADD: the layer entries exactly as the layer writer will see them, each file by the
 *   sha256 of its bytes (after .dockerignore, which decided which entries exist), mtimes as
 *   clamped. The layer is a pure function of these, so the cached one is the one the step
 *   would write.
 */
import { canonicalJson } from '../image/image.js';
import { sha256Hex, type Digest } from '../../util/digest.js';
import type { LayerEntry } from '../fs/types.js';
import type { OciPlatform } from '../run/types.js';

/** Bumped whenever what a key covers or what an entry holds changes. */
export const CACHE_KEY_VERSION = 1;

/** OCI ChainID of a list of diff_ids ('' for an empty rootfs, scoped by platform by the caller). */
export function chainId(diffIds: readonly string[]): string {
  let chain = '';
  for (const d of diffIds) chain = chain ? sha256Hex(`sha256:${chain} sha256:${d}`) : d;
  return chain;
}

function keyOf(kind: string, body: Record<string, unknown>): Digest {
  return sha256Hex(canonicalJson({ v: CACHE_KEY_VERSION, kind, ...body }));
}

/** A RUN mount as far as the key is concerned (content by digest, secrets by id only). */
export type MountKey =
  | { type: 'bind'; target: string; source: string; readonly: boolean; content: string }
  | { type: 'cache'; target: string; id: string; sharing: string; readonly: boolean; mode: number; uid: number; gid: number; seed?: string }
  | { type: 'tmpfs'; target: string; size?: number }
  | { type: 'secret'; id: string; target?: string; env?: string; required: boolean; mode: number; uid: number; gid: number; present: boolean };

export interface RunKeyInput {
  parent: string;
  platform: OciPlatform;
  argv: readonly string[];
  env: readonly string[];
  user: string;
  workdir: string;
  network: 'host' | 'none';
  privileged: boolean;
  mounts: readonly MountKey[];
  /** What the builder injects that the step can see by name or path. */
  injected: {
    certFileVars: readonly string[];
    jks: readonly string[];
    mvn: readonly string[];
    proxyVars: readonly string[];
    /** Where the apt config (APT_CONFIG) is mounted, when the step gets one. */
    apt?: string;
    /** Java's proxy properties are set (never the forwarder's port: it changes every step); the truststore's path. */
    java?: { trustStore: string | null };
  };
  epoch: number;
}

export function runKey(i: RunKeyInput): Digest {
  return keyOf('RUN', { ...i, argv: [...i.argv], env: [...i.env], mounts: [...i.mounts] });
}

/** One layer entry in key form: files carry the sha256 of their bytes instead of a host path. */
export type EntryKey = Record<string, unknown>;

export function entryKey(e: LayerEntry, epoch: number, content?: string): EntryKey {
  switch (e.type) {
    case 'whiteout':
    case 'opaque':
      return { t: e.type, p: e.path };
    default: {
      const base: EntryKey = { t: e.type, p: e.path, u: e.uid ?? 0, g: e.gid ?? 0, m: Math.min(e.mtime ?? epoch, epoch) };
      if (e.xattrs) base['x'] = Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [k, v.toString('base64')]));
      if (e.type === 'file') return { ...base, mode: e.mode, sha256: content };
      if (e.type === 'dir') return { ...base, mode: e.mode };
      return { ...base, target: e.target };
    }
  }
}

/** COPY/ADD: the parent state plus the entries (sorted by path, as the writer sorts them). */
export function copyKey(parent: string, platform: OciPlatform, kind: 'COPY' | 'ADD', entries: readonly EntryKey[], epoch: number): Digest {
  const sorted = [...entries].sort((a, b) => (String(a['p']) < String(b['p']) ? -1 : String(a['p']) > String(b['p']) ? 1 : 0));
  return keyOf(kind, { parent, platform, entries: sorted, epoch });
}
