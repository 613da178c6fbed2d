/**
 * Test-only in-memory BlobStore (the filesystem store lives in src/store/dir/). Holds blobs
 * as chunk lists; `get()` verifies like a real backend; `corrupt()` flips a byte so tests can
 * exercise replay integrity. Set `rangeReads` to expose the optional getRange ability.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import type { BlobStore, BlobWriter, PutOptions, IoOptions, BlobStat } from '../../src/store/store.js';
import { VerifyingStream, type Digest } from '../../src/util/digest.js';
import { HtvendError } from '../../src/util/errors.js';

export class MemoryStore implements BlobStore {
  readonly description = 'memory store';
  readonly blobs = new Map<string, Buffer>();
  puts = 0;
  aborts = 0;

  constructor(private readonly rangeReads = false) {
    if (rangeReads) {
      (this as unknown as { getRange: unknown }).getRange = async (d: Digest, start: number, end: number) => Readable.from([this.blobs.get(d)!.subarray(start, end + 1)]);
    }
  }

  async stat(d: Digest, _o?: IoOptions): Promise<BlobStat | undefined> {
    const b = this.blobs.get(d);
    return b ? { size: b.length } : undefined;
  }

  async get(d: Digest, _o?: IoOptions): Promise<Readable> {
    const b = this.blobs.get(d);
    if (!b) throw new HtvendError('NOT_FOUND', `blob ${d} not in ${this.description}`);
    // Several chunks, so a mismatch is detected before the last one.
    const chunks: Buffer[] = [];
    for (let i = 0; i < b.length; i += 16384) chunks.push(b.subarray(i, i + 16384));
    return Readable.from(chunks).pipe(new VerifyingStream(d, `blob ${d}`, b.length));
  }

  async put(opts: PutOptions = {}): Promise<BlobWriter> {
    this.puts++;
    const chunks: Buffer[] = [];
    const hash = createHash('sha256');
    let aborted = false;
    const stream = new Writable({
      highWaterMark: 1 << 20,
      write(c: Buffer, _e, cb) {
        chunks.push(c);
        hash.update(c);
        cb();
      },
    });
    const done = new Promise<void>((res, rej) => {
      stream.on('finish', res);
      stream.on('error', rej);
    });
    done.catch(() => {});
    return {
      stream,
      commit: async () => {
        if (aborted) throw new HtvendError('STORE', 'commit after abort');
        await done;
        const d = hash.digest('hex') as Digest;
        if (opts.expected && opts.expected !== d) throw new HtvendError('DIGEST_MISMATCH', `expected ${opts.expected}, got ${d}`);
        this.blobs.set(d, Buffer.concat(chunks));
        return d;
      },
      abort: async () => {
        if (!aborted) this.aborts++;
        aborted = true;
        stream.destroy();
      },
    };
  }

  /** Flips one byte of a stored blob (keeps its key). */
  corrupt(d: Digest): void {
    const b = this.blobs.get(d)!;
    b[b.length - 1] = b[b.length - 1]! ^ 0xff;
  }

  /** Puts a buffer, returns its digest. */
  async add(data: Buffer | string): Promise<Digest> {
    const w = await this.put();
    await pipeline(Readable.from([Buffer.from(data)]), w.stream);
    return w.commit();
  }
}
