/**
 * Recording (SPEC §3): one upstream GET per URL at a time, its 200 body streamed to the client
 * and into `store.put()` at once (never buffered whole), then the entry written to the
 * manifest. Concurrent requests for the same URL wait for that one fetch and are replayed.
 *
 * The first client is fed straight from the upstream stream ("tee") when it asked for exactly
 * what is being recorded: a plain GET whose Accept-Encoding allows the response's coding.
 * Otherwise (HEAD, Range, a refused coding) it waits for the commit and is replayed, so it
 * gets exactly what an offline replay would give it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AssetEntry, AssetLookup } from '../manifest/types.js';
import type { BlobWriter } from '../store/store.js';
import type { UpstreamClient, UpstreamResponse } from '../upstream/client.js';
import { fetchForRecording } from '../upstream/record-fetch.js';
import { HtvendError, describeError, isAbortError } from '../util/errors.js';
import { acceptsCoding } from './encoding.js';
import { first, pickRecordedHeaders, responseHeadersForClient } from './headers.js';
import { badGateway, relayResponse } from './passthrough.js';
import { replayEntry, type ReplayContext } from './replay.js';
import { BothSidesGone, teeRawBody, teeStream, type TeeSides } from './record-tee.js';
import type { RequestFacts } from './types.js';

export interface RecordContext extends ReplayContext {
  upstream: UpstreamClient;
  assets: AssetLookup;
  cacheHeaders: readonly string[];
}

interface Recorded {
  entry: AssetEntry;
  size: number;
}

interface JobResult {
  recorded?: Recorded | undefined;
  /** True when the first client's response has been fully handled by the job. */
  servedPrimary: boolean;
}

export class Recorder {
  private readonly inflight = new Map<string, Promise<Recorded | undefined>>();
  /** Keys recorded by this proxy run (--force-refresh replays only these). */
  readonly recordedKeys = new Set<string>();

  constructor(private readonly ctx: RecordContext) {}

  /** Store failures of this run (SPEC §11), one line each: store, URL, cause. */
  readonly storeFailures: string[] = [];

  /** Every recording in progress, for close() to wait on. */
  pending(): Promise<unknown>[] {
    return [...this.inflight.values()];
  }

  /** Keys of the recordings in progress, for the bounded exit's message. */
  pendingKeys(): string[] {
    return [...this.inflight.keys()];
  }

  private storeFailed(key: string, e: unknown): void {
    const store = this.ctx.store.description;
    // The store's own errors already name it: say so once.
    const cause = e instanceof HtvendError ? e.message.replace(` in ${store}`, '') : describeError(e);
    const line = `${store}: storing ${key} failed: ${cause}`;
    this.storeFailures.push(line);
    this.ctx.log.error(line);
  }

  async serve(req: IncomingMessage, res: ServerResponse, f: RequestFacts): Promise<void> {
    const running = this.inflight.get(f.key);
    if (running) {
      this.ctx.log.debug(`${f.method} ${f.key}: waiting for the recording already in progress`);
      const rec = await running;
      if (rec) return replayEntry(this.ctx, req, res, rec.entry, rec.size, f.key);
      // That fetch did not produce a recording (non-200, failure): fetch for this client.
      return this.serveUnrecorded(req, res, f);
    }
    let settle!: (r: Recorded | undefined) => void;
    const shared = new Promise<Recorded | undefined>((r) => (settle = r));
    this.inflight.set(f.key, shared);
    let result: JobResult;
    try {
      result = await this.record(req, res, f, settle);
    } catch (e) {
      this.ctx.log.warn(`recording ${f.key} failed: ${describeError(e)}`);
      result = { servedPrimary: false };
    } finally {
      settle(undefined); // no-op if the job already settled
      this.inflight.delete(f.key);
    }
    if (result.servedPrimary) return;
    if (result.recorded) return replayEntry(this.ctx, req, res, result.recorded.entry, result.recorded.size, f.key);
    badGateway(res, `could not record ${f.key} (see htvend log)`);
  }

  /** Fetches like a recording would, but only relays the response. */
  private async serveUnrecorded(req: IncomingMessage, res: ServerResponse, f: RequestFacts): Promise<void> {
    try {
      const up = await fetchForRecording(this.ctx.upstream, f.url, { headers: req.headers, signal: this.ctx.signal });
      await relayResponse(this.ctx, req, res, up);
    } catch (e) {
      badGateway(res, describeError(e));
    }
  }

  private async record(req: IncomingMessage, res: ServerResponse, f: RequestFacts, settle: (r: Recorded | undefined) => void): Promise<JobResult> {
    const { ctx } = this;
    let up: UpstreamResponse;
    try {
      up = await fetchForRecording(ctx.upstream, f.url, { headers: req.headers, signal: ctx.signal });
    } catch (e) {
      if (!isAbortError(e)) ctx.log.warn(`GET ${f.key}: ${describeError(e)}`);
      badGateway(res, describeError(e));
      return { servedPrimary: true };
    }
    if (up.status !== 200) {
      ctx.log.info(`GET ${f.key}: upstream answered ${up.status}, passed on unrecorded`);
      ctx.counters.add('htvend_passthrough_total');
      settle(undefined); // waiters fetch for themselves rather than wait for this body
      await relayResponse(ctx, req, res, up);
      return { servedPrimary: true };
    }

    const coding = first(up.headers['content-encoding']);
    const tee = req.method === 'GET' && req.headers.range === undefined && (!coding || acceptsCoding(first(req.headers['accept-encoding']), coding));
    const lengthHeader = first(up.headers['content-length']);
    const size = lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;

    let writer: BlobWriter | undefined;
    try {
      writer = await ctx.store.put({ signal: ctx.signal, size });
    } catch (e) {
      if (!tee) {
        if (up.raw) up.raw.destroy();
        else up.body.destroy();
        this.storeFailed(f.key, e);
        return { servedPrimary: false };
      }
      // The client still gets the bytes it asked for; only the recording is lost.
      this.storeFailed(f.key, e);
    }

    const sides: TeeSides = {
      writer,
      client: tee ? res : undefined,
      clientGone: !tee,
      received: 0,
      storeError: undefined,
      dropWriter: async (e: unknown) => {
        const w = sides.writer;
        sides.writer = undefined;
        await w?.abort(e);
        this.storeFailed(f.key, e);
      },
    };
    writer?.stream.on('error', (e) => (sides.storeError ??= e));
    let clientEnded = false;
    const discardBody = () => (up.raw ? up.raw.destroy() : up.body.destroy());
    try {
      if (tee) {
        res.on('error', () => {}); // a vanished client is handled by 'close' below
        res.once('close', () => (sides.clientGone = true));
        res.writeHead(200, responseHeadersForClient(up.headers));
      }
      await (up.raw ? teeRawBody(up.raw, sides) : teeStream(up.body as AsyncIterable<Buffer>, sides));
      // The client has every byte and they were the upstream's: end its response now rather
      // than after the store's fsync (close() still waits for the commit).
      if (tee && !sides.clientGone) {
        clientEnded = true;
        res.end();
      }
      if (sides.writer) {
        const w = sides.writer;
        // end()'s callback gets the error of a stream that already failed (ENOSPC on an
        // earlier write), which 'error' has reported before we listen here.
        await new Promise<void>((resolve, reject) => {
          w.stream.once('error', reject);
          w.stream.end((err?: Error | null) => (err ?? sides.storeError ? reject(err ?? sides.storeError) : resolve()));
        }).catch(sides.dropWriter);
      }
    } catch (e) {
      const n = sides.received;
      ctx.counters.add('htvend_upstream_bytes_total', n);
      ctx.counters.add('htvend_record_failed_total');
      discardBody();
      await sides.writer?.abort(e);
      if (!(e instanceof BothSidesGone)) ctx.log.warn(`GET ${f.key}: not recorded, transfer failed after ${n} bytes: ${describeError(e)}`);
      // An upstream failure must not look like a complete response to the client.
      if (tee && !clientEnded) res.destroy();
      return { servedPrimary: tee };
    }

    const n = sides.received;
    ctx.counters.add('htvend_upstream_bytes_total', n);
    writer = sides.writer;
    if (!writer) {
      ctx.counters.add('htvend_record_failed_total');
      return { servedPrimary: tee };
    }
    let recorded: Recorded | undefined;
    try {
      const digest = await writer.commit();
      const entry: AssetEntry = { Sha256: digest, Headers: pickRecordedHeaders(up.headers, ctx.cacheHeaders) };
      ctx.assets.put(f.key, entry);
      this.recordedKeys.add(f.key);
      ctx.counters.add('htvend_recorded_total');
      ctx.log.info(`recorded ${f.key} (sha256 ${digest}, ${n} bytes)`);
      recorded = { entry, size: n };
    } catch (e) {
      ctx.counters.add('htvend_record_failed_total');
      await writer.abort(e);
      // A size mismatch is the upstream's fault (it sent fewer bytes than it announced).
      if (e instanceof HtvendError && e.code === 'DIGEST_MISMATCH') ctx.log.warn(`GET ${f.key}: not recorded: ${describeError(e)}`);
      else this.storeFailed(f.key, e);
    }
    settle(recorded);
    return { recorded, servedPrimary: tee };
  }
}
