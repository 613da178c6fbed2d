/**
 * The proxy's contract (SPEC §3): options in, a running proxy out, and the facts/rules types
 * its request routing is made of. Types only.
 */
import type { AssetEntry, AssetLookup } from '../manifest/types.js';
import type { BlobStore } from '../store/store.js';
import type { CertificateAuthority } from '../tls/ca.js';
import type { UpstreamClient } from '../upstream/client.js';
import type { Logger } from '../util/log.js';

export type ProxyMode = 'build' | 'offline';

export interface ProxyOptions {
  mode: ProxyMode;
  assets: AssetLookup;
  store: BlobStore;
  ca: CertificateAuthority;
  /** Required in build mode: how the proxy reaches upstream servers. */
  upstream?: UpstreamClient | undefined;
  /** `host:port` of the plain HTTP proxy listener; default `127.0.0.1:0`. */
  listenAddr?: string | undefined;
  /** Optional extra listener where the proxy itself speaks TLS (an HTTPS proxy; Go compat). */
  tlsListenAddr?: string | undefined;
  /** URLs (assets.json key form) never recorded nor looked up (--no-cache-response). */
  noCacheResponse: RegExp[];
  /** Offline: URLs answered with an empty 200 (--dummy-ok-response). */
  dummyOkResponse: RegExp[];
  /** Response header names recorded into assets.json (--cache-header); any case. */
  cacheHeaders: string[];
  /** Build: re-fetch URLs even if the previous assets.json has them (--force-refresh). */
  forceRefresh: boolean;
  /** Secret of this session's control channel (docs/build-cache.md); random when omitted. */
  sessionSecret?: string | undefined;
  /** Time a client has to send its request headers (slow-loris guard); default 30 s. */
  headersTimeoutMs?: number | undefined;
  /** How long close() waits for recordings still in progress before dropping them; default 60 s. */
  exitGraceMs?: number | undefined;
  log: Logger;
  /** Aborting stops in-flight upstream fetches and store writes. */
  signal?: AbortSignal | undefined;
}

export interface RunningProxy {
  /** `http://127.0.0.1:PORT`: what HTTP(S)_PROXY should be set to. */
  url: string;
  /** `127.0.0.1:PORT` */
  hostPort: string;
  /** `https://127.0.0.1:PORT` when `tlsListenAddr` was given. */
  tlsUrl?: string | undefined;
  /** The attribution control channel: its base URL and the secret that authorises it (docs/build-cache.md). */
  session: { secret: string; controlUrl: string };
  /** Go-style counter names → values (`htvend_missing_asset_total`, …). */
  counters(): Record<string, number>;
  /** Keys requested offline that assets.json does not list, sorted, each once. */
  missing(): string[];
  /** Keys assets.json lists whose blob is not in the store, sorted, each once. */
  missingBlobs(): string[];
  /** Keys whose replay was cut because the blob does not match its digest, sorted, each once. */
  corrupt(): string[];
  /**
   * Stops listening, ends keep-alive sockets, waits (at most `exitGraceMs`) for in-flight
   * recordings to commit or abort; those still running then are named and dropped.
   */
  close(opts?: { graceMs?: number }): Promise<void>;
  /** Store failures seen while recording (SPEC §11), one message each naming store, URL, cause. */
  storeFailures(): string[];
}

/** Everything routing needs to know about one request, gathered before any rule runs. */
export interface RequestFacts {
  mode: ProxyMode;
  method: string;
  /** Absolute URL as requested (the upstream target). */
  url: string;
  /** assets.json key of `url`. */
  key: string;
  noCache: boolean;
  dummyOk: boolean;
  /** The manifest entry for `key`, if any (and unless --force-refresh hides it). */
  entry?: AssetEntry | undefined;
  /** Size of the entry's blob, or undefined when the store lacks it. */
  blobSize?: number | undefined;
}

/** What a matched rule does with the request. */
export type ActionName = 'dummy-ok' | 'pass-through' | 'deny-method' | 'replay' | 'record' | 'deny-missing';

/** A routing rule: a pure predicate over facts, an action, and a sentence for the debug log. */
export interface Rule {
  readonly name: string;
  readonly action: ActionName;
  matches(f: RequestFacts): boolean;
  explain(f: RequestFacts): string;
}
