/**
 * One build's cache and attribution (docs/build-cache.md): made by the CLI, handed to the
 * builder as `BuildOptions.cache`, finished after the outputs are written. It
 *
 * - names every step (RUN, ADD <url>, base-image pull, cache probe) with an identity of its own
 *   and gives it a proxy URL carrying that identity;
 * - looks keys up (local store, then `--cache-from`), and before reuse asks the proxy again for
 *   every asset the step fetched when it ran (probe.ts): a missing or changed one is a miss;
 * - stores what ran (in the background; `finish()` waits), pushes to `--cache-to`, prunes;
 * - collects the per-step report.
 */
import { timed } from '../../util/timing.js';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dispatcher } from 'undici';
import { createTransport, formatImageReference, formatPlatform, parseImageReference, type Env, type Platform } from '../../registry/index.js';
import { describeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import type { LayerInfo } from '../fs/types.js';
import type { LayerListing } from '../fs/listing.js';
import { mavenSettingsXml } from '../run/proxy-env.js';
import type { ProxyInjection } from '../run/types.js';
import { SessionChannel, type StepReport } from './channel.js';
import { probeAssets } from './probe.js';
import { RemoteCache } from './remote.js';
import { BuildReport, type ReportAsset, type StepRecord } from './report.js';
import { startStepForwarder } from './step-forwarder.js';
import { CacheStore, type CacheEntry, type CacheHit } from './store.js';

export interface BuildCacheSettings {
  /** Use and fill the step cache (`--layers`, BUILDAH_LAYERS). */
  layers: boolean;
  /** `--no-cache`: never reuse, still store. */
  noCache: boolean;
  dir: string;
  maxBytes: number;
  cacheFrom: string[];
  cacheTo: string[];
  reportPath?: string | undefined;
  dockerfileName: string;
  env: Env;
  tlsVerify?: boolean;
  certDir?: string;
  tmpDir: string;
  log: Logger;
  signal: AbortSignal;
}

export type StepKind = 'RUN' | 'COPY' | 'ADD';

/** `ref platform`, with the reference normalised as the puller names it. */
function pullKey(ref: string, platform: Platform): string {
  let name = ref;
  try {
    name = formatImageReference(parseImageReference(ref));
  } catch {
    // not a reference the puller accepts either; keep it as written
  }
  return `${name} ${formatPlatform(platform)}`;
}

export class BuildCache {
  readonly report: BuildReport;
  readonly store: CacheStore | undefined;
  private readonly nonce = randomBytes(4).toString('hex');
  private n = 0;
  private readonly saves: Promise<unknown>[] = [];
  private readonly used = new Set<string>();
  private readonly pullIds = new Map<string, string>();
  private readonly dispatchers = new Map<string, Promise<Dispatcher>>();
  private readonly from: RemoteCache[];
  private readonly to: RemoteCache[];
  private warnedNoAttribution = false;

  private constructor(
    private readonly s: BuildCacheSettings,
    readonly channel: SessionChannel | undefined,
    private readonly noChannelReason: string | undefined,
  ) {
    const log = s.log;
    this.store = s.layers ? new CacheStore(s.dir, log, s.maxBytes) : undefined;
    const ro = { env: s.env, log, signal: s.signal, ...(s.tlsVerify === false ? { tlsVerify: false } : {}), ...(s.certDir ? { certDir: s.certDir } : {}) };
    this.from = s.layers ? s.cacheFrom.map((r) => new RemoteCache(r, '--cache-from', ro)) : [];
    this.to = s.layers ? s.cacheTo.map((r) => new RemoteCache(r, '--cache-to', ro)) : [];
    this.report = new BuildReport({
      dockerfile: s.dockerfileName,
      attribution: channel ? { available: true, mode: channel.mode } : { available: false, ...(noChannelReason ? { reason: noChannelReason } : {}) },
      cache: s.layers ? { enabled: true, dir: s.dir } : { enabled: false },
    });
  }

  static async open(s: BuildCacheSettings): Promise<BuildCache> {
    const ch = await SessionChannel.fromEnv(s.env, s.signal);
    if (ch instanceof SessionChannel) {
      s.log.debug(`attribution: htvend session in ${ch.mode} mode`);
      return new BuildCache(s, ch, undefined);
    }
    s.log.debug(`attribution: none (${ch.reason})`);
    return new BuildCache(s, undefined, ch.reason);
  }

  get enabled(): boolean {
    return this.store !== undefined;
  }

  /** A new step identity (unique in the session: a random build nonce and a counter). */
  newStepId(tag: string): string {
    return `b${this.nonce}-${tag}${++this.n}`;
  }

  /** The identity of pulling `ref` for `platform` (one per image and platform per build). */
  pullStepId(ref: string, platform: Platform): string {
    const k = pullKey(ref, platform);
    let id = this.pullIds.get(k);
    if (!id) this.pullIds.set(k, (id = this.newStepId('pull')));
    return id;
  }

  /** The environment for a pull or an `ADD <url>` of step `id` (unchanged without attribution). */
  envFor(id: string): Env {
    return this.channel ? this.channel.stepEnv(this.s.env, id) : this.s.env;
  }

  /** The dispatcher for step `id`'s own requests (ADD <url>, probes). */
  dispatcherFor(id: string): Promise<Dispatcher> {
    let d = this.dispatchers.get(id);
    if (!d) {
      d = createTransport({ env: this.envFor(id), ...(this.s.tlsVerify === false ? { tlsVerify: false } : {}), ...(this.s.certDir ? { certDir: this.s.certDir } : {}), signal: this.s.signal });
      this.dispatchers.set(id, d);
    }
    return d;
  }

  private async closeDispatcher(id: string): Promise<void> {
    const d = this.dispatchers.get(id);
    this.dispatchers.delete(id);
    if (d) await (await d.catch(() => undefined))?.close();
  }

  /**
   * RUN's proxy injection for step `id`: its credentials in every proxy variable, and for the
   * clients that send none from a proxy URL (Java's properties, Maven's settings) a forwarder
   * of the step's own on 127.0.0.1 that adds them (step-forwarder.ts). `release()` stops the
   * forwarder; call it when the step's container is gone, before asking what the step fetched.
   */
  async stepProxy(base: ProxyInjection, id: string, network: 'host' | 'none'): Promise<{ injection: ProxyInjection; release: () => Promise<void> }> {
    const ch = this.channel;
    if (!ch) return { injection: base, release: async () => undefined };
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(base.env)) env[k] = v ? ch.stepProxyValue(v, id) : v;
    const injection: ProxyInjection = { ...base, env };
    // Without a network the step cannot reach a loopback listener of the host: nothing to forward.
    if (network === 'none' || (!base.java && !base.mvnSettings)) return { injection, release: async () => undefined };
    const fwd = await startStepForwarder({ proxy: ch.proxyUrl, id, token: ch.stepToken(id), log: this.s.log });
    let settings: string | undefined;
    try {
      if (base.java) injection.java = { ...base.java, host: fwd.host, port: fwd.port };
      if (base.mvnSettings) {
        settings = join(this.s.tmpDir, `mvn-settings-${id}.xml`);
        await writeFile(settings, mavenSettingsXml(`http://${fwd.host}:${fwd.port}`), { mode: 0o644 });
        injection.mvnSettings = { ...base.mvnSettings, hostFile: settings };
      }
    } catch (e) {
      await fwd.stop();
      throw e;
    }
    return {
      injection,
      release: async () => {
        await fwd.stop();
        if (settings) await rm(settings, { force: true });
      },
    };
  }

  /** What step `id` fetched (undefined without attribution). */
  async stepReport(id: string): Promise<StepReport | undefined> {
    if (!this.channel) return undefined;
    try {
      const r = await this.channel.stepReport(id, this.s.signal);
      await this.channel.forget(id);
      return r;
    } catch (e) {
      this.s.log.warn(describeError(e));
      return undefined;
    }
  }

  /** What step `id` fetched; the step is over (its identity is forgotten by htvend). */
  async endStep(id: string): Promise<StepReport | undefined> {
    const r = await this.stepReport(id);
    await this.closeDispatcher(id);
    return r;
  }

  /** What pulling `ref` for `platform` fetched (kept: stages sharing a base share the pull). */
  async pullReport(ref: string, platform: Platform): Promise<{ id: string; report: StepReport | undefined } | undefined> {
    const id = this.pullIds.get(pullKey(ref, platform));
    if (!id || !this.channel) return undefined;
    const report = await this.channel.stepReport(id, this.s.signal).catch((e) => {
      this.s.log.warn(describeError(e));
      return undefined;
    });
    return { id, report };
  }

  async unattributedCount(): Promise<number | undefined> {
    return this.channel?.unattributed(this.s.signal).catch(() => undefined);
  }

  private noAttributionOnce(): void {
    if (this.warnedNoAttribution) return;
    this.warnedNoAttribution = true;
    this.s.log.warn(`build cache: the proxy cannot attribute requests to steps (${this.noChannelReason}); steps that fetch anything are not served from the cache`);
  }

  /**
   * A reusable entry for `key`, or undefined (with the reason in `note`). RUN entries that
   * fetched anything are reused only after every asset was asked for again and is unchanged.
   */
  async lookup(key: string, kind: StepKind, where: string, note: (s: string) => void): Promise<CacheHit | undefined> {
    const store = this.store;
    if (!store || this.s.noCache) return undefined;
    let hit = await timed('cache get', () => store.get(key, this.s.tmpDir, this.s.signal));
    if (!hit) {
      for (const r of this.from) if (await r.fetch(key, store, this.s.tmpDir)) break;
      hit = await store.get(key, this.s.tmpDir, this.s.signal);
    }
    if (!hit) return undefined;
    const e = hit.entry;
    // COPY/ADD entries are keyed by the bytes the step copies: ADD fetched its URL already.
    if (kind !== 'RUN' || (e.assets.length === 0 && e.other.length === 0)) return this.useHit(key, hit);
    if (!this.channel) {
      this.noAttributionOnce();
      note('cached, but it fetched when it ran and the proxy cannot attribute');
      return undefined;
    }
    if (this.channel.mode === 'offline' && e.other.length) {
      note(`cached, but it made requests offline mode does not serve (${e.other[0]!.method} ${e.other[0]!.key})`);
      this.s.log.info(`${where}: cached step made requests htvend offline does not serve (${e.other[0]!.method} ${e.other[0]!.key}): running it`);
      return undefined;
    }
    const probeId = this.newStepId('probe');
    try {
      const d = await timed('probe transport', () => this.dispatcherFor(probeId));
      const r = await timed('probe', () => probeAssets(e.assets, this.channel!, probeId, d, this.s.signal));
      if (!r.reuse) {
        note(`cache miss: ${r.reason}`);
        this.s.log.info(`${where}: cache entry not reused: ${r.reason}; running the step`);
        return undefined;
      }
    } finally {
      await timed('probe close', () => this.closeDispatcher(probeId));
    }
    return this.useHit(key, hit);
  }

  private useHit(key: string, hit: CacheHit): CacheHit {
    this.used.add(key);
    return hit;
  }

  /** Stores a step that ran (in the background). */
  save(entry: Omit<CacheEntry, 'version' | 'created'>, layer: LayerInfo | null, listing?: LayerListing): void {
    const store = this.store;
    if (!store) return;
    const full: CacheEntry = { version: 1, created: new Date().toISOString(), ...entry };
    // The layer's listing (by layer digest) lets a later hit be looked into without extracting it.
    if (layer && listing) this.saves.push(store.putListing(layer.digest, listing));
    this.saves.push(store.put(full, layer?.path).then((ok) => ok && this.used.add(entry.key)));
  }

  /**
   * Whether a RUN that ran may be stored, given what the proxy saw; says why not. Without
   * attribution only a step without network can be known to have fetched nothing.
   */
  runStorable(r: StepReport | undefined, unattributedDelta: number | undefined, network: 'host' | 'none'): { ok: true } | { ok: false; why: string } {
    if (!this.channel) {
      if (network === 'none') return { ok: true };
      this.noAttributionOnce();
      return { ok: false, why: 'not stored: the proxy cannot attribute requests to steps' };
    }
    if (!r) return { ok: false, why: 'not stored: htvend did not say what the step fetched' };
    const missing = r.assets.find((a) => a.status === 'missing');
    if (missing) return { ok: false, why: `not stored: ${missing.key} was missing` };
    if (unattributedDelta === undefined || unattributedDelta > 0) {
      return { ok: false, why: `not stored: ${unattributedDelta ?? 'some'} request(s) during the step came without its step credentials (a client that ignores the proxy URL's user:password, or another client of this htvend session)` };
    }
    return { ok: true };
  }

  record(r: StepRecord): void {
    this.report.add(r);
  }

  static reportAssets(r: StepReport | undefined): ReportAsset[] {
    return (r?.assets ?? []).filter((a) => a.status !== 'missing').map((a) => ({ url: a.key, sha256: a.sha256, size: a.size }));
  }

  /** Waits for stores, pushes `--cache-to`, prunes, writes the report. */
  async finish(opts: { ok: boolean }): Promise<void> {
    await Promise.allSettled(this.saves);
    for (const id of [...this.dispatchers.keys()]) await this.closeDispatcher(id);
    if (opts.ok && this.store) {
      for (const r of this.to) {
        for (const key of this.used) {
          const e = await this.store.readEntry(key);
          if (e) await r.push(e, this.store);
        }
      }
      await this.store.prune().catch((e) => this.s.log.warn(`build cache: pruning ${this.s.dir}: ${describeError(e)}`));
    }
    for (const r of [...this.from, ...this.to]) await r.close();
    if (this.s.reportPath) await this.report.write(this.s.reportPath);
  }
}
