/**
 * `RegistryClient`: the OCI distribution API (https://github.com/opencontainers/distribution-spec)
 * for one repository: manifests, blobs (HEAD / verified GET / range GET / DELETE), uploads and
 * cross-repository mounts. Used by the registry blob store and by the image builder (pulling
 * base images, pushing results). Authentication follows the 401 challenges (auth.ts); the
 * transport honours a given environment's proxy and CA variables (transport.ts).
 *
 * Every request body is a Buffer of at most one upload chunk (or a manifest), so a request
 * that meets a 401 (first contact, expired token) can simply be sent again.
 */
import { timed } from '../util/timing.js';
import { Readable, Transform, pipeline, type TransformCallback } from 'node:stream';
import type { Dispatcher } from 'undici';
import { request } from '../upstream/undici-lite.js';
import { HtvendError, describeError, isAbortError, type ErrorCode } from '../util/errors.js';
import { VerifyingStream, sha256Hex, type Digest } from '../util/digest.js';
import { silentLogger, type Logger } from '../util/log.js';
import { Authenticator, credentialsFromAuthFiles, type Credentials } from './auth.js';
import { createTransport, type Env } from './transport.js';
import { ALL_MANIFEST_TYPES, type FetchedManifest } from './types.js';
import { BlobUpload, DEFAULT_CHUNK_SIZE, type UploadResult } from './upload.js';
import { Slots } from './slots.js';
import { BUSY_STATUSES, MAX_BUSY_ATTEMPTS, MAX_RETRY_DELAY_MS, busyStatusText, retryDelayMs, waitBeforeRetry } from './backoff.js';

export interface RegistryClientOptions {
  /** Environment snapshot for proxy, CA and auth-file variables. Default: `process.env`. */
  env?: Env | undefined;
  log?: Logger | undefined;
  /** `https` (default) or `http`. With `tlsVerify: false` and no scheme, https falls back to http. */
  scheme?: 'https' | 'http' | undefined;
  tlsVerify?: boolean | undefined;
  certDir?: string | undefined;
  extraRoots?: readonly string[] | undefined;
  /** Explicit credentials (e.g. URL userinfo); otherwise the auth files are consulted. */
  credentials?: Credentials | undefined;
  /** Upload chunk size in bytes (default 8 MiB): the most one upload buffers. */
  chunkSize?: number | undefined;
  /** Uploads bigger than one chunk running at once (default 2): bounds buffer memory. */
  maxLargeUploads?: number | undefined;
  /** Code for failures: `STORE` when used as a blob store, `UPSTREAM` (default) otherwise. */
  errorCode?: ErrorCode | undefined;
  /** Path prefix before `/v2/` when the registry is not at the root of its host. */
  pathPrefix?: string | undefined;
  /** Share a dispatcher between clients (not closed by `close()`). */
  dispatcher?: Dispatcher | undefined;
  signal?: AbortSignal | undefined;
}

export interface CallOptions {
  signal?: AbortSignal | undefined;
}

/** @internal what `send()` needs to know about one request. */
export interface SendOptions extends CallOptions {
  /**
   * The access the request needs. distribution maps DELETE (blobs and upload sessions alike)
   * to the `delete` action, GET/HEAD to `pull`, the rest to `pull,push`.
   */
  access: 'pull' | 'push' | 'delete';
  extraScopes?: string[] | undefined;
  headers?: Record<string, string> | undefined;
  /**
   * Buffers are sent as they are (an array is sent back to back without being joined: no
   * second copy of an upload chunk). Kept by the caller, so a 401 can be answered by resending.
   */
  body?: Buffer | string | readonly Buffer[] | Readable | undefined;
  /** Follow redirects (GET/HEAD of blobs may redirect to a storage backend). */
  followRedirects?: boolean | undefined;
  /** The auth probe itself: a 401 is learnt from and returned, not answered. */
  probe?: boolean | undefined;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Manifests are small; anything bigger than this is refused rather than buffered. */
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

function digestRef(d: Digest): string {
  return `sha256:${d}`;
}

export class RegistryClient {
  /** `registry HOST repository REPO`, credential-free, for messages. */
  readonly description: string;
  private base: URL;
  private readonly errorCode: ErrorCode;
  readonly chunkSize: number;
  /** @internal slots for uploads bigger than one chunk (see upload.ts). */
  readonly largeUploads: Slots;
  /** The first-contact `GET /v2/` (see send()), shared by concurrent requests. */
  private authProbe: Promise<void> | undefined;

  private constructor(
    readonly registry: string,
    readonly repository: string,
    private readonly dispatcher: Dispatcher,
    private readonly ownsDispatcher: boolean,
    private readonly auth: Authenticator,
    private httpFallback: boolean,
    readonly log: Logger,
    opts: RegistryClientOptions,
  ) {
    this.description = `registry ${registry} repository ${repository}`;
    const prefix = (opts.pathPrefix ?? '').replace(/\/+$/, '');
    this.base = new URL(`${opts.scheme ?? 'https'}://${registry}${prefix}/v2/${repository}/`);
    this.errorCode = opts.errorCode ?? 'UPSTREAM';
    this.chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
    this.largeUploads = new Slots(opts.maxLargeUploads ?? 2);
  }

  /** Creates a client for `registry` (host[:port]) and `repository` (e.g. `library/alpine`). */
  static async open(registry: string, repository: string, opts: RegistryClientOptions = {}): Promise<RegistryClient> {
    const env = opts.env ?? process.env;
    const log = opts.log ?? silentLogger;
    const dispatcher =
      opts.dispatcher ?? (await createTransport({ env, tlsVerify: opts.tlsVerify, certDir: opts.certDir, extraRoots: opts.extraRoots, signal: opts.signal }));
    const credentials = opts.credentials ?? (await credentialsFromAuthFiles(registry, env));
    const where = `registry ${registry} repository ${repository}`;
    const auth = new Authenticator(dispatcher, credentials, where, log);
    const fallback = opts.tlsVerify === false && opts.scheme === undefined;
    return new RegistryClient(registry, repository, dispatcher, !opts.dispatcher, auth, fallback, log, opts);
  }

  /** The URL of `path` relative to `/v2/<repository>/`. */
  url(path: string): URL {
    return new URL(path, this.base);
  }

  /** Fetches a manifest by tag or `sha256:` digest, verifying the bytes when asked by digest. */
  async getManifest(ref: string, opts: CallOptions & { accept?: readonly string[] } = {}): Promise<FetchedManifest> {
    const what = `manifest ${ref}`;
    const res = await this.send('GET', this.url(`manifests/${ref}`), {
      ...opts,
      access: 'pull',
      headers: { accept: (opts.accept ?? ALL_MANIFEST_TYPES).join(', ') },
    });
    if (res.statusCode !== 200) throw await this.httpError(res, `GET ${what}`);
    const body = await readLimited(res.body, MAX_MANIFEST_BYTES, () => this.fail(`GET ${what}: larger than ${MAX_MANIFEST_BYTES} bytes`));
    const digest = `sha256:${sha256Hex(body)}`;
    if (ref.startsWith('sha256:') && ref !== digest) {
      throw new HtvendError('DIGEST_MISMATCH', `${this.description}: ${what}: content has digest ${digest}`);
    }
    return { mediaType: mediaTypeOf(res.headers['content-type'], body), digest, size: body.length, body };
  }

  /** HEADs a manifest: its media type, digest and size, or undefined if absent. */
  async headManifest(ref: string, opts: CallOptions & { accept?: readonly string[] } = {}): Promise<Omit<FetchedManifest, 'body'> | undefined> {
    const res = await this.send('HEAD', this.url(`manifests/${ref}`), {
      ...opts,
      access: 'pull',
      headers: { accept: (opts.accept ?? ALL_MANIFEST_TYPES).join(', ') },
    });
    await res.body.dump();
    if (res.statusCode === 404) return undefined;
    if (res.statusCode !== 200) throw await this.httpError(res, `HEAD manifest ${ref}`);
    const digest = header(res, 'docker-content-digest') ?? (ref.startsWith('sha256:') ? ref : '');
    return { mediaType: mediaTypeOf(res.headers['content-type'], undefined), digest, size: Number(header(res, 'content-length') ?? 0) };
  }

  /** Stores a manifest under `ref` (a tag or its digest); returns its `sha256:` digest. */
  async putManifest(ref: string, body: Buffer | string, mediaType: string, opts: CallOptions = {}): Promise<string> {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    const res = await this.send('PUT', this.url(`manifests/${ref}`), {
      ...opts,
      access: 'push',
      headers: { 'content-type': mediaType },
      body: bytes,
    });
    if (res.statusCode !== 201 && res.statusCode !== 200) throw await this.httpError(res, `PUT manifest ${ref}`);
    await res.body.dump();
    return `sha256:${sha256Hex(bytes)}`;
  }

  /** The size of a blob, or undefined if the repository does not have it. */
  async statBlob(digest: Digest, opts: CallOptions = {}): Promise<{ size: number } | undefined> {
    const res = await this.send('HEAD', this.url(`blobs/${digestRef(digest)}`), { ...opts, access: 'pull', followRedirects: true });
    await res.body.dump();
    if (res.statusCode === 404) return undefined;
    if (res.statusCode !== 200) throw await this.httpError(res, `HEAD blob ${digestRef(digest)}`);
    return { size: Number(header(res, 'content-length') ?? 0) };
  }

  /**
   * A read stream of a blob, verified against its digest (and `size` if given) as it flows:
   * a mismatch errors the stream before its last chunk. NOT_FOUND if absent.
   */
  async getBlob(digest: Digest, opts: CallOptions & { size?: number | undefined } = {}): Promise<Readable> {
    const what = `blob ${digestRef(digest)}`;
    const res = await this.send('GET', this.url(`blobs/${digestRef(digest)}`), { ...opts, access: 'pull', followRedirects: true });
    if (res.statusCode !== 200) throw await this.httpError(res, `GET ${what}`);
    const verifier = new VerifyingStream(digest, `${this.description}: ${what}`, opts.size);
    return pipeline(res.body, verifier, () => {});
  }

  /** Bytes `[start, end]` (inclusive) of a blob, unverified (for HTTP Range replay). */
  async getBlobRange(digest: Digest, start: number, end: number, opts: CallOptions = {}): Promise<Readable> {
    const what = `blob ${digestRef(digest)} bytes ${start}-${end}`;
    const res = await this.send('GET', this.url(`blobs/${digestRef(digest)}`), {
      ...opts,
      access: 'pull',
      followRedirects: true,
      headers: { range: `bytes=${start}-${end}` },
    });
    if (res.statusCode === 206) return res.body;
    if (res.statusCode !== 200) throw await this.httpError(res, `GET ${what}`);
    // The server ignored Range: cut the slice out ourselves.
    return pipeline(res.body, sliceStream(start, end), () => {});
  }

  /** Every tag of the repository (`tags/list`, following `Link` pages); none for an unknown repository. */
  async listTags(opts: CallOptions = {}): Promise<string[]> {
    const tags: string[] = [];
    let url: URL | undefined = this.url('tags/list?n=1000');
    for (let page = 0; url && page < 10_000; page++) {
      const res = await this.send('GET', url, { ...opts, access: 'pull' });
      if (res.statusCode === 404) {
        await res.body.dump();
        return tags;
      }
      if (res.statusCode !== 200) throw await this.httpError(res, 'GET tags/list');
      const body = (await res.body.json()) as { tags?: string[] | null };
      tags.push(...(body.tags ?? []));
      // RFC 8288 Link: </v2/<repo>/tags/list?last=x&n=1000>; rel="next"
      const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(header(res, 'link') ?? '')?.[1];
      url = next ? new URL(next, url) : undefined;
    }
    return tags;
  }

  /** Deletes a manifest by digest (and with it the tags pointing at it). Absent is fine. */
  async deleteManifest(digest: string, opts: CallOptions = {}): Promise<void> {
    const res = await this.send('DELETE', this.url(`manifests/${digest}`), { ...opts, access: 'delete' });
    if (res.statusCode !== 202 && res.statusCode !== 404 && res.statusCode !== 200) throw await this.httpError(res, `DELETE manifest ${digest}`);
    await res.body.dump();
  }

  /** Deletes a blob (registries may refuse: deletion is often disabled). Absent is fine. */
  async deleteBlob(digest: Digest, opts: CallOptions = {}): Promise<void> {
    const res = await this.send('DELETE', this.url(`blobs/${digestRef(digest)}`), { ...opts, access: 'delete' });
    if (res.statusCode !== 202 && res.statusCode !== 404 && res.statusCode !== 200) throw await this.httpError(res, `DELETE blob ${digestRef(digest)}`);
    await res.body.dump();
  }

  /**
   * Asks the registry to mount a blob from another repository on the same registry.
   * True if mounted; false if the registry would rather have it uploaded.
   */
  async mountBlob(digest: Digest, fromRepository: string, opts: CallOptions = {}): Promise<boolean> {
    const url = this.url('blobs/uploads/');
    url.searchParams.set('mount', digestRef(digest));
    url.searchParams.set('from', fromRepository);
    const res = await this.send('POST', url, { ...opts, access: 'push', extraScopes: [`repository:${fromRepository}:pull`] });
    if (res.statusCode === 201) {
      await res.body.dump();
      return true;
    }
    if (res.statusCode !== 202) throw await this.httpError(res, `mount blob ${digestRef(digest)} from ${fromRepository}`);
    await res.body.dump();
    // The registry opened an upload session instead: close it, the caller uploads normally.
    const location = header(res, 'location');
    if (location) {
      const del = await this.send('DELETE', new URL(location, this.base), { ...opts, access: 'delete' }).catch(() => undefined);
      await del?.body.dump();
    }
    return false;
  }

  /**
   * Starts an upload: write the bytes to `upload.stream`, end it, then `commit()`. Memory use
   * is bounded by one chunk; nothing is visible under the digest until `commit()` resolves.
   */
  createUpload(opts: CallOptions & { expected?: Digest | undefined; size?: number | undefined; verifiedSource?: boolean | undefined } = {}): BlobUpload {
    return new BlobUpload(this, this.chunkSize, opts.signal, opts.expected, opts.size, opts.verifiedSource);
  }

  /**
   * Uploads a whole stream or buffer. With `expected`, an existing blob is not uploaded again
   * (and `mountFrom` repositories are tried first).
   */
  async putBlob(
    source: Readable | Buffer,
    opts: CallOptions & { expected?: Digest | undefined; size?: number | undefined; mountFrom?: readonly string[] | undefined } = {},
  ): Promise<UploadResult> {
    if (opts.expected) {
      const existing = await this.statBlob(opts.expected, opts);
      if (existing) {
        if (!Buffer.isBuffer(source)) source.destroy();
        return { digest: opts.expected, size: existing.size };
      }
      for (const from of opts.mountFrom ?? []) {
        if (await this.mountBlob(opts.expected, from, opts)) {
          if (!Buffer.isBuffer(source)) source.destroy();
          return { digest: opts.expected, size: opts.size ?? (await this.statBlob(opts.expected, opts))?.size ?? 0 };
        }
      }
    }
    const upload = this.createUpload({ signal: opts.signal, expected: opts.expected, size: opts.size });
    try {
      await new Promise<void>((resolve, reject) => {
        pipeline(Buffer.isBuffer(source) ? Readable.from([source]) : source, upload.stream, (e) => (e ? reject(e) : resolve()));
      });
      return await upload.commit(opts.expected);
    } catch (e) {
      await upload.abort(e);
      throw e;
    }
  }

  /** Releases pooled connections (unless the dispatcher was given by the caller). */
  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  /**
   * @internal Sends one request with authentication: on a 401 the challenge is answered and
   * the request sent again. Network failures become errors naming the registry.
   */
  async send(method: string, url: URL, o: SendOptions): Promise<Dispatcher.ResponseData> {
    const actions = o.access === 'push' ? 'pull,push' : o.access;
    const scope = [`repository:${this.repository}:${actions}`, ...(o.extraScopes ?? [])].join(' ');
    // First contact with a body: a registry wanting auth answers 401 without reading the body
    // and closes the connection, which may reach us as ECONNRESET instead of the 401 (seen with
    // docker-registry over TLS and 4 concurrent uploads). A bodiless GET /v2/ learns the
    // challenge first, as docker does.
    if (o.body !== undefined && !o.probe && !this.auth.knowsScheme) await this.probeAuth(o.signal);
    let target = this.onFoundScheme(url);
    let sameOrigin = true;
    for (let attempt = 0, redirects = 0, busy = 0; ; ) {
      const authorization = sameOrigin ? await this.auth.authorization(scope, o.signal) : undefined;
      const headers: Record<string, string> = { ...o.headers };
      if (authorization) headers.authorization = authorization;
      // A stream body (one PATCH of a whole big blob) carries its own content-length header.
      if (o.body !== undefined && !(o.body instanceof Readable)) headers['content-length'] = String(Array.isArray(o.body) ? o.body.reduce((n: number, b: Buffer) => n + b.length, 0) : Buffer.byteLength(o.body as Buffer | string));
      let res: Dispatcher.ResponseData;
      try {
        // A fresh stream per attempt; undici sends each buffer in turn.
        // Up to 1 MiB goes as one buffer: for a small blob a stream costs more per request than
        // copying its bytes once; bigger chunks are streamed without being joined.
        const body = Array.isArray(o.body) ? joinSmall(o.body as readonly Buffer[]) : (o.body as Buffer | string | Readable | undefined);
        res = await timed(`registry ${method} ${target.pathname}`, () => request(target, { method, headers, body, dispatcher: this.dispatcher, signal: o.signal }));
      } catch (e) {
        if (isAbortError(e) || o.signal?.aborted) throw e;
        if (sameOrigin && target.protocol === 'https:' && (this.httpFallback || this.base.protocol === 'http:')) {
          if (this.httpFallback) {
            // buildah's --tls-verify=false also allows a plain-HTTP registry.
            this.log.debug(`${this.description}: https failed (${describeError(e)}), trying http`);
            this.httpFallback = false;
            this.base = new URL(this.base.href.replace(/^https:/, 'http:'));
          }
          // (or another request found it plain while this one was on its way)
          target = this.onFoundScheme(target);
          continue;
        }
        throw this.fail(`${method} ${redactPath(target)}: cannot reach ${target.host}: ${describeError(e)}`, e);
      }
      this.httpFallback = false;
      if (o.probe && res.statusCode === 401) {
        await this.auth.onChallenge(header(res, 'www-authenticate'), scope, false, o.signal);
        return res;
      }
      // A stream body cannot be sent twice: its 401 goes back to the caller as an error.
      if (res.statusCode === 401 && sameOrigin && attempt < 2 && !(o.body instanceof Readable)) {
        attempt++;
        await res.body.dump();
        const challenge = header(res, 'www-authenticate');
        if (await this.auth.onChallenge(challenge, scope, authorization !== undefined, o.signal)) continue;
        throw this.fail(
          `${method} ${redactPath(target)}: ${authorization ? 'credentials rejected' : 'authentication required'} (HTTP 401)`,
          undefined,
          authorization ? 'check the username and password' : 'give credentials in the URL (https://user:pass@host/…) or in ~/.docker/config.json',
        );
      }
      if (BUSY_STATUSES.has(res.statusCode)) {
        busy++;
        const retryAfter = res.headers['retry-after'];
        const delay = retryDelayMs(retryAfter, busy);
        await res.body.dump();
        // A stream body cannot be sent twice; anything else is retried, a bounded number of times.
        if (delay !== undefined && busy < MAX_BUSY_ATTEMPTS && !(o.body instanceof Readable)) {
          this.log.warn(`${this.description}: ${method} ${redactPath(target)}: ${busyStatusText(res.statusCode)}, retrying in ${(delay / 1000).toFixed(1)}s (attempt ${busy + 1} of ${MAX_BUSY_ATTEMPTS})`);
          await waitBeforeRetry(delay, o.signal);
          continue;
        }
        const why = delay === undefined ? `the registry asks to wait longer than ${MAX_RETRY_DELAY_MS / 1000}s (Retry-After: ${String(retryAfter)})` : `gave up after ${busy} attempt(s)`;
        throw this.fail(
          `${method} ${redactPath(target)}: ${busyStatusText(res.statusCode)}: ${why}`,
          undefined,
          res.statusCode === 429 ? 'the registry rate-limits this client (Docker Hub: log in, or pull through a mirror), try again later' : 'the registry is overloaded or down, try again later',
        );
      }
      if (o.followRedirects && REDIRECTS.has(res.statusCode) && redirects < 10) {
        const location = header(res, 'location');
        if (location) {
          await res.body.dump();
          redirects++;
          const next = new URL(location, target);
          // Credentials for the registry are never sent to the storage backend it redirects to.
          sameOrigin = sameOrigin && next.origin === this.base.origin;
          target = next;
          continue;
        }
      }
      return res;
    }
  }

  /**
   * `url` on the scheme this registry was found to speak: once the --tls-verify=false fallback
   * found it plain HTTP (possibly in another request, e.g. the auth probe), its https URLs
   * built earlier become http.
   */
  private onFoundScheme(url: URL): URL {
    if (url.protocol !== 'https:' || this.base.protocol !== 'http:' || url.host !== this.base.host) return url;
    return new URL(url.href.replace(/^https:/, 'http:'));
  }

  /** Sends `GET /v2/` once to learn how the registry authenticates; failures are left to the real request. */
  private probeAuth(signal?: AbortSignal): Promise<void> {
    const root = new URL('../'.repeat(this.repository.split('/').length), this.base);
    this.authProbe ??= this.send('GET', root, { access: 'pull', probe: true, signal }).then(
      (res) => res.body.dump(),
      () => undefined,
    );
    return this.authProbe;
  }

  /** @internal An error naming this registry and repository. */
  fail(detail: string, cause?: unknown, hint?: string): HtvendError {
    return new HtvendError(this.errorCode, `${this.description}: ${detail}`, { cause, hint });
  }

  /** @internal Turns an unexpected response into an error carrying the registry's own message. */
  async httpError(res: Dispatcher.ResponseData, what: string): Promise<HtvendError> {
    const text = (await readLimited(res.body, 4096, () => undefined).catch(() => Buffer.alloc(0))).toString('utf8');
    let detail = '';
    try {
      const parsed = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
      detail = (parsed.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
    } catch {
      detail = text.trim().slice(0, 200);
    }
    const code: ErrorCode = res.statusCode === 404 ? 'NOT_FOUND' : this.errorCode;
    const msg = `${this.description}: ${what}: HTTP ${res.statusCode}${detail ? ` (${detail})` : ''}`;
    return new HtvendError(code, msg, res.statusCode === 403 ? { hint: 'the credentials lack access to this repository' } : {});
  }
}

function header(res: Dispatcher.ResponseData, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The URL without query (upload session state) and never with userinfo, for messages. */
function redactPath(u: URL): string {
  return `${u.protocol}//${u.host}${u.pathname}`;
}

function mediaTypeOf(contentType: string | string[] | undefined, body: Buffer | undefined): string {
  const ct = (Array.isArray(contentType) ? contentType[0] : contentType)?.split(';')[0]?.trim();
  if (body && (!ct || ct === 'application/json' || ct === 'text/plain')) {
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { mediaType?: string; manifests?: unknown };
      if (parsed.mediaType) return parsed.mediaType;
    } catch {
      // fall through to the header's type
    }
  }
  return ct ?? '';
}

async function readLimited(body: Readable, limit: number, tooBig: () => HtvendError | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      const err = tooBig();
      if (err) throw err;
      break;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function sliceStream(start: number, end: number): Transform {
  let pos = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      const from = Math.max(start - pos, 0);
      const to = Math.min(end + 1 - pos, chunk.length);
      pos += chunk.length;
      cb(null, to > from ? chunk.subarray(from, to) : undefined);
    },
  });
}

/** A request body from a list of buffers: joined when small (one write), else streamed as is. */
function joinSmall(chunks: readonly Buffer[]): Buffer | Readable {
  if (chunks.length === 1) return chunks[0]!;
  const total = chunks.reduce((n, b) => n + b.length, 0);
  return total <= 1024 * 1024 ? Buffer.concat(chunks, total) : Readable.from(chunks);
}
