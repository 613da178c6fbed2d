/**
 * The S3 blob store (SPEC §6), key layout of the Go tool: `<prefix><sha256 hex>` in one bucket.
 * AWS SDK v3 (client-s3 + lib-storage, pinned at 3.700.0: later releases need Node 22).
 *
 * Nothing wrong is ever visible under a digest key:
 * - a blob that ends within its first part (8 MiB) is hashed while buffered, then PUT straight
 *   to its final key (one request; PutObject is atomic);
 * - a bigger one whose digest and size are announced (export knows both) streams as one
 *   PutObject to a unique temporary key `<prefix>.htvend-upload-<random>`, with no part
 *   buffers (the last chunk is held back until the digest is checked, and real S3 also checks
 *   the x-amz-checksum-sha256 sent with it). Not straight to the final key: s3rver stores the
 *   bytes of a request cut short, so only a copy after the check keeps wrong bytes invisible;
 * - any other bigger one streams to a unique temporary key `<prefix>.htvend-upload-<random>` as a
 *   multipart upload (lib-storage `Upload`, 8 MiB parts, 2 in flight: ≤ ~24 MiB per upload),
 *   and only once its digest is known and checked is it copied server-side to the final key
 *   and the temporary object deleted. Abort or failure aborts the multipart upload and deletes
 *   the temporary key.
 *
 * Configuration comes from the given environment: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN (else the SDK's default chain: profiles, SSO, container/instance roles),
 * AWS_REGION / AWS_DEFAULT_REGION (default us-east-1), AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL
 * (then path-style addressing, as S3-compatible servers need), and CA variables as for htvend's
 * other connections (plus AWS_CA_BUNDLE).
 */
import { Agent as HttpsAgent } from 'node:https';
import { Agent as HttpAgent } from 'node:http';
import { randomBytes } from 'node:crypto';
import { PassThrough, Writable, addAbortSignal, pipeline, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import {
  S3Client,
  HeadObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  HeadBucketCommand,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { HtvendError, describeError, isAbortError } from '../../util/errors.js';
import { VerifyingStream, parseDigest, writerSha256, type Digest, type Sha256 } from '../../util/digest.js';
import { silentLogger, type Logger } from '../../util/log.js';
import { loadTrustedRoots, pemCertificates } from '../../upstream/roots.js';
import { Slots } from '../../registry/slots.js';
import type { BlobStat, BlobWriter, IoOptions, ListableStore, ListedBlob, PutOptions, RangeReadableStore } from '../store.js';
import { readFile } from 'node:fs/promises';

/** Part size: ≥ 8 MiB as S3 wants few large parts; also the small-blob threshold. */
export const S3_PART_SIZE = 8 * 1024 * 1024;
/** Parts in flight per upload: 2 overlaps reading and sending while bounding memory. */
const QUEUE_SIZE = 2;
/**
 * Multipart uploads running at once per store. Each holds up to ~3 parts (24 MiB); with
 * `export --jobs 8` and big blobs, 2 keep loopback/LAN links busy and RSS under ~150 MB
 * (measured in bench/export-bench.ts). Single-part blobs need no slot.
 */
const MULTIPART_SLOTS = 2;
/** CopyObject's limit; bigger blobs would need UploadPartCopy. */
const MAX_COPY_BYTES = 5 * 1024 * 1024 * 1024;

export interface S3Location {
  /** Required; optional in the type so a StoreConfig can be passed as is. */
  bucket?: string | undefined;
  prefix?: string | undefined;
}

export interface S3StoreOptions {
  env?: Readonly<Record<string, string | undefined>> | undefined;
  log?: Logger | undefined;
  signal?: AbortSignal | undefined;
  /** Override the part size (tests). Never below 5 MiB, S3's minimum. */
  partSize?: number | undefined;
}

interface AwsError {
  name?: string;
  Code?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

function awsName(e: unknown): string {
  const a = e as AwsError;
  return a?.name ?? a?.Code ?? a?.code ?? '';
}

function awsStatus(e: unknown): number | undefined {
  return (e as AwsError)?.$metadata?.httpStatusCode;
}

export class S3Store implements RangeReadableStore, ListableStore {
  readonly description: string;
  private bucketChecked = false;
  /** @internal bounds concurrent multipart uploads (memory). */
  readonly multipartSlots = new Slots(MULTIPART_SLOTS);

  constructor(
    readonly client: S3Client,
    readonly bucket: string,
    readonly prefix: string,
    private readonly endpoint: string,
    readonly log: Logger,
    readonly partSize: number,
  ) {
    this.description = `s3 store s3://${bucket}/${prefix}`;
  }

  keyOf(digest: Digest): string {
    return `${this.prefix}${digest}`;
  }

  async stat(digest: Digest, opts: IoOptions = {}): Promise<BlobStat | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyOf(digest) }), { abortSignal: opts.signal });
      return { size: res.ContentLength ?? 0 };
    } catch (e) {
      if (awsStatus(e) === 404 || awsName(e) === 'NotFound' || awsName(e) === 'NoSuchKey') {
        // HEAD has no body, so a missing bucket also looks like 404: tell them apart once.
        await this.checkBucket(opts.signal);
        return undefined;
      }
      throw this.wrap(e, `stat blob ${digest}`);
    }
  }

  async get(digest: Digest, opts: IoOptions = {}): Promise<Readable> {
    const body = await this.getObject(digest, undefined, opts);
    const out = pipeline(body.stream, new VerifyingStream(digest, `${this.description}: blob ${digest}`, body.size), () => {});
    return opts.signal ? addAbortSignal(opts.signal, out) : out;
  }

  async getRange(digest: Digest, start: number, end: number, opts: IoOptions = {}): Promise<Readable> {
    const out = (await this.getObject(digest, `bytes=${start}-${end}`, opts)).stream;
    return opts.signal ? addAbortSignal(opts.signal, out) : out;
  }

  async delete(digest: Digest, opts: IoOptions = {}): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyOf(digest) }), { abortSignal: opts.signal });
    } catch (e) {
      throw this.wrap(e, `delete blob ${digest}`);
    }
  }

  /** Every `<prefix><sha256 hex>` object, one ListObjectsV2 page (≤ 1,000 keys) at a time. */
  async *list(opts: IoOptions = {}): AsyncGenerator<ListedBlob> {
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix, ContinuationToken: token }), { abortSignal: opts.signal });
      } catch (e) {
        throw this.wrap(e, 'list blobs');
      }
      for (const o of page.Contents ?? []) {
        const hex = o.Key?.slice(this.prefix.length) ?? '';
        if (/^[0-9a-f]{64}$/.test(hex)) yield { digest: hex as Digest, size: o.Size ?? 0, since: o.LastModified?.getTime() ?? Date.now() };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** DeleteObjects in batches of 1,000 keys (the API's limit); any per-key error fails the call. */
  async deleteMany(digests: readonly Digest[], opts: IoOptions = {}): Promise<void> {
    for (let i = 0; i < digests.length; i += 1000) {
      const batch = digests.slice(i, i + 1000);
      let res;
      try {
        res = await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((d) => ({ Key: this.keyOf(d) })), Quiet: true } }),
          { abortSignal: opts.signal },
        );
      } catch (e) {
        throw this.wrap(e, `delete ${batch.length} blobs`);
      }
      const failed = res.Errors ?? [];
      if (failed.length) {
        throw new HtvendError('STORE', `${this.description}: ${failed.length} of ${batch.length} deletes failed, e.g. ${failed[0]!.Key}: ${failed[0]!.Code ?? ''} ${failed[0]!.Message ?? ''}`.trim());
      }
    }
  }

  async put(opts: PutOptions = {}): Promise<BlobWriter> {
    opts.signal?.throwIfAborted();
    return new S3BlobWriter(this, opts);
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private async getObject(digest: Digest, range: string | undefined, opts: IoOptions): Promise<{ stream: Readable; size: number | undefined }> {
    // The SDK's abortSignal covers the request; once the body flows, the caller's signal is
    // attached to the returned stream instead (so it fails with an AbortError, not 'aborted').
    const request = new AbortController();
    const onAbort = () => request.abort(opts.signal?.reason);
    opts.signal?.throwIfAborted();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(digest), Range: range }), { abortSignal: request.signal });
      return { stream: res.Body as Readable, size: range ? undefined : res.ContentLength };
    } catch (e) {
      if (awsName(e) === 'NoSuchKey' || (awsStatus(e) === 404 && awsName(e) !== 'NoSuchBucket')) {
        throw new HtvendError('NOT_FOUND', `blob ${digest} is not in ${this.description}`);
      }
      throw this.wrap(e, `get blob ${digest}`);
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  private async checkBucket(signal?: AbortSignal): Promise<void> {
    if (this.bucketChecked) return;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: signal });
      this.bucketChecked = true;
    } catch (e) {
      if (awsStatus(e) === 404) throw this.wrap(Object.assign(new Error('bucket not found'), { name: 'NoSuchBucket' }), 'check bucket');
      throw this.wrap(e, 'check bucket');
    }
  }

  /** @internal An S3 failure as an error naming the store, the bucket and what was being done. */
  wrap(e: unknown, what: string): Error {
    if (isAbortError(e) || e instanceof HtvendError) return e as Error;
    const name = awsName(e);
    const status = awsStatus(e);
    let detail: string;
    let hint: string | undefined;
    if (name === 'NoSuchBucket') {
      detail = `bucket ${JSON.stringify(this.bucket)} does not exist`;
      hint = 'create it, or check --blobs-bucket and AWS_ENDPOINT_URL / AWS_REGION';
    } else if (['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'InvalidToken', 'ExpiredToken'].includes(name) || status === 403) {
      detail = `access to bucket ${JSON.stringify(this.bucket)} denied (${name || 'HTTP 403'})`;
      hint = 'check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE and the bucket policy';
    } else if (name === 'CredentialsProviderError') {
      detail = 'no AWS credentials found';
      hint = 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE';
    } else if (/ECONNREFUSED|ENOTFOUND|ECONNRESET|EHOSTUNREACH|ETIMEDOUT|socket hang up/.test(`${(e as NodeJS.ErrnoException)?.code ?? ''} ${describeError(e)}`)) {
      detail = `cannot reach ${this.endpoint}: ${describeError(e)}`;
    } else {
      detail = `${name || 'error'}${status ? ` (HTTP ${status})` : ''}: ${describeError(e)}`;
    }
    return new HtvendError('STORE', `${this.description}: ${what}: ${detail}`, { cause: e, hint });
  }
}

type WriterState = 'open' | 'committing' | 'committed' | 'aborted';

/** One put: buffers the first part, then either PUTs it or streams a multipart upload. */
class S3BlobWriter implements BlobWriter {
  readonly stream: Writable;
  private readonly hash: Sha256;
  private size = 0;
  private head: Buffer[] = [];
  private headBytes = 0;
  private body: PassThrough | undefined;
  private upload: Upload | undefined;
  private uploadDone: Promise<unknown> | undefined;
  private readonly tempKey: string;
  private state: WriterState = 'open';
  private readonly detach: () => void;
  private releaseSlot: (() => void) | undefined;
  /** Digest and size announced: one streamed PutObject to the temporary key (see the file comment). */
  private readonly direct: boolean;
  /** Direct mode: the latest chunk, sent only once the next one (or the digest check) allows. */
  private held: Buffer | undefined;
  private digestHex: Digest | undefined;
  private readonly request = new AbortController();

  constructor(
    private readonly store: S3Store,
    private readonly opts: PutOptions,
  ) {
    this.hash = writerSha256(opts);
    this.tempKey = `${store.prefix}.htvend-upload-${randomBytes(12).toString('hex')}`;
    this.direct = opts.expected !== undefined && opts.size !== undefined && opts.size > store.partSize && opts.size <= MAX_COPY_BYTES;
    this.stream = new Writable({
      highWaterMark: 1024 * 1024,
      write: (chunk: Buffer, _enc, cb) => {
        if (this.direct) return this.acceptDirect(chunk, cb);
        // A blob known to need a multipart upload waits for its slot before buffering anything.
        if (!this.releaseSlot && (opts.size ?? 0) > store.partSize) {
          this.takeSlot().then(() => this.accept(chunk, cb), cb);
          return;
        }
        this.accept(chunk, cb);
      },
      final: (cb) => {
        if (this.direct) this.finishDirect();
        else this.body?.end();
        cb();
      },
    });
    const signal = opts.signal;
    const onAbort = () => void this.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    this.detach = () => signal?.removeEventListener('abort', onAbort);
  }

  private accept(chunk: Buffer, cb: (e?: Error | null) => void): void {
    if (this.state === 'aborted') return cb(new HtvendError('ABORTED', `${this.store.description}: upload aborted`));
    this.hash.update(chunk);
    this.size += chunk.length;
    if (!this.body) {
      this.head.push(chunk);
      this.headBytes += chunk.length;
      if (this.headBytes <= this.store.partSize) return cb();
      if (!this.releaseSlot) {
        // Size was not announced: take a slot now, holding the first part meanwhile.
        this.takeSlot().then(() => this.switchToMultipart(cb), cb);
        return;
      }
      return this.switchToMultipart(cb);
    }
    this.writeBody(chunk, cb);
  }

  private acceptDirect(chunk: Buffer, cb: (e?: Error | null) => void): void {
    if (this.state === 'aborted') return cb(new HtvendError('ABORTED', `${this.store.description}: upload aborted`));
    this.hash.update(chunk);
    this.size += chunk.length;
    if (this.size > this.opts.size!) return cb(new HtvendError('DIGEST_MISMATCH', `${this.store.description}: blob ${this.opts.expected}: more than the announced ${this.opts.size} bytes`));
    if (!this.body) this.startDirect();
    const previous = this.held;
    this.held = chunk;
    if (previous) this.writeBody(previous, cb);
    else cb();
  }

  private startDirect(): void {
    const expected = this.opts.expected!;
    this.body = new PassThrough({ highWaterMark: 1024 * 1024 });
    const command = new PutObjectCommand({
      Bucket: this.store.bucket,
      Key: this.tempKey,
      Body: this.body,
      ContentLength: this.opts.size,
      ChecksumSHA256: Buffer.from(expected, 'hex').toString('base64'),
    });
    this.uploadDone = this.store.client.send(command, { abortSignal: this.request.signal });
    this.uploadDone.catch((e: unknown) => {
      if (!this.stream.destroyed) this.stream.destroy(this.store.wrap(e, `put blob ${expected} (after ${this.size} bytes)`));
    });
  }

  /** End of input in direct mode: send the held-back last chunk only if the bytes are right. */
  private finishDirect(): void {
    this.digestHex = parseDigest(this.hash.digest('hex'));
    if (this.digestHex === this.opts.expected && this.size === this.opts.size && this.body) {
      this.body.end(this.held);
    } else {
      // Cut the request short of its Content-Length (abort() then deletes the temporary key).
      this.request.abort(new HtvendError('DIGEST_MISMATCH', `${this.store.description}: blob ${this.opts.expected}: wrong bytes`));
      this.body?.destroy();
    }
    this.held = undefined;
  }

  private async takeSlot(): Promise<void> {
    const release = await this.store.multipartSlots.acquire(this.opts.signal);
    if (this.state === 'aborted') {
      release(); // aborted while waiting: abort() found no slot to give back
      throw new HtvendError('ABORTED', `${this.store.description}: upload aborted`);
    }
    this.releaseSlot = release;
  }

  private switchToMultipart(cb: (e?: Error | null) => void): void {
    if (this.state === 'aborted') return cb(new HtvendError('ABORTED', `${this.store.description}: upload aborted`));
    this.startMultipart();
    const head = this.head;
    this.head = [];
    for (const b of head.slice(0, -1)) this.body!.write(b);
    this.writeBody(head[head.length - 1]!, cb);
  }

  /** The PassThrough's buffer is the backpressure: wait for the uploader to drain it. */
  private writeBody(chunk: Buffer, cb: (e?: Error | null) => void): void {
    if (this.body!.write(chunk)) cb();
    else this.body!.once('drain', () => cb());
  }

  private startMultipart(): void {
    this.body = new PassThrough({ highWaterMark: 1024 * 1024 });
    this.upload = new Upload({
      client: this.store.client,
      params: { Bucket: this.store.bucket, Key: this.tempKey, Body: this.body },
      partSize: this.store.partSize,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
    });
    this.uploadDone = this.upload.done();
    // A failed upload stops the writer (else a write waiting for 'drain' would wait forever).
    this.uploadDone.catch((e: unknown) => {
      const what = this.opts.expected ? `upload of blob ${this.opts.expected}` : 'upload';
      if (!this.stream.destroyed) this.stream.destroy(this.store.wrap(e, `${what} (after ${this.size} bytes)`));
    });
  }

  async commit(): Promise<Digest> {
    if (this.state !== 'open') throw new HtvendError('INTERNAL', `${this.store.description}: commit() on a ${this.state} upload`);
    this.state = 'committing';
    const { bucket } = this.store;
    const signal = this.opts.signal;
    try {
      await finished(this.stream);
      const digest = this.digestHex ?? parseDigest(this.hash.digest('hex'));
      if (this.opts.expected && this.opts.expected !== digest) {
        throw new HtvendError('DIGEST_MISMATCH', `${this.store.description}: blob ${this.opts.expected}: content has sha256 ${digest}`);
      }
      if (this.direct && this.size !== this.opts.size) {
        throw new HtvendError('DIGEST_MISMATCH', `${this.store.description}: blob ${digest}: ${this.size} bytes, ${this.opts.size} announced`);
      }
      const key = this.store.keyOf(digest);
      if (!this.upload && !this.direct) {
        const data = Buffer.concat(this.head, this.headBytes);
        this.head = [];
        await this.store.client
          .send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: data, ContentLength: data.length }), { abortSignal: signal })
          .catch((e: unknown) => Promise.reject(this.store.wrap(e, `put blob ${digest}`)));
      } else {
        await this.uploadDone!.catch((e: unknown) => Promise.reject(this.store.wrap(e, `upload of blob ${digest} (${this.size} bytes)`)));
        if (!(await this.store.stat(digest, { signal }))) {
          if (this.size > MAX_COPY_BYTES) throw new HtvendError('STORE', `${this.store.description}: blob ${digest} is ${this.size} bytes; blobs over 5 GiB are not supported`);
          const source = `${bucket}/${this.tempKey}`.split('/').map(encodeURIComponent).join('/');
          await this.store.client
            .send(new CopyObjectCommand({ Bucket: bucket, Key: key, CopySource: source }), { abortSignal: signal })
            .catch((e: unknown) => Promise.reject(this.store.wrap(e, `copy blob ${digest} into place`)));
        }
        await this.deleteTemp();
      }
      this.state = 'committed';
      this.detach();
      this.releaseSlot?.();
      return digest;
    } catch (e) {
      await this.abort(e);
      throw e;
    }
  }

  async abort(_reason?: unknown): Promise<void> {
    if (this.state === 'committed' || this.state === 'aborted') return;
    this.state = 'aborted';
    this.detach();
    this.head = [];
    this.held = undefined;
    if (!this.stream.destroyed) this.stream.destroy();
    if (this.direct) {
      this.request.abort(new HtvendError('ABORTED', `${this.store.description}: upload aborted`));
      this.body?.destroy();
      await this.uploadDone?.catch(() => {});
      if (this.uploadDone) await this.deleteTemp();
    } else if (this.body && this.uploadDone) {
      // Failing the body makes lib-storage abort its multipart upload (leavePartsOnError: false).
      this.body.destroy(new Error('upload aborted'));
      await this.uploadDone.catch(() => {});
    }
    if (this.upload) await this.deleteTemp();
    this.releaseSlot?.();
  }

  private async deleteTemp(): Promise<void> {
    try {
      await this.store.client.send(new DeleteObjectCommand({ Bucket: this.store.bucket, Key: this.tempKey }), { abortSignal: AbortSignal.timeout(30_000) });
    } catch (e) {
      this.store.log.debug(`${this.store.description}: deleting temporary ${this.tempKey} failed: ${describeError(e)}`);
    }
  }
}

/**
 * Opens the S3 store for `bucket` / `prefix` (keys `<prefix><sha256 hex>`, as the Go tool).
 * No request is made until the first operation.
 */
export async function openS3Store(loc: S3Location, opts: S3StoreOptions = {}): Promise<S3Store> {
  const env = opts.env ?? process.env;
  if (!loc.bucket) throw new HtvendError('USAGE', '--blobs-bucket is required with --blobs-backend s3');
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1';
  const ca = await loadTrustedRoots({ env, signal: opts.signal });
  if (env.AWS_CA_BUNDLE) ca.push(...pemCertificates(await readFile(env.AWS_CA_BUNDLE, 'latin1').catch(() => '')));
  const config: S3ClientConfig = {
    region,
    endpoint,
    forcePathStyle: endpoint !== undefined,
    // The SDK default (aws-chunked framing with trailing CRC) is stored verbatim by some
    // S3-compatible servers (s3rver among them): ask for checksums only where S3 requires them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
    // Else the SDK prints to the console when a streamed upload is cut (abort, wrong bytes).
    logger: { trace: () => {}, debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
    requestHandler: {
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 64, ca }),
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets: 64 }),
      connectionTimeout: 30_000,
      requestTimeout: 300_000,
    },
  };
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    config.credentials = { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN || undefined };
  }
  const partSize = Math.max(opts.partSize ?? S3_PART_SIZE, 5 * 1024 * 1024);
  const client = new S3Client(config);
  const where = endpoint ?? `s3.${region}.amazonaws.com`;
  return new S3Store(client, loc.bucket!, loc.prefix ?? '', where, opts.log ?? silentLogger, partSize);
}

