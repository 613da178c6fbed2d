/**
 * What a lockfile holds, seen as registries: every `…/v2/<name>/manifests|blobs/<ref>` key of
 * assets.json indexed by repository, so that a mirror request (which names a repository and a
 * reference, and at best the upstream registry in containerd's `ns=`) finds the recorded URL.
 *
 * A request by digest also finds an entry recorded under a tag (skopeo and containerd fetch
 * an index by tag, then its manifests by digest): the entry's Sha256 is the sha256 of its
 * bytes, which for an unencoded body *is* the OCI digest, so serving it is exactly what the
 * upstream would have served. Pure code over a Map: no I/O.
 */
import type { AssetEntry } from '../manifest/types.js';
import { DOCKER_HUB_HOST, normalizeRegistryHost } from '../registry/reference.js';

export type MirrorKind = 'manifests' | 'blobs';

/** `scheme://host[:port]/v2/<name>/<kind>/<ref>` with no query or fragment. */
const REGISTRY_URL = /^(https?:\/\/[^/?#]+)\/v2\/(.+)\/(manifests|blobs)\/([^/?#]+)$/;

export interface Located {
  key: string;
  entry: AssetEntry;
}

export type Resolution =
  | { kind: 'found'; key: string; entry: AssetEntry }
  /** Nothing recorded; `tried` lists the URLs looked up (for the warning). */
  | { kind: 'unknown'; tried: string[] }
  /** No `ns=` and no `--default-registry`, and several recorded registries hold the repository. */
  | { kind: 'ambiguous'; origins: string[] };

export interface MirrorRequest {
  kind: MirrorKind;
  /** Repository as the client sent it (`library/alpine`, `team/app`). */
  name: string;
  /** Tag or `sha256:<hex>`. */
  reference: string;
  /** The upstream registry host the client named (`ns=`), if any. */
  ns?: string | undefined;
}

export class MirrorCatalog {
  /** repository → origins (`https://host:port`) that have recorded URLs under it. */
  private readonly origins = new Map<string, Set<string>>();
  /** `origin/v2/name/kind@hex` → assets.json key whose body hashes to hex. */
  private readonly byDigest = new Map<string, string>();

  constructor(
    private readonly entries: ReadonlyMap<string, AssetEntry>,
    private readonly defaultRegistry?: string | undefined,
  ) {
    for (const [key, entry] of entries) {
      const m = REGISTRY_URL.exec(key);
      if (!m) continue;
      const [, origin, name, kind] = m as unknown as [string, string, string, MirrorKind];
      let set = this.origins.get(name);
      if (!set) this.origins.set(name, (set = new Set()));
      set.add(origin);
      if (!hasContentEncoding(entry)) this.byDigest.set(`${origin}/v2/${name}/${kind}@${entry.Sha256}`, key);
    }
  }

  /** Number of repositories with recorded registry URLs (for the start-up line). */
  get repositories(): number {
    return this.origins.size;
  }

  resolve(r: MirrorRequest): Resolution {
    const registry = r.ns ?? this.defaultRegistry;
    let candidates: { origin: string; name: string }[];
    if (registry) {
      const host = normalizeRegistryHost(registry);
      // Docker Hub official images: `alpine` is `library/alpine` (containerd already sends
      // the full name; other clients may not).
      const name = host === DOCKER_HUB_HOST && !r.name.includes('/') ? `library/${r.name}` : r.name;
      const hosts = host === DOCKER_HUB_HOST ? [DOCKER_HUB_HOST, 'index.docker.io'] : [host];
      candidates = hosts.flatMap((h) => [`https://${h}`, `http://${h}`].map((origin) => ({ origin, name })));
    } else {
      const names = r.name.includes('/') ? [r.name] : [r.name, `library/${r.name}`];
      candidates = names.flatMap((name) => [...(this.origins.get(name) ?? [])].map((origin) => ({ origin, name })));
      // http:// and https:// of one host are one registry (a plain-HTTP fallback).
      const hosts = new Set(candidates.map((c) => c.origin.replace(/^https?:\/\//, '')));
      if (hosts.size > 1) return { kind: 'ambiguous', origins: [...hosts].sort() };
      candidates.sort((a, b) => Number(a.origin.startsWith('http:')) - Number(b.origin.startsWith('http:')));
    }
    const tried: string[] = [];
    for (const { origin, name } of candidates) {
      const key = `${origin}/v2/${name}/${r.kind}/${r.reference}`;
      tried.push(key);
      const entry = this.entries.get(key);
      if (entry) return { kind: 'found', key, entry };
      const hex = /^sha256:([0-9a-f]{64})$/.exec(r.reference)?.[1];
      const alias = hex ? this.byDigest.get(`${origin}/v2/${name}/${r.kind}@${hex}`) : undefined;
      if (alias) return { kind: 'found', key: alias, entry: this.entries.get(alias)! };
    }
    return { kind: 'unknown', tried };
  }
}

function hasContentEncoding(e: AssetEntry): boolean {
  return Object.keys(e.Headers).some((k) => k.toLowerCase() === 'content-encoding');
}
