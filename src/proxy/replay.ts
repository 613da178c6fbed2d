/**
 * Serving a recorded entry from the blob store (SPEC §3): recorded headers, Content-Length
 * from the blob, HEAD without a body, single Range slices (206/416), Content-Encoding decoded
 * for clients that refuse it, and the bytes verified as they stream: on a mismatch the
 * connection is destroyed so the client never sees a complete wrong response.
 */
import type { IncomingMessage, ServerResponse, OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AssetEntry } from '../manifest/types.js';
import { canReadRange, type BlobStore } from '../store/store.js';
import type { Logger } from '../util/log.js';
import { describeError, isHtvendError } from '../util/errors.js';
import { acceptsCoding, decoderFor } from './encoding.js';
import { parseRange } from './range.js';
import { first } from './headers.js';
import type { Counters } from './counters.js';

export interface ReplayContext {
  store: BlobStore;
  log: Logger;
  counters: Counters;
  signal?: AbortSignal | undefined;
  /** Told about every replay cut because its blob is corrupt (for the exit summary). */
  onCorrupt?: ((key: string, digest: string) => void) | undefined;
}

/** Bytes `[start, end]` of `src`; stops reading (and releases `src`) once past `end`. */
async function* sliceOf(src: Readable, start: number, end: number): AsyncGenerator<Buffer> {
  let pos = 0;
  try {
    for await (const chunk of src as AsyncIterable<Buffer>) {
      const from = Math.max(start - pos, 0);
      const to = Math.min(end + 1 - pos, chunk.length);
      if (to > from) yield chunk.subarray(from, to);
      pos += chunk.length;
      if (pos > end) return;
    }
  } finally {
    src.destroy();
  }
}

/**
 * `src.pipe(res)` with errors from either side settled once. Used instead of
 * stream.pipeline() on the hot path: pipeline makes an AbortController per call and aborts it
 * at the end (a DOMException with a stack trace), measurable over thousands of small replies.
 */
function pipeToResponse(src: Readable, res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      src.destroy();
      res.destroy();
      reject(e);
    };
    src.once('error', fail);
    res.once('error', fail);
    res.once('close', () => {
      if (!res.writableFinished) fail(new Error('client connection closed'));
    });
    res.once('finish', () => {
      if (settled) return;
      settled = true;
      resolve();
    });
    src.pipe(res);
  });
}

/** Bodies up to this size are collected and written with the headers in one write. */
const SMALL_REPLY_BYTES = 64 * 1024;

/**
 * A small body (at most SMALL_REPLY_BYTES, so bounded memory) read whole, then sent with its
 * headers in one write: one TLS record train instead of a pipe's header + chunk writes. The
 * store's verification has finished before the first byte goes out.
 */
function sendWhole(src: Readable, res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    src.on('data', (c: Buffer) => chunks.push(c));
    src.once('error', (e) => {
      src.destroy();
      reject(e);
    });
    src.once('end', () => {
      res.once('error', reject);
      // 'close' too: a client gone before the end never gets 'finish'.
      res.once('close', () => (res.writableFinished ? resolve() : reject(new Error('client connection closed'))));
      res.end(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), () => resolve());
    });
  });
}

/** If-Range (RFC 9110 §13.1.5): the range applies only if the validator matches the recording. */
function ifRangeMatches(req: IncomingMessage, entry: AssetEntry): boolean {
  const v = first(req.headers['if-range']);
  if (!v) return true;
  return v === entry.Headers['Etag'] || v === entry.Headers['ETag'] || v === entry.Headers['Last-Modified'];
}

/** Validators are recorded for `htvend outdated` only (headers.ts VALIDATOR_HEADERS). */
const NOT_REPLAYED = new Set(['content-length', 'etag', 'last-modified']);

function recordedHeaders(entry: AssetEntry): OutgoingHttpHeaders {
  const h: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(entry.Headers)) {
    if (!NOT_REPLAYED.has(k.toLowerCase())) h[k] = v;
  }
  return h;
}

/**
 * Answers `req` from `entry` (whose blob has `size` bytes). Never throws: failures end the
 * response. A replay cut off because the blob is corrupt is not counted as replayed.
 */
export async function replayEntry(ctx: ReplayContext, req: IncomingMessage, res: ServerResponse, entry: AssetEntry, size: number, key = req.url ?? ''): Promise<void> {
  const digest = entry.Sha256;
  const headers = recordedHeaders(entry);
  const isHead = req.method === 'HEAD';
  const coding = Object.entries(entry.Headers).find(([k]) => k.toLowerCase() === 'content-encoding')?.[1];
  const decoder = coding && !acceptsCoding(first(req.headers['accept-encoding']), coding) ? decoderFor(coding) : undefined;
  // Counted up front (a client may read the whole body before 'finish' is seen here), and
  // taken back below if the blob turns out to be corrupt.
  ctx.counters.add('htvend_replayed_total');

  let status = 200;
  let body: () => Promise<Readable>;
  if (decoder) {
    // Decoded size is unknown up front: chunked, no Content-Length, no ranges.
    for (const k of Object.keys(headers)) if (k.toLowerCase() === 'content-encoding') delete headers[k];
    body = () => ctx.store.get(digest, { signal: ctx.signal });
  } else {
    headers['Accept-Ranges'] = 'bytes';
    const range = ifRangeMatches(req, entry) ? parseRange(first(req.headers.range), size) : ({ kind: 'none' } as const);
    if (range.kind === 'unsatisfiable') {
      res.writeHead(416, { 'Content-Range': `bytes */${size}`, 'Content-Length': '0' }).end();
      return;
    }
    if (range.kind === 'range') {
      status = 206;
      headers['Content-Range'] = `bytes ${range.start}-${range.end}/${size}`;
      headers['Content-Length'] = String(range.end - range.start + 1);
      // A slice cannot be checked against the whole blob's digest (store.ts RangeReadableStore).
      body = async () =>
        canReadRange(ctx.store)
          ? ctx.store.getRange(digest, range.start, range.end, { signal: ctx.signal })
          : Readable.from(sliceOf(await ctx.store.get(digest, { signal: ctx.signal }), range.start, range.end));
    } else {
      headers['Content-Length'] = String(size);
      body = () => ctx.store.get(digest, { signal: ctx.signal });
    }
  }

  if (isHead) {
    decoder?.destroy();
    res.writeHead(status, headers).end();
    return;
  }
  let src: Readable;
  try {
    src = await body();
  } catch (e) {
    ctx.log.error(`cannot read blob ${digest} for ${req.method} ${req.url ?? ''}: ${describeError(e)}`);
    decoder?.destroy();
    ctx.counters.add('htvend_replayed_total', -1);
    res.writeHead(502, { 'Content-Type': 'text/plain' }).end(`htvend: cannot read blob ${digest}\n`);
    return;
  }
  res.writeHead(status, headers);
  try {
    const length = Number(headers['Content-Length']);
    await (decoder ? pipeline(src, decoder, res) : length <= SMALL_REPLY_BYTES ? sendWhole(src, res) : pipeToResponse(src, res));
    ctx.counters.add('htvend_replayed_bytes_total', status === 200 && !decoder ? size : 0);
  } catch (e) {
    // pipeline destroyed the response and with it the socket: the client sees a cut body.
    if (isHtvendError(e) && e.code === 'DIGEST_MISMATCH') {
      ctx.counters.add('htvend_integrity_failed_total');
      ctx.counters.add('htvend_replayed_total', -1);
      ctx.onCorrupt?.(key, digest);
      // The stores' messages name the blob and where it is; say it once.
      const detail = e.message.includes(digest) ? e.message : `blob ${digest} in ${ctx.store.description}: ${e.message}`;
      ctx.log.error(`replay of ${key} cut off, the blob is corrupt: ${detail}`);
    } else {
      ctx.log.debug(`replay of blob ${digest} ended early: ${describeError(e)}`);
    }
    res.destroy();
  }
}
