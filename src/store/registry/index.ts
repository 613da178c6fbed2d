/**
 * The registry blob store (SPEC §6): blobs of one repository of an OCI distribution registry,
 * named by `--blobs-registry https://host/v2/<repo>/` (the Go tool's flag and URL form).
 * stat = HEAD, get = verified GET, put = upload (src/registry/upload.ts: monolithic for blobs
 * within one 8 MiB chunk, chunked PATCHes otherwise, digest named on the final PUT).
 *
 * A registry only keeps blobs that some manifest references: `finalizeExport()` pushes an OCI
 * artifact manifest listing every exported blob, tagged, so `registry garbage-collect` keeps them.
 */
import type { Readable } from 'node:stream';
import { HtvendError } from '../../util/errors.js';
import { sha256Hex, type Digest } from '../../util/digest.js';
import { silentLogger, type Logger } from '../../util/log.js';
import { RegistryClient, type RegistryClientOptions } from '../../registry/client.js';
import type { Descriptor } from '../../registry/types.js';
import { GC_TAG, listingLayers, pushListing, readListings } from './listing.js';
import type { Env } from '../../registry/transport.js';
import type { BlobStat, BlobWriter, ExportFinalizingStore, IoOptions, ListableStore, ListedBlob, PutOptions, RangeReadableStore } from '../store.js';

export { BLOBS_ARTIFACT_TYPE } from './listing.js';

export interface RegistryStoreOptions {
  env?: Env | undefined;
  log?: Logger | undefined;
  signal?: AbortSignal | undefined;
  /** buildah-style TLS knobs, for registries with private CAs or no TLS. */
  tlsVerify?: boolean | undefined;
  certDir?: string | undefined;
  extraRoots?: readonly string[] | undefined;
  chunkSize?: number | undefined;
}

export interface ParsedRegistryUrl {
  scheme: 'http' | 'https';
  host: string;
  pathPrefix: string;
  repository: string;
  credentials?: { username: string; password: string } | undefined;
  /** The URL without credentials, for messages. */
  display: string;
  /** `?tag=NAME` on the URL: the tag `finalizeExport` uses (default: derived from the blob set). */
  exportTag?: string | undefined;
}

/** Parses `http(s)://[user:pass@]host[:port][/prefix]/v2/<repo>/`; anything else is a USAGE error. */
export function parseRegistryStoreUrl(raw: string): ParsedRegistryUrl {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new HtvendError('USAGE', `--blobs-registry ${JSON.stringify(raw.replace(/\/\/[^@/]*@/, '//'))}: not a URL (want https://host/v2/<repository>/)`);
  }
  const display = `${u.protocol}//${u.host}${u.pathname}`;
  const m = /^(.*?)\/v2\/(.+?)\/*$/.exec(u.pathname);
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || !m || !m[2]) {
    throw new HtvendError('USAGE', `--blobs-registry ${display}: want http(s)://host/v2/<repository>/`);
  }
  const repository = decodeURIComponent(m[2]);
  if (!/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(repository)) {
    throw new HtvendError('USAGE', `--blobs-registry ${display}: ${JSON.stringify(repository)} is not a valid repository name (lowercase, digits, separators)`);
  }
  const credentials = u.username ? { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) } : undefined;
  const exportTag = u.searchParams.get('tag') ?? undefined;
  if (exportTag !== undefined && !/^[\w][\w.-]{0,127}$/.test(exportTag)) throw new HtvendError('USAGE', `--blobs-registry ${display}: tag ${JSON.stringify(exportTag)} is not a valid OCI tag`);
  return { scheme: u.protocol === 'https:' ? 'https' : 'http', host: u.host, pathPrefix: m[1] ?? '', repository, credentials, display, exportTag };
}

export class RegistryStore implements RangeReadableStore, ListableStore, ExportFinalizingStore {
  /** Listing manifests read by the last list(): what finishGc() replaces. */
  private listed = new Set<string>();
  readonly description: string;

  constructor(
    private readonly client: RegistryClient,
    display: string,
    private readonly log: Logger,
    private readonly exportTag?: string,
  ) {
    this.description = `registry store ${display}`;
  }

  async stat(digest: Digest, opts: IoOptions = {}): Promise<BlobStat | undefined> {
    return this.client.statBlob(digest, opts);
  }

  async get(digest: Digest, opts: IoOptions = {}): Promise<Readable> {
    return this.client.getBlob(digest, opts);
  }

  async getRange(digest: Digest, start: number, end: number, opts: IoOptions = {}): Promise<Readable> {
    return this.client.getBlobRange(digest, start, end, opts);
  }

  async delete(digest: Digest, opts: IoOptions = {}): Promise<void> {
    await this.client.deleteBlob(digest, opts);
  }

  async put(opts: PutOptions = {}): Promise<BlobWriter> {
    opts.signal?.throwIfAborted();
    const upload = this.client.createUpload({ signal: opts.signal, expected: opts.expected, size: opts.size, verifiedSource: opts.verifiedSource });
    return {
      stream: upload.stream,
      commit: async () => (await upload.commit(opts.expected)).digest,
      abort: (reason?: unknown) => upload.abort(reason),
    };
  }

  /**
   * Pushes a tagged OCI artifact manifest (artifactType `application/vnd.htvend.blobs.v1+json`,
   * empty config, one layer per blob) so registry GC keeps the exported blobs. The default tag
   * is `htvend-<first 24 hex of the sha256 of the sorted digest list>`: the same set of blobs
   * always gets the same tag and manifest. Returns `host/repo:tag@digest`.
   */
  async finalizeExport(
    blobs: readonly (Digest | { digest: Digest; size?: number | undefined })[],
    opts: IoOptions & { tag?: string | undefined; log?: Logger | undefined } = {},
  ): Promise<string> {
    const sizes = new Map<Digest, number | undefined>();
    for (const b of blobs) {
      const { digest, size } = typeof b === 'string' ? { digest: b, size: undefined } : b;
      sizes.set(digest, size ?? sizes.get(digest));
    }
    const digests = [...sizes.keys()].sort();
    const tag = opts.tag ?? this.exportTag ?? `htvend-${sha256Hex(digests.join('\n')).slice(0, 24)}`;
    if (!/^[\w][\w.-]{0,127}$/.test(tag)) throw new HtvendError('USAGE', `export tag ${JSON.stringify(tag)} is not a valid OCI tag`);
    const layers: Descriptor[] = [];
    for (const d of digests) {
      let size = sizes.get(d);
      if (size === undefined) {
        const st = await this.client.statBlob(d, opts);
        if (!st) throw new HtvendError('STORE', `${this.description}: blob sha256:${d} is missing, cannot list it in the export manifest`);
        size = st.size;
      }
      layers.push({ mediaType: 'application/octet-stream', digest: `sha256:${d}`, size });
    }
    const { digest } = await pushListing(this.client, tag, layers, opts);
    const ref = `${this.client.registry}/${this.client.repository}:${tag}@${digest}`;
    (opts.log ?? this.log).info(`export: ${digests.length} blob(s) listed in OCI artifact ${ref} (keeps them from registry garbage collection)`);
    return ref;
  }

  /**
   * The blobs the store's listing manifests name (listing.ts): blobs a build put but no
   * export or gc listed are not known, and so never collected.
   */
  async *list(opts: IoOptions = {}): AsyncGenerator<ListedBlob> {
    const l = await readListings(this.client, opts);
    this.listed = l.manifests;
    for (const [digest, b] of l.blobs) yield { digest, size: b.size, since: b.since };
  }

  /** Pushes one listing of what remains, tagged `htvend-gc`, then deletes the listings it replaces. */
  async finishGc(remaining: readonly ListedBlob[], opts: IoOptions = {}): Promise<string> {
    const pushed = await pushListing(this.client, GC_TAG, listingLayers(remaining), opts);
    const keep = new Set(pushed.manifests);
    let dropped = 0;
    for (const m of this.listed) {
      if (keep.has(m)) continue;
      await this.client.deleteManifest(m, opts);
      dropped++;
    }
    return `${remaining.length} remaining blob(s) listed in ${this.client.registry}/${this.client.repository}:${GC_TAG}@${pushed.digest}; ${dropped} old listing manifest(s) deleted`;
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/**
 * Opens the registry store at `url` (`https://[user:pass@]host/v2/<repo>/`). Credentials come
 * from the URL, else from the Docker/containers auth files of `env`; proxy and CA variables
 * from `env` too. Nothing is contacted until the first operation.
 */
export async function openRegistryStore(url: string | { registry?: string | undefined }, opts: RegistryStoreOptions = {}): Promise<RegistryStore> {
  const raw = typeof url === 'string' ? url : url.registry;
  if (!raw) throw new HtvendError('USAGE', '--blobs-registry is required with --blobs-backend registry', { hint: 'e.g. https://host/v2/<repo>/' });
  const parsed = parseRegistryStoreUrl(raw);
  const log = opts.log ?? silentLogger;
  const clientOpts: RegistryClientOptions = {
    env: opts.env,
    log,
    scheme: parsed.scheme,
    tlsVerify: opts.tlsVerify,
    certDir: opts.certDir,
    extraRoots: opts.extraRoots,
    credentials: parsed.credentials,
    chunkSize: opts.chunkSize,
    errorCode: 'STORE',
    pathPrefix: parsed.pathPrefix,
    signal: opts.signal,
  };
  const client = await RegistryClient.open(parsed.host, parsed.repository, clientOpts);
  return new RegistryStore(client, parsed.display, log, parsed.exportTag);
}
