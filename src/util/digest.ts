/**
 * sha256 digests as a checked type. A `Digest` is only made by `parseDigest()` or by hashing,
 * so any value of this type is known to be well-formed (64 lowercase hex chars).
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { HtvendError } from './errors.js';

declare const digestBrand: unique symbol;
/** Lowercase 64-char sha256 hex, no algorithm prefix (the assets.json / blob-dir form). */
export type Digest = string & { readonly [digestBrand]: true };

const HEX64 = /^[0-9a-f]{64}$/;

/** Accepts `abc…` or `sha256:abc…`; anything else is an INPUT error naming `where`. */
export function parseDigest(s: string, where = 'digest'): Digest {
  const hex = s.startsWith('sha256:') ? s.slice(7) : s;
  if (!HEX64.test(hex)) {
    throw new HtvendError('INPUT', `${where}: invalid sha256 ${JSON.stringify(s)} (want 64 lowercase hex characters)`);
  }
  return hex as Digest;
}

export function isDigest(s: string): s is Digest {
  return HEX64.test(s);
}

/** `sha256:<hex>`, the OCI form. */
export function ociDigest(d: Digest): string {
  return `sha256:${d}`;
}

export function sha256Hex(data: string | Uint8Array): Digest {
  return createHash('sha256').update(data).digest('hex') as Digest;
}

/** The digest of the empty blob. */
export const EMPTY_DIGEST = sha256Hex('');

/**
 * Pass-through stream that hashes and counts what flows through it.
 * `digest()` is valid after 'end'/'finish'.
 */
export class HashingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private result: Digest | undefined;
  size = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.result = this.hash.digest('hex') as Digest;
    cb();
  }

  digest(): Digest {
    if (!this.result) throw new HtvendError('INTERNAL', 'digest() read before the stream ended');
    return this.result;
  }
}

/**
 * Pass-through stream that fails *before* emitting the last chunk if the bytes do not hash to
 * `expected` (and, if given, do not have `expectedSize` bytes). Because the final chunk is held
 * back until verified, a consumer never sees a complete wrong body.
 */
export class VerifyingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private pending: Buffer | undefined;
  private size = 0;

  constructor(
    private readonly expected: Digest,
    private readonly what: string,
    private readonly expectedSize?: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    if (this.expectedSize !== undefined && this.size > this.expectedSize) {
      cb(this.mismatch(`more than ${this.expectedSize} bytes`));
      return;
    }
    const prev = this.pending;
    this.pending = chunk;
    cb(null, prev);
  }

  override _flush(cb: TransformCallback): void {
    const got = this.hash.digest('hex');
    if (got !== this.expected) return cb(this.mismatch(`sha256 ${got}`));
    if (this.expectedSize !== undefined && this.size !== this.expectedSize) {
      return cb(this.mismatch(`${this.size} bytes, expected ${this.expectedSize}`));
    }
    if (this.pending) this.push(this.pending);
    cb();
  }

  private mismatch(detail: string): HtvendError {
    return new HtvendError('DIGEST_MISMATCH', `${this.what}: content does not match sha256 ${this.expected} (got ${detail})`);
  }
}
