/**
 * Executes one planned stage: FROM (pull / earlier stage / scratch), ONBUILD triggers of the
 * base, then each instruction, producing a new immutable `Image` per step. The stage keeps a
 * materialised working rootfs (StageFs) that follows the image's layers lazily: it is only
 * extracted when a step needs to look at files (COPY destinations, --chown names, RUN,
 * WORKDIR creation, COPY --from).
 */
import { timed } from '../../util/timing.js';
import type { BuildFacts } from './facts.js';
import { assetKey } from '../../manifest/key.js';
import { lstat, mkdtemp, readlink, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { HtvendError, describeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { applyLayer } from '../fs/apply.js';
import { applyCopied, canApplyCopied } from '../fs/apply-copied.js';
import { LayerIndex, listingFromEntries, listLayerBlob, pathState, type LayerListing, type PathState } from '../fs/listing.js';
import type { CacheStore } from '../cache/store.js';
import { writeLayer } from '../fs/layer-writer.js';
import type { LayerEntry, LayerInfo } from '../fs/types.js';
import { expandHeredocBody, expandWord, varsFrom, type Vars } from '../dockerfile/lexer.js';
import { parseTrigger } from '../dockerfile/parse.js';
import type { CommandForm, Instruction, RunInstr } from '../dockerfile/types.js';
import { appendLayer, scratchImage, withConfig, withHistory, withImageFields, type ContainerConfig, type HistoryEntry, type Image } from '../image/image.js';
import { stageByRef, type BuildPlan, type PlannedStage } from '../plan/plan.js';
import type { ProxyInjection, RunExecutor, RunMount, RunStepRequest, SecretSource } from '../run/types.js';
import { copyEntries, parseChmod, resolveChown, resolveSymlinks, type PathLookup, type SymlinkReader } from '../copy/copy.js';
import type { SourceRoot } from '../copy/sources.js';
import type { Ignore } from '@balena/dockerignore';
import { parseMount } from './mounts.js';
import { stderrSink } from '../../util/stdio.js';
import type { Dispatcher } from 'undici';
import { formatPlatform } from '../../registry/index.js';
import { BuildCache, copyStepKey, layerFields, runStepKey, type StepOutcome } from '../cache/hooks.js';

/** The index of a layer's listing (fs/listing.ts): from the step cache, else by reading its tar once. */
export type LayerLister = (layer: { digest: string; path: string }) => Promise<LayerIndex>;

/** Listings are the same for the same layer digest, so stages and builds in one process share them. */
const indexMemo = new Map<string, Promise<LayerIndex>>();

/** A lister that keeps listings in `store` (the step cache), when there is one. */
export function layerLister(store: CacheStore | undefined, signal?: AbortSignal): LayerLister {
  return (l) => {
    let p = indexMemo.get(l.digest);
    if (!p) {
      p = (async () => {
        let listing = await store?.getListing(l.digest);
        if (!listing) {
          listing = await listLayerBlob(l.path, `layer sha256:${l.digest}`, signal);
          await store?.putListing(l.digest, listing);
        }
        return new LayerIndex(listing);
      })();
      indexMemo.set(l.digest, p);
      p.catch(() => indexMemo.delete(l.digest));
    }
    return p;
  };
}

/**
 * A stage's working rootfs directory, brought up to date with its image on demand.
 *
 * Every layer not extracted yet has a listing (paths, types, link targets: fs/listing.ts):
 * from the entries of a step this build ran (COPY/ADD/WORKDIR, RUN), from the step cache for
 * a cached step, or read from the layer's tar once (base layers). `lookup()`/`readlink()`
 * answer from those listings top-down (whiteouts and opaque dirs honoured) and then from the
 * directory as far as it is applied, so nothing is extracted until a step needs real files
 * (RUN, COPY --from this stage, --chown names) and calls `sync()`. A warm rebuild whose cached
 * RUN layers hold 10,000 files and 200 MiB adds its COPY without unpacking them.
 *
 * `sync()` applies a COPY/ADD/WORKDIR layer from its entries (files copied from their
 * sources, fs/apply-copied.ts) rather than from the tar just written; other layers through
 * the tar.
 */
export class StageFs {
  private applied = 0;
  private img: Image;
  /** Entry lists (with host sources) of pending layers this build wrote from COPY/ADD/WORKDIR, by digest. */
  private readonly known = new Map<string, LayerEntry[]>();
  /** Listings of pending layers, by digest. */
  private readonly indexes = new Map<string, LayerIndex>();
  constructor(
    readonly dir: string,
    img: Image,
    private readonly log: Logger,
    private readonly signal?: AbortSignal,
    private readonly opts: { lister?: LayerLister; epoch?: number } = {},
  ) {
    this.img = img;
  }
  /** Records the image's new state (cheap); files follow on the next `sync()`. */
  track(img: Image, layer?: { digest: string; entries?: LayerEntry[]; listing?: LayerListing }): void {
    this.img = img;
    if (layer?.entries) {
      this.known.set(layer.digest, layer.entries);
      this.indexes.set(layer.digest, new LayerIndex(listingFromEntries(layer.entries)));
    } else if (layer?.listing) this.indexes.set(layer.digest, new LayerIndex(layer.listing));
  }
  /**
   * Records that the image's new top layer is already in the directory (a RUN executor moved
   * the step's files there), so `sync()` does not extract it again.
   */
  trackApplied(img: Image): void {
    if (this.applied !== img.layers.length - 1) throw new HtvendError('INTERNAL', 'a layer was applied to a rootfs that was not up to date');
    this.img = img;
    this.applied = img.layers.length;
  }
  /** Applies layers not yet applied and returns the directory. */
  async sync(): Promise<string> {
    while (this.applied < this.img.layers.length) {
      const l = this.img.layers[this.applied]!;
      const entries = this.known.get(l.digest);
      let done = false;
      if (entries && this.opts.epoch !== undefined && canApplyCopied(entries)) {
        try {
          await applyCopied(this.dir, entries, this.opts.epoch, this.signal);
          done = true;
        } catch (e) {
          this.signal?.throwIfAborted();
          // A source gone or changed since the layer was written: the tar is the truth.
          this.log.debug(`layer sha256:${l.digest}: applying from its entries failed (${describeError(e)}); extracting the layer`);
        }
      }
      if (!done) await applyLayer(this.dir, l.path, `layer sha256:${l.digest}`, { signal: this.signal, log: this.log });
      // Tests count these lines (`-v`): a warm rebuild must apply none for its cached steps.
      this.log.debug(`applied layer sha256:${l.digest} to the stage rootfs (${done ? 'from its entries' : 'extracted'})`);
      this.known.delete(l.digest);
      this.indexes.delete(l.digest);
      this.applied++;
    }
    return this.dir;
  }
  /** Indexes of the pending layers (bottom first), or undefined when one cannot be listed. */
  private async pending(): Promise<LayerIndex[] | undefined> {
    const out: LayerIndex[] = [];
    for (const l of this.img.layers.slice(this.applied)) {
      let ix = this.indexes.get(l.digest);
      if (!ix) {
        if (!this.opts.lister) return undefined;
        try {
          ix = await this.opts.lister(l);
        } catch (e) {
          this.signal?.throwIfAborted();
          this.log.debug(`layer sha256:${l.digest}: cannot list it (${describeError(e)}); extracting instead`);
          return undefined;
        }
        this.indexes.set(l.digest, ix);
      }
      out.push(ix);
    }
    return out;
  }
  /** What `rel` is (parents resolved, last component not followed) in the image so far. */
  private async state(rel: string): Promise<PathState> {
    const layers = await this.pending();
    if (!layers) return diskState(await this.sync(), rel);
    return pathState(layers, rel, (r) => diskState(this.dir, r));
  }
  /** What is at `rel` in the image so far (symlinks followed). */
  readonly lookup: PathLookup = async (rel) => {
    const r = await resolveSymlinks(rel, this.readlink, true);
    if (r === '') return 'dir';
    const s = await this.state(r);
    return s ? (s.kind === 'dir' ? 'dir' : 'other') : undefined;
  };
  /** Target of the symlink at `rel` (parents already resolved) in the image so far, if it is one. */
  readonly readlink: SymlinkReader = async (rel) => {
    const s = await this.state(rel);
    return s?.kind === 'symlink' ? s.target : undefined;
  };
}

/** `rel` in a materialised rootfs, the last component not followed. */
async function diskState(dir: string, rel: string): Promise<PathState> {
  const host = join(dir, rel);
  const st = await lstat(host).catch(() => undefined);
  if (!st) return undefined;
  if (st.isDirectory()) return { kind: 'dir' };
  if (st.isSymbolicLink()) return { kind: 'symlink', target: await readlink(host) };
  return { kind: 'other' };
}

/** Everything a stage needs from the build around it. */
export interface BuildContext {
  plan: BuildPlan;
  contextDir: string;
  dockerignore: { ignore: Ignore; hasExceptions: boolean };
  epoch: number;
  tmpDir: string;
  log: Logger;
  signal: AbortSignal;
  pullImage(ref: string, where: string): Promise<Image>;
  /** Result of an earlier stage (built on demand). */
  stage(index: number): Promise<{ image: Image; fs: StageFs }>;
  /** Rootfs of an image reference (pulled and materialised once per build). */
  imageRootfs(ref: string, where: string): Promise<string>;
  runExecutor: RunExecutor;
  proxy: ProxyInjection;
  globalMounts: string[];
  secrets: Map<string, SecretSource>;
  network: 'host' | 'none';
  allowInsecure: boolean;
  dispatcher: () => Promise<Dispatcher>;
  /** Step cache, attribution and report (docs/build-cache.md); absent = neither. */
  cache?: BuildCache | undefined;
  /** Collects base images and `ADD <url>` downloads for provenance (build/facts.ts). */
  facts?: { platform: string; collector: BuildFacts } | undefined;
}

const DEFAULT_SHELL = ['/bin/sh', '-c'];
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function created(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

function setEnv(env: readonly string[] | undefined, key: string, value: string): string[] {
  const out = (env ?? []).filter((e) => e.split('=', 1)[0] !== key);
  out.push(`${key}=${value}`);
  return out;
}

function envMap(env: readonly string[] | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of env ?? []) {
    const i = e.indexOf('=');
    if (i > 0) m.set(e.slice(0, i), e.slice(i + 1));
  }
  return m;
}

export async function buildStage(ctx: BuildContext, st: PlannedStage): Promise<{ image: Image; fs: StageFs }> {
  const { plan, log, signal } = ctx;
  const file = plan.file;
  const at = (line: number) => `${file}:${line}`;
  const fromWhere = at(st.from.loc.line);
  let image: Image;
  const fromStarted = Date.now();
  if (st.base.kind === 'scratch') image = scratchImage(st.platform);
  else if (st.base.kind === 'stage') image = (await ctx.stage(st.base.index)).image;
  else image = await timed(`pull ${st.base.ref}`, () => ctx.pullImage(st.base.kind === 'image' ? st.base.ref : '', fromWhere));
  if (ctx.cache) {
    const pull = st.base.kind === 'image' ? await timed('pull report', () => ctx.cache!.pullReport(st.base.kind === 'image' ? st.base.ref : '', st.platform)) : undefined;
    ctx.cache.record({ platform: formatPlatform(st.platform), stage: st.index, location: fromWhere, line: st.from.loc.line, instruction: st.from.text, kind: 'FROM', status: 'run', durationMs: Date.now() - fromStarted, layer: null, assets: BuildCache.reportAssets(pull?.report), ...(pull ? { stepId: pull.id } : {}) });
  }
  // BuildKit gives every stage a PATH (FROM scratch, or a base without one) before its first
  // instruction, so RUN sees it and the image's Env starts with it.
  if (!envMap(image.config.config.Env).has('PATH')) image = withConfig(image, (c) => ({ ...c, Env: [...(c.Env ?? []), `PATH=${DEFAULT_PATH}`] }));
  const fs = new StageFs(await mkdtemp(join(ctx.tmpDir, `rootfs-${st.index}-`)), image, log, signal, { lister: layerLister(ctx.cache?.store, signal), epoch: ctx.epoch });
  const args = new Map<string, string>();
  let shell = image.config.config.Shell ? [...image.config.config.Shell] : DEFAULT_SHELL;
  let cmdSetHere = false;
  const epochTime = created(ctx.epoch);
  const vars = (): Vars => varsFrom(envMap(image.config.config.Env), args);
  const x = (w: string) => expandWord(w, vars(), plan.escape);
  const nop = (text: string): HistoryEntry => ({ created: epochTime, created_by: text, comment: 'htvend build-img-with-proxy' });
  const setConfig = (text: string, change: (c: ContainerConfig) => ContainerConfig) => {
    image = withHistory(withConfig(image, (c) => change({ ...c })), nop(text));
  };
  const addLayer = (layer: Parameters<typeof appendLayer>[1], text: string) => {
    image = appendLayer(image, layer, nop(text));
    fs.track(image);
  };
  const entriesToLayer = async (entries: LayerEntry[], text: string, cached?: LayerInfo | null) => {
    if (entries.length === 0) {
      image = withHistory(image, nop(text));
      return null;
    }
    const layer = cached ?? (await timed(`write layer (${entries.length} entries)`, () => writeLayer(entries, { epoch: ctx.epoch, dir: ctx.tmpDir, signal })));
    image = appendLayer(image, layer, nop(text));
    fs.track(image, { digest: layer.digest, entries });
    return layer;
  };
  const cmdArgv = (c: CommandForm) => (c.form === 'exec' ? c.argv : [...shell, c.cmdline]);

  // ONBUILD triggers of the base run first, then are dropped from this image (Docker).
  const triggers = image.config.config.OnBuild ?? [];
  const instructions: Instruction[] = [...triggers.map((t) => parseTrigger(t, file, st.from.loc.line)), ...st.instructions];
  if (triggers.length) image = withConfig(image, (c) => ({ ...c, OnBuild: null }));

  for (const ins of instructions) {
    signal.throwIfAborted();
    const where = at(ins.loc.line);
    log.info(`${where}: ${ins.text.length > 200 ? ins.text.slice(0, 200) + '…' : ins.text}`);
    const started = Date.now();
    const layersBefore = image.layers.length;
    const outcome: StepOutcome = { status: 'run' };
    try {
      switch (ins.kind) {
        case 'ARG':
          for (const a of ins.args) {
            const v = plan.buildArgs.get(a.name) ?? (a.default !== undefined ? x(a.default) : plan.globalArgs.get(a.name));
            if (v !== undefined) args.set(a.name, v);
            else args.delete(a.name);
          }
          break;
        case 'ENV': {
          // Every value sees the environment as it was BEFORE this instruction (Docker:
          // `ENV a=bye b=$a` gives b the old a).
          const before = vars();
          let env = image.config.config.Env;
          for (const [k, v] of ins.pairs) env = setEnv(env, expandWord(k, before, plan.escape), expandWord(v, before, plan.escape));
          setConfig(ins.text, (c) => ({ ...c, Env: env }));
          break;
        }
        case 'LABEL':
          setConfig(ins.text, (c) => {
            const labels = { ...(c.Labels ?? {}) };
            for (const [k, v] of ins.pairs) labels[x(k)] = x(v);
            return { ...c, Labels: labels };
          });
          break;
        case 'MAINTAINER':
          image = withHistory(withImageFields(image, { author: ins.name }), nop(ins.text));
          break;
        case 'WORKDIR': {
          const dir = posix.resolve(image.config.config.WorkingDir || '/', x(ins.path));
          // Through the image's symlinks, as BuildKit's Mkdir: a dangling link's target is created.
          const parts = (await resolveSymlinks(dir, fs.readlink, true)).split('/').filter(Boolean);
          const missing: LayerEntry[] = [];
          let owner: { uid: number; gid: number } | undefined;
          for (let i = 1; i <= parts.length; i++) {
            const p = parts.slice(0, i).join('/');
            if ((await fs.lookup(p)) === 'dir') continue;
            // Like BuildKit, directories WORKDIR creates belong to the current USER.
            const user = image.config.config.User;
            owner ??= user ? (/^\d+(:\d+)?$/.test(user) ? { uid: Number(user.split(':')[0]), gid: Number(user.split(':')[1] ?? user.split(':')[0]) } : await resolveChown(await fs.sync(), user, where)) : { uid: 0, gid: 0 };
            missing.push({ type: 'dir', path: p, mode: 0o755, mtime: ctx.epoch, ...owner });
          }
          image = withConfig(image, (c) => ({ ...c, WorkingDir: dir }));
          await entriesToLayer(missing, ins.text);
          break;
        }
        case 'USER':
          setConfig(ins.text, (c) => ({ ...c, User: x(ins.user) }));
          break;
        case 'EXPOSE':
          setConfig(ins.text, (c) => {
            const ports = { ...(c.ExposedPorts ?? {}) };
            // Each word is expanded, then split (BuildKit's ProcessWords): `EXPOSE $PORTS` with PORTS="80 53/udp".
            for (const p of ins.ports.flatMap((w) => x(w).split(/\s+/)).filter(Boolean)) {
              if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/i.test(p)) throw new HtvendError('INPUT', `${where}: EXPOSE ${p}: expected PORT[/tcp|udp|sctp]`);
              ports[p.includes('/') ? p.toLowerCase() : `${p}/tcp`] = {};
            }
            return { ...c, ExposedPorts: ports };
          });
          break;
        case 'VOLUME':
          setConfig(ins.text, (c) => {
            const vols = { ...(c.Volumes ?? {}) };
            for (const p of ins.paths) {
              const v = x(p);
              if (v === '') throw new HtvendError('INPUT', `${where}: VOLUME with an empty path`);
              vols[v] = {};
            }
            return { ...c, Volumes: vols };
          });
          break;
        case 'STOPSIGNAL':
          setConfig(ins.text, (c) => ({ ...c, StopSignal: x(ins.signal) }));
          break;
        case 'SHELL':
          shell = ins.argv;
          setConfig(ins.text, (c) => ({ ...c, Shell: ins.argv }));
          break;
        case 'CMD':
          cmdSetHere = true;
          setConfig(ins.text, (c) => ({ ...c, Cmd: cmdArgv(ins.cmd) }));
          break;
        case 'ENTRYPOINT':
          setConfig(ins.text, (c) => ({ ...c, Entrypoint: cmdArgv(ins.cmd), ...(cmdSetHere ? {} : { Cmd: null }) }));
          break;
        case 'HEALTHCHECK':
          setConfig(ins.text, (c) => {
            if (!ins.check) return { ...c, Healthcheck: { Test: ['NONE'] } };
            const h = ins.check;
            const test = h.cmd.form === 'exec' ? ['CMD', ...h.cmd.argv] : ['CMD-SHELL', h.cmd.cmdline];
            return {
              ...c,
              Healthcheck: {
                Test: test,
                ...(h.interval !== undefined ? { Interval: h.interval } : {}),
                ...(h.timeout !== undefined ? { Timeout: h.timeout } : {}),
                ...(h.startPeriod !== undefined ? { StartPeriod: h.startPeriod } : {}),
                ...(h.startInterval !== undefined ? { StartInterval: h.startInterval } : {}),
                ...(h.retries !== undefined ? { Retries: h.retries } : {}),
              },
            };
          });
          break;
        case 'ONBUILD':
          setConfig(ins.text, (c) => ({ ...c, OnBuild: [...(c.OnBuild ?? []), ins.trigger] }));
          break;
        case 'COPY':
        case 'ADD': {
          let from: SourceRoot = { dir: ctx.contextDir, isContext: true, ignore: ctx.dockerignore.ignore, hasExceptions: ctx.dockerignore.hasExceptions };
          if (ins.from) {
            // Like buildah (BuildKit refuses variables here): ARGs/ENV of the stage, then the global ARGs.
            const ref = expandWord(ins.from, varsFrom(envMap(image.config.config.Env), args, plan.globalArgs), plan.escape);
            from = { dir: await sourceRootfs(ctx, st, ref, where), isContext: false };
          }
          const sources = ins.sources.map(x);
          // ADD <url> downloads under a step identity of its own (attribution).
          const addId = ins.kind === 'ADD' && ctx.cache?.channel ? ctx.cache.newStepId('add') : undefined;
          const entries = await copyEntries({
            kind: ins.kind,
            sources,
            dest: x(ins.dest),
            workdir: image.config.config.WorkingDir || '/',
            from,
            lookup: fs.lookup,
            readlink: fs.readlink,
            ...(ins.chown ? { chown: await resolveChown(await fs.sync(), x(ins.chown), where) } : {}),
            ...(ins.chmod ? { chmod: parseChmod(x(ins.chmod), where) } : {}),
            // Not expanded, as BuildKit (ExcludePatterns are left out of CopyCommand.Expand).
            ...(ins.exclude.length ? { exclude: ins.exclude } : {}),
            ...(ins.parents ? { parents: true } : {}),
            ...(ins.checksum ? { checksum: x(ins.checksum) } : {}),
            ...(ins.unpack !== undefined ? { unpack: ins.unpack } : {}),
            heredocs: ins.heredocs,
            expandHeredoc: (t) => expandHeredocBody(t, vars(), plan.escape),
            epoch: ctx.epoch,
            tmpDir: ctx.tmpDir,
            dispatcher: addId ? () => ctx.cache!.dispatcherFor(addId) : ctx.dispatcher,
            where,
            signal,
            onFetched: (url, sha256, size) => ctx.facts?.collector.addStepAsset({ platform: ctx.facts.platform, location: where, instruction: ins.text }, { url: assetKey(url), sha256, size }),
          });
          if (addId) {
            outcome.stepId = addId;
            outcome.assets = BuildCache.reportAssets(await ctx.cache!.endStep(addId));
          }
          const key = ctx.cache?.enabled && entries.length ? await copyStepKey(ins.kind, entries, image, ctx.epoch, signal) : undefined;
          const hit = key ? await timed(`cache lookup ${where}`, () => ctx.cache!.lookup(key, ins.kind, where, (n) => (outcome.note = n))) : undefined;
          if (key) outcome.cacheKey = key;
          if (hit) outcome.status = 'cached';
          const layer = await entriesToLayer(entries, ins.text, hit?.layer);
          if (key && !hit) ctx.cache!.save({ key, kind: ins.kind, text: ins.text, layer: layerFields(layer), assets: [], other: [] }, layer);
          break;
        }
        case 'RUN': {
          const { layer, applied, listing } = await runStep(ctx, st, ins, image, fs, args, shell, where, outcome);
          if (!layer) image = withHistory(image, nop(ins.text));
          else if (!applied) {
            image = appendLayer(image, layer, nop(ins.text));
            // A cached layer's listing comes from the cache (via the lister), a fresh one's from its entries.
            fs.track(image, listing ? { digest: layer.digest, listing } : undefined);
          } else {
            image = appendLayer(image, layer, nop(ins.text));
            fs.trackApplied(image);
          }
          break;
        }
        case 'FROM':
          throw new HtvendError('INTERNAL', `${where}: FROM inside a stage`);
      }
    } catch (e) {
      throw located(e, where, file);
    }
    if (ctx.cache) {
      const top = image.layers.length > layersBefore ? image.layers[image.layers.length - 1]! : undefined;
      ctx.cache.record({
        platform: formatPlatform(st.platform), stage: st.index, location: where, line: ins.loc.line, instruction: ins.text, kind: ins.kind, status: outcome.status,
        durationMs: Date.now() - started, layer: top ? { digest: top.digest, diffId: top.diffId, size: top.size } : null, assets: outcome.assets ?? [],
        ...(outcome.stepId ? { stepId: outcome.stepId } : {}), ...(outcome.cacheKey ? { cacheKey: outcome.cacheKey } : {}), ...(outcome.note ? { note: outcome.note } : {}),
      });
    }
  }
  image = withImageFields(image, { created: epochTime });
  fs.track(image);
  return { image, fs };
}

/**
 * An error of one instruction with its `Dockerfile:LINE` (lexer errors such as `${FOO:?msg}`
 * or a bad quote are raised without one); errors that already name a location pass unchanged.
 */
export function located(e: unknown, where: string, file: string): unknown {
  if (!(e instanceof HtvendError) || e.code === 'ABORTED' || e.message.startsWith(`${file}:`)) return e;
  return new HtvendError(e.code, `${where}: ${e.message}`, { cause: e, ...(e.hint ? { hint: e.hint } : {}), exitCode: e.exitCode });
}

/**
 * Rootfs of the stage `ref` names (an earlier one, built on demand), else of the image `ref`.
 * As in BuildKit, which dispatches stages in Dockerfile order, the stage itself or a later one
 * is refused, also when the name only appears after expansion (`COPY --from=$VAR`).
 */
async function sourceRootfs(ctx: BuildContext, self: PlannedStage, ref: string, where: string, use: 'copy' | 'mount' = 'copy'): Promise<string> {
  if (ref === '') throw new HtvendError('INPUT', `${where}: --from expands to an empty name`);
  const s = stageByRef(ctx.plan, ref);
  if (s?.index === self.index) throw new HtvendError('INPUT', `${where}: stage ${ref} refers to itself`);
  if (s && s.index > self.index) {
    throw new HtvendError('INPUT', use === 'copy'
      ? `${where}: cannot copy from stage "${ref}", it needs to be defined before current stage "${self.name ?? self.index}"`
      : `${where}: cannot mount from stage "${ref}", stage needs to be defined before current command`);
  }
  if (s) return (await ctx.stage(s.index)).fs.sync();
  if (/^\d+$/.test(ref)) throw new HtvendError('NOT_FOUND', `${where}: stage ${ref} does not exist (the Dockerfile has ${ctx.plan.allStages.length} stages)`);
  return ctx.imageRootfs(ref, where);
}

async function runStep(ctx: BuildContext, st: PlannedStage, ins: RunInstr, image: Image, fs: StageFs, args: Map<string, string>, shell: string[], where: string, outcome: StepOutcome) {
  const plan = ctx.plan;
  const c = image.config.config;
  const vars = varsFrom(envMap(c.Env), args);
  let argv: string[];
  const heredocMounts: RunMount[] = [];
  if (ins.cmd.form === 'exec') argv = ins.cmd.argv;
  else if (ins.heredocs.length === 1 && /^\d*<<-?[^<\s]+$/.test(ins.cmd.cmdline.trim())) {
    // `RUN <<EOF … EOF` (BuildKit's dispatchRun): a body starting with `#!` is a script run
    // by its own interpreter from /dev/pipes/ (the /dev tmpfs: never in a layer); any other
    // body is given to the SHELL as its command string.
    const h = ins.heredocs[0]!;
    if (h.content.startsWith('#!')) {
      const script = join(await mkdtemp(join(ctx.tmpDir, 'heredoc-')), 'script');
      await writeFile(script, h.content, { mode: 0o755 });
      heredocMounts.push({ type: 'bind', target: `/dev/pipes/${h.name}`, source: '', hostSource: script, readonly: true });
      argv = [`/dev/pipes/${h.name}`];
    } else argv = [...shell, h.content];
  } else {
    // Anything else: the shell gets the line followed by every body and its delimiter, and
    // runs the heredocs itself (so `cat <<A >a && cat <<B >b` writes both files).
    const bodies = ins.heredocs.map((h) => `${h.content}${h.name}\n`).join('');
    argv = [...shell, ins.heredocs.length ? `${ins.cmd.cmdline}\n${bodies}` : ins.cmd.cmdline];
  }
  // ARGs are in RUN's environment, unless an ENV of the same name wins.
  const envKeys = envMap(c.Env);
  const env = [...(c.Env ?? [])];
  for (const [k, v] of args) if (!envKeys.has(k)) env.push(`${k}=${v}`);
  const mounts: RunMount[] = [...[...ins.mounts.map((m) => expandWord(m, vars, plan.escape)), ...ctx.globalMounts].map((m) => parseMount(m, where, ctx.secrets)), ...heredocMounts];
  const network = ins.network === 'none' ? 'none' : ins.network === 'host' ? 'host' : ctx.network;
  // As BuildKit: a Dockerfile alone cannot make a step privileged; the person building allows it.
  const privileged = ins.security === 'insecure';
  if (privileged && !ctx.allowInsecure) {
    throw new HtvendError('USAGE', `${where}: RUN --security=insecure runs the step privileged (every capability, no masked paths, all devices)`, { hint: 'pass --allow security.insecure to build-img-with-proxy if you trust this Dockerfile' });
  }
  const cache = ctx.cache;
  const step: Omit<RunStepRequest, 'rootfsLayers' | 'stageRootfs'> = {
    argv,
    env,
    user: c.User ?? '',
    workdir: c.WorkingDir || '/',
    mounts,
    network,
    privileged,
    platform: { os: image.config.os, architecture: image.config.architecture, ...(image.config.variant ? { variant: image.config.variant } : {}) },
    epoch: ctx.epoch,
    proxyEnv: ctx.proxy,
    contextDir: ctx.contextDir,
    cacheRoot: join(ctx.tmpDir, 'cache'),
    tmpDir: ctx.tmpDir,
    signal: ctx.signal,
    dockerfileLine: where,
    // Not process.stderr itself: once its reader is gone the step's output must still drain.
    output: stderrSink(),
  };
  // Step cache (docs/build-cache.md): a hit never touches the rootfs; its layer is applied
  // only when a later step needs the files.
  let key: string | undefined;
  if (cache?.enabled) {
    const fromImage = async (ref: string) => {
      const s = stageByRef(ctx.plan, ref);
      return s && s.index !== st.index ? (await ctx.stage(s.index)).image : ctx.pullImage(ref, where);
    };
    const k = (key = outcome.cacheKey = await runStepKey(step, image, ctx.proxy, fromImage));
    const hit = await timed(`cache lookup ${where}`, () => cache.lookup(k, 'RUN', where, (n) => (outcome.note = n)));
    if (hit) {
      outcome.status = 'cached';
      outcome.assets = hit.entry.assets.map((a) => ({ url: a.key, sha256: a.sha256, size: a.size }));
      return { layer: hit.layer, applied: false, listing: undefined };
    }
  }
  const id = cache?.channel ? cache.newStepId('run') : undefined;
  const before = id ? await cache!.unattributedCount() : undefined;
  const root = await fs.sync();
  const stepProxy = id ? await cache!.stepProxy(ctx.proxy, id, network) : undefined;
  const req: RunStepRequest = { ...step, rootfsLayers: [root], stageRootfs: (ref) => sourceRootfs(ctx, st, ref, where, 'mount'), proxyEnv: stepProxy?.injection ?? ctx.proxy };
  // The executor moves the step's files into the working rootfs (1.5 s instead of 8 s to
  // extract a 10,000-file layer again); one that does not leaves it to sync().
  let res;
  try {
    res = await ctx.runExecutor(req, { applyTo: root });
  } finally {
    await stepProxy?.release();
  }
  if (cache) {
    const report = id ? await cache.endStep(id) : undefined;
    const after = id ? await cache.unattributedCount() : undefined;
    if (id) outcome.stepId = id;
    outcome.assets = BuildCache.reportAssets(report);
    if (key) {
      const ok = cache.runStorable(report, after !== undefined && before !== undefined ? after - before : undefined, network);
      if (ok.ok) {
        const assets = (report?.assets ?? []).map((a) => ({ key: a.key, sha256: a.sha256, size: a.size }));
        cache.save({ key, kind: 'RUN', text: ins.text, layer: layerFields(res.layer), assets, other: (report?.other ?? []).map((o) => ({ method: o.method, key: o.key })) }, res.layer, res.listing);
      } else {
        outcome.note = ok.why;
        // Without attribution the build already said why, once.
        if (cache.channel) ctx.log.info(`${where}: ${ok.why}`);
      }
    }
  }
  return { layer: res.layer, applied: res.layer !== null && res.appliedTo === root, listing: res.listing };
}
