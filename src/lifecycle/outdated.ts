/**
 * `htvend outdated`: does upstream still serve the bytes we recorded? Asked as cheaply as the
 * URL allows, a few assets at a time:
 *   - registry manifests: HEAD through the registry client (auth challenges answered), its
 *     Docker-Content-Digest against the recorded sha256;
 *   - registry blobs by digest: content-addressed, so only "still there?" (HEAD);
 *   - anything else: a conditional GET with the recorded ETag / Last-Modified (304 = same),
 *     the body left unread; without validators the answer is "unknown" unless `--deep`,
 *     which downloads and hashes the body.
 * 404/410 is "gone"; a mutable index (npm packument, apt InRelease…, src/purl) that changed
 * is "moved", expected rather than an error. Unreachable upstreams are "unknown" per asset.
 */
import { createHash } from 'node:crypto';
import type { AssetEntry } from '../manifest/types.js';
import type { UpstreamClient } from '../upstream/client.js';
import { RegistryClient } from '../registry/client.js';
import { ALL_MANIFEST_TYPES } from '../registry/types.js';
import { packageOf } from '../purl/from-url.js';
import { describeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { Digest } from '../util/digest.js';
import { mapPool } from '../util/pool.js';
import { createProgress } from '../util/progress.js';

export type OutdatedStatus = 'same' | 'changed' | 'moved' | 'gone' | 'unknown';

export interface OutdatedResult {
  url: string;
  status: OutdatedStatus;
  /** How it was decided, or why it could not be. */
  detail: string;
}

export interface OutdatedOptions {
  entries: ReadonlyMap<string, AssetEntry>;
  upstream: UpstreamClient;
  env: Readonly<Record<string, string | undefined>>;
  log: Logger;
  deep: boolean;
  jobs: number;
  /** Per request; default 30 s. */
  timeoutMs?: number | undefined;
  progress?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

const REGISTRY_URL = /^(https?):\/\/([^/]+)\/v2\/(.+)\/(manifests|blobs)\/([^/?#]+)$/;

function header(e: AssetEntry, name: string): string | undefined {
  return Object.entries(e.Headers).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export async function outdated(o: OutdatedOptions): Promise<OutdatedResult[]> {
  const timeoutMs = o.timeoutMs ?? 30_000;
  const registries = new Map<string, Promise<RegistryClient>>();
  const registry = (scheme: string, host: string, repo: string) => {
    const k = `${scheme}://${host}/${repo}`;
    let c = registries.get(k);
    if (!c) registries.set(k, (c = RegistryClient.open(host, repo, { env: o.env, log: o.log, scheme: scheme as 'http' | 'https', signal: o.signal })));
    return c;
  };
  const items = [...o.entries];
  const progress = createProgress({ label: 'outdated', total: items.length, enabled: o.progress });

  const check = async (url: string, e: AssetEntry, signal: AbortSignal): Promise<OutdatedResult> => {
    const m = REGISTRY_URL.exec(url);
    if (m) {
      const [, scheme, host, repo, kind, ref] = m as unknown as [string, string, string, string, string, string];
      const client = await registry(scheme, host, repo);
      if (kind === 'blobs' && ref === `sha256:${e.Sha256}`) {
        const st = await client.statBlob(e.Sha256, { signal });
        return st ? { url, status: 'same', detail: 'content-addressed blob still served' } : { url, status: 'gone', detail: 'blob no longer served' };
      }
      if (kind === 'manifests') {
        const accept = [header(e, 'Content-Type'), ...ALL_MANIFEST_TYPES].filter((x): x is string => Boolean(x));
        const h = await client.headManifest(ref, { accept, signal });
        if (!h) return { url, status: 'gone', detail: 'manifest unknown upstream (404)' };
        if (h.digest) return h.digest === `sha256:${e.Sha256}` ? { url, status: 'same', detail: 'Docker-Content-Digest unchanged' } : { url, status: 'changed', detail: `Docker-Content-Digest sha256:${e.Sha256.slice(0, 12)}… → ${h.digest.slice(0, 19)}…` };
        if (!o.deep) return { url, status: 'unknown', detail: 'registry sent no Docker-Content-Digest (try --deep)' };
        const got = await client.getManifest(ref, { accept, signal });
        return got.digest === `sha256:${e.Sha256}` ? { url, status: 'same', detail: 'manifest bytes unchanged' } : { url, status: 'changed', detail: `manifest is now ${got.digest}` };
      }
    }
    const etag = header(e, 'ETag');
    const lastModified = header(e, 'Last-Modified');
    const headers: Record<string, string> = {};
    if (!o.deep) {
      if (etag) headers['if-none-match'] = etag;
      if (lastModified) headers['if-modified-since'] = lastModified;
    }
    const res = await o.upstream.request(url, { method: 'GET', headers, signal, followRedirects: true });
    try {
      if (res.status === 304) return { url, status: 'same', detail: `304 Not Modified (${etag ? 'ETag' : 'Last-Modified'})` };
      if (res.status === 404 || res.status === 410) return { url, status: 'gone', detail: `${res.status} from upstream` };
      if (res.status !== 200) return { url, status: 'unknown', detail: `upstream answered ${res.status}` };
      if (o.deep) {
        const h = createHash('sha256');
        for await (const c of res.body) h.update(c as Buffer);
        const now = h.digest('hex') as Digest;
        return now === e.Sha256 ? { url, status: 'same', detail: 'downloaded and hashed: same bytes' } : { url, status: 'changed', detail: `downloaded and hashed: sha256 ${e.Sha256.slice(0, 12)}… → ${now.slice(0, 12)}…` };
      }
      const newEtag = first(res.headers['etag']);
      if (etag && newEtag) return newEtag === etag ? { url, status: 'same', detail: 'same ETag' } : { url, status: 'changed', detail: `ETag ${etag} → ${newEtag}` };
      const newLm = first(res.headers['last-modified']);
      if (lastModified && newLm) return newLm === lastModified ? { url, status: 'same', detail: 'same Last-Modified' } : { url, status: 'changed', detail: `Last-Modified ${lastModified} → ${newLm}` };
      return { url, status: 'unknown', detail: etag || lastModified ? 'upstream ignored the validators' : 'no ETag or Last-Modified recorded (try --deep)' };
    } finally {
      // Unread on purpose (the validators decided): cut it, and swallow the abort it reports.
      res.body.on('error', () => {});
      res.body.destroy();
    }
  };

  try {
    return await mapPool(
      items,
      o.jobs,
      async ([url, e], _i, poolSignal) => {
        const signal = AbortSignal.any([poolSignal, AbortSignal.timeout(timeoutMs)]);
        let r: OutdatedResult;
        try {
          r = await check(url, e, signal);
        } catch (err) {
          r = { url, status: 'unknown', detail: `cannot ask upstream: ${describeError(err)}` };
        }
        if (r.status === 'changed' && packageOf(url, { sha256: e.Sha256 }).mutableIndex) r = { ...r, status: 'moved', detail: `index moved on: ${r.detail}` };
        progress.itemDone();
        return r;
      },
      { signal: o.signal },
    );
  } finally {
    progress.stop();
    for (const c of registries.values()) await c.then((x) => x.close(), () => {});
  }
}
