/**
 * Blob uploads (distribution-spec "Pushing blobs"). Bytes are buffered up to one chunk
 * (default 8 MiB); a blob that ends within its first chunk goes up monolithically
 * (one POST ?digest= with the bytes, one round trip), a bigger one as PATCH requests of one chunk each
 * then a PUT ?digest= carrying the rest. So memory is bounded by the chunk size and a 1 GiB
 * blob costs ~130 requests rather than one per write. A blob whose size is announced and
 * bigger than one chunk (export knows it) is instead streamed in one chunked-encoding PATCH
 * with no chunk buffer (docker's "stream upload", which registries accept from `docker push`);
 * its digest and length are checked before the closing PUT, and the registry checks the digest
 * again there. Wrong input still ends that PATCH cleanly, so the session can be DELETEd.
 * The digest is only known at the end,
 * which the protocol allows: it is named on the closing PUT. Abort or failure DELETEs the
 * session so the registry drops the partial data.
 */
import { PassThrough, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { HtvendError, describeError } from '../util/errors.js';
import { parseDigest, writerSha256, type Digest, type Sha256 } from '../util/digest.js';
import type { RegistryClient } from './client.js';

/** 8 MiB: ~130 requests per GiB, and 8 concurrent uploads stay under 100 MB of buffers. */
export const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;

export interface UploadResult {
  digest: Digest;
  size: number;
}

type State = 'open' | 'committing' | 'committed' | 'aborted';

export class BlobUpload {
  /** Write the blob here, then end it and call `commit()`. */
  readonly stream: Writable;
  private readonly hash: Sha256;
  private size = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes already sent with PATCH. */
  private offset = 0;
  private location: URL | undefined;
  private state: State = 'open';
  private readonly controller = new AbortController();
  private readonly signal: AbortSignal;
  private detach: () => void = () => {};
  private releaseSlot: (() => void) | undefined;
  /** The last PATCH sent (abort waits for it to land). */
  private inflight: Promise<void> | undefined;

  /** Streaming mode (announced big blob): the body of the one PATCH. */
  private body: PassThrough | undefined;

  /** What the messages call this blob: its digest when known up front. */
  private readonly label: string;

  constructor(
    private readonly client: RegistryClient,
    private readonly chunkSize: number,
    userSignal?: AbortSignal,
    expected?: Digest,
    /** Announced size: a blob bigger than one chunk waits for a slot, then streams in one PATCH. */
    private readonly sizeHint?: number,
    /** PutOptions.verifiedSource: the bytes are known to hash to `expected` (not hashed again). */
    verifiedSource?: boolean,
  ) {
    this.hash = writerSha256({ expected, verifiedSource });
    this.label = expected ? `blob sha256:${expected}` : 'blob';
    this.signal = userSignal ? AbortSignal.any([userSignal, this.controller.signal]) : this.controller.signal;
    if (userSignal) {
      const onAbort = () => void this.abort(userSignal.reason);
      userSignal.addEventListener('abort', onAbort, { once: true });
      // Exports run thousands of uploads under one signal: do not leave a listener behind.
      this.detach = () => userSignal.removeEventListener('abort', onAbort);
    }
    this.stream = new Writable({
      highWaterMark: 1024 * 1024,
      write: (chunk: Buffer, _enc, cb) => {
        if (!this.releaseSlot && (this.sizeHint ?? 0) > this.chunkSize) {
          this.takeSlot().then(() => this.acceptStreamed(chunk, cb), cb);
          return;
        }
        if (this.releaseSlot && this.sizeHint !== undefined && this.sizeHint > this.chunkSize) return this.acceptStreamed(chunk, cb);
        this.accept(chunk, cb);
      },
      final: (cb) => {
        this.body?.end();
        cb();
      },
    });
  }

  private accept(chunk: Buffer, cb: (e?: Error | null) => void): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < this.chunkSize) return cb();
    // Holding the callback until the PATCH is done is the backpressure. A blob that turns out
    // bigger than one chunk takes one of the client's large-upload slots (bounded memory).
    const send = async () => {
      if (!this.releaseSlot) await this.takeSlot();
      this.inflight = this.sendChunk();
      await this.inflight;
    };
    send().then(
      () => cb(),
      (e: unknown) => cb(this.inContext(e)),
    );
  }

  /** Streaming mode: bytes go straight into the PATCH body; its buffer is the backpressure. */
  private acceptStreamed(chunk: Buffer, cb: (e?: Error | null) => void): void {
    if (this.state === 'aborted') return cb(new HtvendError('ABORTED', `${this.client.description}: upload aborted`));
    this.hash.update(chunk);
    this.size += chunk.length;
    if (this.size > this.sizeHint!) {
      // End the PATCH cleanly (a cut one leaves a session distribution 2.8 will not DELETE).
      this.body?.end();
      return cb(new HtvendError('DIGEST_MISMATCH', `${this.client.description}: ${this.label}: more than the announced ${this.sizeHint} bytes`));
    }
    if (!this.body) this.startStream();
    if (this.body!.write(chunk)) cb();
    else this.body!.once('drain', () => cb());
  }

  private startStream(): void {
    const body = new PassThrough({ highWaterMark: 1024 * 1024 });
    this.body = body;
    this.inflight = (async () => {
      this.location = await this.start();
      const res = await this.client.send('PATCH', this.location, {
        access: 'push',
        signal: this.signal,
        headers: { 'content-type': 'application/octet-stream' },
        body,
      });
      if (res.statusCode !== 202) throw await this.client.httpError(res, `upload of ${this.label}`);
      await res.body.dump();
      this.offset = this.size;
      this.location = this.nextLocation(res.headers.location, `upload of ${this.label}`);
    })();
    // A failed PATCH stops the writer (else a write waiting for 'drain' would wait forever).
    this.inflight.catch((e: unknown) => {
      if (!this.stream.destroyed) this.stream.destroy(this.inContext(e));
    });
  }

  private async takeSlot(): Promise<void> {
    const release = await this.client.largeUploads.acquire(this.signal);
    if (this.state === 'aborted') {
      release();
      throw new HtvendError('ABORTED', `${this.client.description}: upload aborted`);
    }
    this.releaseSlot = release;
  }

  /**
   * Finishes the upload once the stream has ended: the registry checks the digest and makes
   * the blob visible. With `expected`, a different digest aborts the upload instead.
   */
  async commit(expected?: Digest): Promise<UploadResult> {
    if (this.state !== 'open') throw new HtvendError('INTERNAL', `${this.client.description}: commit() on a ${this.state} upload`);
    this.state = 'committing';
    try {
      await finished(this.stream);
      if (this.body && this.size !== this.sizeHint) throw new HtvendError('DIGEST_MISMATCH', `${this.client.description}: ${this.label}: ${this.size} bytes, ${this.sizeHint} announced`);
      if (this.body) await this.inflight;
      const digest = parseDigest(this.hash.digest('hex'));
      if (expected && expected !== digest) {
        throw new HtvendError('DIGEST_MISMATCH', `${this.client.description}: upload of blob sha256:${expected}: content has sha256:${digest}`);
      }
      const body = this.takePending().chunks;
      if (!this.location) {
        // Whole blob in hand and its digest checked: one monolithic POST ?digest= (spec
        // "single POST"), one round trip instead of POST + PUT. A registry that ignores the
        // digest opens a session (202) instead; the PUT below then finishes it.
        const post = this.client.url('blobs/uploads/');
        post.searchParams.set('digest', `sha256:${digest}`);
        const res = await this.client.send('POST', post, {
          access: 'push',
          signal: this.signal,
          headers: { 'content-type': 'application/octet-stream' },
          body,
        });
        if (res.statusCode === 201) {
          await res.body.dump();
          return this.done(digest);
        }
        if (res.statusCode !== 202) throw await this.client.httpError(res, `upload of blob sha256:${digest} (${this.size} bytes)`);
        await res.body.dump();
        this.location = this.nextLocation(res.headers.location, 'start blob upload');
      }
      const url = new URL(this.location);
      url.searchParams.set('digest', `sha256:${digest}`);
      const res = await this.client.send('PUT', url, {
        access: 'push',
        signal: this.signal,
        headers: { 'content-type': 'application/octet-stream' },
        body,
      });
      if (res.statusCode !== 201 && res.statusCode !== 204) throw await this.client.httpError(res, `upload of blob sha256:${digest} (${this.size} bytes)`);
      await res.body.dump();
      return this.done(digest);
    } catch (e) {
      await this.abort(e);
      throw this.inContext(e);
    }
  }

  private done(digest: Digest): UploadResult {
    this.state = 'committed';
    this.detach();
    this.releaseSlot?.();
    return { digest, size: this.size };
  }

  /** Adds which blob and how far the upload got to a failure's message. */
  private inContext(e: unknown): Error {
    if (!(e instanceof HtvendError) || e.code === 'ABORTED' || e.code === 'DIGEST_MISMATCH' || e.message.includes(' while uploading ')) return e as Error;
    const err = new HtvendError(e.code, `${e.message} while uploading ${this.label} (${this.offset} bytes sent)`, { cause: e.cause ?? e, hint: e.hint });
    return err;
  }

  /** Discards the upload and its registry session. Idempotent; never throws. */
  async abort(reason?: unknown): Promise<void> {
    if (this.state === 'committed' || this.state === 'aborted') return;
    this.state = 'aborted';
    this.detach();
    this.pending = [];
    // A streamed PATCH still waiting for bytes cannot land: cut it. An ended one lands below.
    if (this.body && !this.body.writableEnded) {
      this.controller.abort(reason);
      this.body.destroy();
    }
    // No error argument: nobody may be listening for 'error'; a pipeline still sees a premature close.
    if (!this.stream.destroyed) this.stream.destroy();
    if (this.inflight && !this.signal.aborted) {
      // Let a chunk in flight land rather than cut it: a registry whose session state no longer
      // matches the bytes it received (distribution 2.8) refuses to DELETE the session.
      const settle = new Promise((r) => setTimeout(r, 15_000).unref());
      await Promise.race([this.inflight.catch(() => {}), settle]);
    }
    this.controller.abort(reason);
    this.releaseSlot?.();
    const location = this.location;
    this.location = undefined;
    if (!location) return;
    try {
      // A fresh signal: the upload's own one is aborted by now.
      const res = await this.client.send('DELETE', location, { access: 'delete', signal: AbortSignal.timeout(30_000) });
      await res.body.dump();
      this.client.log.debug(`${this.client.description}: DELETE upload session: HTTP ${res.statusCode}`);
    } catch (e) {
      this.client.log.debug(`${this.client.description}: DELETE upload session failed: ${describeError(e)}`);
    }
  }

  /** The buffered bytes as a list (sent without being joined into one more copy). */
  private takePending(): { chunks: Buffer[]; length: number } {
    const taken = { chunks: this.pending, length: this.pendingBytes };
    this.pending = [];
    this.pendingBytes = 0;
    return taken;
  }

  private async start(): Promise<URL> {
    const res = await this.client.send('POST', this.client.url('blobs/uploads/'), { access: 'push', signal: this.signal });
    if (res.statusCode !== 202) throw await this.client.httpError(res, 'start blob upload');
    await res.body.dump();
    return this.nextLocation(res.headers.location, 'start blob upload');
  }

  private nextLocation(v: string | string[] | undefined, what: string): URL {
    const loc = Array.isArray(v) ? v[0] : v;
    if (!loc) throw this.client.fail(`${what}: the registry sent no Location for the upload session`);
    return new URL(loc, this.client.url(''));
  }

  private async sendChunk(): Promise<void> {
    if (this.state === 'aborted') throw new HtvendError('ABORTED', `${this.client.description}: upload aborted`);
    if (!this.location) this.location = await this.start();
    const { chunks, length } = this.takePending();
    const res = await this.client.send('PATCH', this.location, {
      access: 'push',
      signal: this.signal,
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${this.offset}-${this.offset + length - 1}` },
      body: chunks,
    });
    if (res.statusCode !== 202) throw await this.client.httpError(res, `upload chunk at byte ${this.offset} of ${this.label}`);
    await res.body.dump();
    this.offset += length;
    this.location = this.nextLocation(res.headers.location, `upload chunk at byte ${this.offset}`);
  }
}
