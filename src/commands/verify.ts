/**
 * `htvend verify [--fetch|--repair]` (SPEC §2, §6, §8): every blob assets.json names is in the
 * store and hashes to its sha256.
 *
 * What the Go tool does, and what we do:
 * - plain verify: missing and wrong blobs are errors naming the URL (same).
 * - `--fetch`: missing blobs are downloaded again; bytes that no longer match assets.json are an
 *   error naming the URL and both digests (same). We also re-download blobs whose stored copy
 *   is corrupt (Go only reports those), since that is what a user running --fetch wants.
 * - `--repair` (implies --fetch): the re-downloaded content is accepted even if it changed, and
 *   the entry (sha + `--cache-header` headers) is rewritten in assets.json (same); other entries
 *   are kept untouched.
 * Re-downloads use `fetchForRecording()`, the proxy's own recording GET, so they get the bytes
 * the proxy stored (same Content-Encoding, registry bearer tokens, redirects followed).
 */
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import type { BlobStore } from '../store/store.js';
import { canDelete } from '../store/store.js';
import { Manifest } from '../manifest/manifest.js';
import type { AssetEntry } from '../manifest/types.js';
import { HashingStream, type Digest } from '../util/digest.js';
import { HtvendError, describeError, isAbortError, isHtvendError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { redactUrl } from '../util/redact.js';
import { mapPool, withRetry, isTransient, type RetryOptions } from '../util/pool.js';
import { createProgress, type Progress } from '../util/progress.js';
import { createUpstreamClient, type UpstreamClient } from '../upstream/client.js';
import { fetchForRecording, headersForRefetch } from '../upstream/record-fetch.js';
import { pickRecordedHeaders } from '../proxy/headers.js';

export interface VerifyOptions {
  /** `-m/--manifest` */
  manifestPath: string;
  store: BlobStore;
  /** `--fetch`: download missing (and corrupt) blobs again. */
  fetch?: boolean | undefined;
  /** `--repair`: implies fetch; accept changed upstream content and rewrite the entry. */
  repair?: boolean | undefined;
  /** Client for re-downloads; made from `env` when needed and not given (closed at the end). */
  upstream?: UpstreamClient | undefined;
  /** htvend's own environment, for the upstream client (proxy / CA variables). */
  env?: Readonly<Record<string, string | undefined>> | undefined;
  /** `--cache-header`: headers recorded when --repair rewrites an entry. */
  cacheHeaders?: readonly string[] | undefined;
  /** `--no-cache-response`: such URLs are never fetched (they should not be in assets.json). */
  noCacheResponse?: readonly RegExp[] | undefined;
  /** Blobs checked / fetched in parallel (default 4). */
  jobs?: number | undefined;
  log?: Logger | undefined;
  signal?: AbortSignal | undefined;
  /** Progress bar on stderr: default only when stderr is a terminal. */
  progress?: boolean | undefined;
  /** Retry policy for downloads (tests shorten the delays). */
  retry?: Omit<RetryOptions, 'signal'> | undefined;
}

export type ProblemKind = 'missing' | 'corrupt' | 'unreadable' | 'fetch-failed' | 'changed';

export interface VerifyProblem {
  kind: ProblemKind;
  digest: Digest;
  /** The assets.json keys that use this blob (or the one URL a fetch failed for). */
  urls: string[];
  message: string;
}

export interface VerifyResult {
  /** Entries in assets.json. */
  entries: number;
  /** Distinct blobs checked. */
  blobs: number;
  ok: number;
  missing: number;
  corrupt: number;
  /** Blobs downloaded again with the recorded content. */
  fetched: number;
  /** Entries rewritten by --repair because upstream content changed. */
  repaired: number;
  bytes: number;
  /** Everything still wrong at the end; empty = success. */
  problems: VerifyProblem[];
  /** 0 when `problems` is empty, else 1. */
  exitCode: number;
}

type BlobState = 'ok' | 'missing' | 'corrupt';

/** Counts bytes flowing through, for the progress bar. */
function counter(progress: Progress, tally: { bytes: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      progress.addBytes(chunk.length);
      tally.bytes += chunk.length;
      cb(null, chunk);
    },
  });
}

/** Reads a blob to the end through its verifying stream. */
async function checkBlob(store: BlobStore, d: Digest, progress: Progress, tally: { bytes: number }, signal: AbortSignal): Promise<BlobState> {
  let r;
  try {
    r = await store.get(d, { signal });
  } catch (e) {
    if (isHtvendError(e) && e.code === 'NOT_FOUND') return 'missing';
    throw e;
  }
  try {
    for await (const chunk of r) {
      progress.addBytes((chunk as Buffer).length);
      tally.bytes += (chunk as Buffer).length;
    }
    return 'ok';
  } catch (e) {
    if (isHtvendError(e) && e.code === 'DIGEST_MISMATCH') return 'corrupt';
    throw e;
  }
}

/** Verifies (and with fetch/repair, restores) every blob of the manifest. */
export async function verify(o: VerifyOptions): Promise<VerifyResult> {
  const log = o.log ?? silentLogger;
  const signal = o.signal;
  const jobs = o.jobs ?? 4;
  const fetch = Boolean(o.fetch || o.repair);
  const manifest = await Manifest.open(o.manifestPath, { mode: o.repair ? 'update' : 'read', log, signal });
  let upstream = o.upstream;
  let ownUpstream = false;
  const result: VerifyResult = { entries: 0, blobs: 0, ok: 0, missing: 0, corrupt: 0, fetched: 0, repaired: 0, bytes: 0, problems: [], exitCode: 0 };
  try {
    const urlsByDigest = new Map<Digest, string[]>();
    for (const [url, e] of manifest.entries()) {
      result.entries++;
      const list = urlsByDigest.get(e.Sha256);
      if (list) list.push(url);
      else urlsByDigest.set(e.Sha256, [url]);
    }
    const digests = [...urlsByDigest.keys()];
    result.blobs = digests.length;
    log.info(`verify: ${result.blobs} blob(s) for ${result.entries} asset(s) in ${o.manifestPath} against ${o.store.description}`);

    // Phase 1: read every blob through its verifying stream.
    const tally = { bytes: 0 };
    let progress = createProgress({ label: 'verify', total: digests.length, enabled: o.progress, level: log.level, ...(o.env ? { env: o.env } : {}) });
    const states = await mapPool(
      digests,
      jobs,
      async (d, _i, sig) => {
        try {
          return await checkBlob(o.store, d, progress, tally, sig);
        } catch (e) {
          if (isAbortError(e)) throw e;
          result.problems.push({ kind: 'unreadable', digest: d, urls: urlsByDigest.get(d)!, message: describeError(e) });
          return undefined;
        } finally {
          progress.itemDone();
        }
      },
      { signal },
    ).finally(() => progress.stop());
    result.bytes = tally.bytes;

    const broken: Digest[] = [];
    const corrupt = new Set<Digest>();
    states.forEach((s, i) => {
      const d = digests[i]!;
      if (s === 'corrupt') corrupt.add(d);
      if (s === 'ok') result.ok++;
      if (s === 'missing') result.missing++;
      if (s === 'corrupt') result.corrupt++;
      if (s === 'missing' || s === 'corrupt') {
        if (fetch) broken.push(d);
        else result.problems.push({ kind: s, digest: d, urls: urlsByDigest.get(d)!, message: s === 'missing' ? `blob ${d} is not in ${o.store.description}` : `blob ${d} in ${o.store.description} does not hash to its name` });
      }
    });

    // Phase 2 (--fetch/--repair): download what is missing or corrupt.
    if (broken.length > 0) {
      if (!upstream) {
        upstream = await createUpstreamClient({ env: o.env ?? process.env, log, signal });
        ownUpstream = true;
      }
      const client = upstream;
      progress = createProgress({ label: 'fetch', total: broken.length, enabled: o.progress, level: log.level, ...(o.env ? { env: o.env } : {}) });
      await mapPool(
        broken,
        jobs,
        async (d, _i, sig) => {
          try {
            // A corrupt copy goes first, so the fresh download is not mistaken for an existing blob.
            if (corrupt.has(d) && canDelete(o.store)) await o.store.delete(d, { signal: sig });
            await restoreBlob(d, urlsByDigest.get(d)!, { ...o, log, signal: sig, manifest, client, bar: progress, result });
          } finally {
            progress.itemDone();
          }
        },
        { signal },
      ).finally(() => progress.stop());
    }
    await manifest.close();
  } catch (e) {
    await manifest.close().catch(() => {});
    throw e;
  } finally {
    if (ownUpstream) await upstream?.close();
  }
  result.exitCode = result.problems.length > 0 ? 1 : 0;
  for (const line of verifySummary(result)) (result.exitCode ? log.error : log.info)(line);
  return result;
}

interface RestoreCtx extends Omit<VerifyOptions, 'progress'> {
  log: Logger;
  signal: AbortSignal;
  manifest: Manifest;
  client: UpstreamClient;
  bar: Progress;
  result: VerifyResult;
}

/** Fetches `d` again from the URLs that recorded it (fetch: first that works; repair: each). */
async function restoreBlob(d: Digest, urls: string[], c: RestoreCtx): Promise<void> {
  const failures: VerifyProblem[] = [];
  let restored = false;
  for (const url of urls) {
    if (restored && !c.repair) break;
    const entry = c.manifest.get(url)!;
    if (c.noCacheResponse?.some((re) => re.test(url))) {
      failures.push({ kind: 'fetch-failed', digest: d, urls: [url], message: `${redactUrl(url)}: matches --no-cache-response, not fetched` });
      continue;
    }
    try {
      const got = await fetchOne(url, entry, c);
      if (got.digest === d) {
        restored = true;
      } else {
        // only reachable with --repair (otherwise the put was rejected)
        c.manifest.put(url, { Sha256: got.digest, Headers: got.headers });
        c.result.repaired++;
        c.log.warn(`repaired ${redactUrl(url)}: sha256 ${d} -> ${got.digest}`);
      }
    } catch (e) {
      if (isAbortError(e)) throw e;
      const changed = isHtvendError(e) && e.code === 'DIGEST_MISMATCH';
      failures.push({ kind: changed ? 'changed' : 'fetch-failed', digest: d, urls: [url], message: describeError(e) });
    }
  }
  if (restored) c.result.fetched++;
  // With --repair every URL was handled on its own: report only those that failed.
  // With --fetch one good download restores the blob for all its URLs.
  if (c.repair || !restored) c.result.problems.push(...failures);
}

/** Statuses worth another try; anything else (404, 401, 403…) is final. */
const RETRY_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);
const finalErrors = new WeakSet<object>();

/** One recording GET of `url` into the store; resolves with the digest of what was stored. */
async function fetchOne(url: string, entry: AssetEntry, c: RestoreCtx): Promise<{ digest: Digest; headers: Record<string, string> }> {
  return withRetry(
    async () => {
      const res = await fetchForRecording(c.client, url, { headers: headersForRefetch(entry), signal: c.signal });
      if (res.status !== 200) {
        res.body.resume();
        const err = new HtvendError('UPSTREAM', `GET ${redactUrl(url)}: HTTP ${res.status}`);
        if (!RETRY_STATUS.has(res.status)) finalErrors.add(err);
        throw err;
      }
      const hashing = new HashingStream();
      const w = await c.store.put({ expected: c.repair ? undefined : entry.Sha256, signal: c.signal });
      try {
        await pipeline(res.body, hashing, counter(c.bar, c.result), w.stream, { signal: c.signal });
      } catch (e) {
        await w.abort(e);
        throw isHtvendError(e) || isAbortError(e) ? e : new HtvendError('UPSTREAM', `GET ${redactUrl(url)}: ${describeError(e)}`, { cause: e });
      }
      try {
        return { digest: await w.commit(), headers: pickRecordedHeaders(res.headers, c.cacheHeaders ?? []) };
      } catch (e) {
        if (isHtvendError(e) && e.code === 'DIGEST_MISMATCH') {
          throw new HtvendError('DIGEST_MISMATCH', `${redactUrl(url)}: upstream now serves sha256 ${hashing.digest()}, assets.json has ${entry.Sha256}`, {
            hint: 'run `htvend verify --repair` to accept the new content, or rebuild',
            cause: e,
          });
        }
        throw e;
      }
    },
    {
      ...c.retry,
      signal: c.signal,
      retryable: (e) => !finalErrors.has(e as object) && isTransient(e),
      onRetry: (e, n, ms) => c.log.warn(`${describeError(e)}; retry ${n} in ${ms} ms`),
    },
  );
}

/** Human-readable lines: one per problem naming the blob and its URLs, then the counts. */
export function verifySummary(r: VerifyResult): string[] {
  const lines: string[] = [];
  for (const p of r.problems) {
    lines.push(`${p.kind}: ${p.message}`);
    for (const u of p.urls) if (!p.message.includes(redactUrl(u))) lines.push(`  used by ${redactUrl(u)}`);
  }
  lines.push(
    `verify: ${r.blobs} blob(s), ${r.ok} ok, ${r.missing} missing, ${r.corrupt} corrupt` +
      (r.fetched || r.repaired ? `, ${r.fetched} fetched, ${r.repaired} repaired` : '') +
      (r.problems.length ? `; ${r.problems.length} problem(s)` : ''),
  );
  return lines;
}
