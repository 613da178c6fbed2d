/**
 * build-img-with-proxy's cache and report flags (docs/build-cache.md), kept apart from the
 * main CLI file: `addCacheOptions(program)` declares them, `openBuildCache()` turns them into
 * the build's `BuildCache`, `finishBuildCache()` ends it (report file, table on a terminal).
 */
import { Option, type Command } from 'commander';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { HtvendError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { BuildCache } from '../builder/cache/session.js';
import { parseCacheRef } from '../builder/cache/remote.js';

export interface CacheCliOptions {
  layers?: boolean;
  noCache?: boolean;
  /** commander's name for `--no-cache` is `cache` (false when given). */
  cache?: boolean;
  cacheDir?: string;
  cacheFrom: string[];
  cacheTo: string[];
  cacheMaxSize: string;
  report?: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

/** Go's strconv.ParseBool, as buildah reads BUILDAH_LAYERS. */
function parseGoBool(v: string, what: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False', ''].includes(v)) return false;
  throw new HtvendError('USAGE', `${what}=${v}: expected true or false`);
}

/** `10G`, `512M`, `2048K`, plain bytes. */
export function parseSize(v: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(v.trim());
  if (!m) throw new HtvendError('USAGE', `${flag} ${v}: want a size like 10G, 512M or bytes`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.floor(Number(m[1]) * mult);
}

export function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  return join(env['XDG_CACHE_HOME'] || join(env['HOME'] || homedir(), '.cache'), 'htvend', 'build-cache');
}

export function addCacheOptions(program: Command): Command {
  return program
    .addOption(new Option('--layers [bool]', 'cache each step and reuse cached steps (default $BUILDAH_LAYERS, else false)').argParser((v) => parseGoBool(v, '--layers')))
    .option('--no-cache', 'do not reuse cached steps (still store new ones)')
    .option('--cache-dir <dir>', 'step cache directory (default $XDG_CACHE_HOME/htvend/build-cache)')
    .option('--cache-from <docker://REG/REPO>', 'also look steps up in this registry repository (implies --layers; repeatable)', collect, [])
    .option('--cache-to <docker://REG/REPO>', 'push the steps of this build there (implies --layers; repeatable)', collect, [])
    .option('--cache-max-size <size>', 'prune the local step cache to this size, least recently used first', '10G')
    .option('--report <file>', 'write a JSON record per Dockerfile instruction: cached or run, time, layer, assets fetched');
}

export interface OpenCacheContext {
  dockerfileName: string;
  env: NodeJS.ProcessEnv;
  tlsVerify?: boolean;
  certDir?: string;
  tmpDir: string;
  log: Logger;
  signal: AbortSignal;
}

export async function openBuildCache(o: CacheCliOptions, c: OpenCacheContext): Promise<BuildCache> {
  for (const r of o.cacheFrom) parseCacheRef(r, '--cache-from');
  for (const r of o.cacheTo) parseCacheRef(r, '--cache-to');
  const layers = o.layers ?? (o.cacheFrom.length > 0 || o.cacheTo.length > 0 || (c.env['BUILDAH_LAYERS'] !== undefined && parseGoBool(c.env['BUILDAH_LAYERS'], 'BUILDAH_LAYERS')));
  return BuildCache.open({
    layers,
    noCache: o.cache === false || o.noCache === true,
    dir: resolve(o.cacheDir ?? defaultCacheDir(c.env)),
    maxBytes: parseSize(o.cacheMaxSize, '--cache-max-size'),
    cacheFrom: o.cacheFrom,
    cacheTo: o.cacheTo,
    reportPath: o.report ? resolve(o.report) : undefined,
    dockerfileName: c.dockerfileName,
    env: c.env,
    ...(c.tlsVerify === false ? { tlsVerify: false } : {}),
    ...(c.certDir ? { certDir: c.certDir } : {}),
    tmpDir: c.tmpDir,
    log: c.log,
    signal: c.signal,
  });
}

/** Ends the cache (stores, pushes, report) and prints the step table on a terminal. */
export async function finishBuildCache(cache: BuildCache, ok: boolean): Promise<void> {
  await cache.finish({ ok });
  if (ok && process.stderr.isTTY && (cache.enabled || cache.report.steps.some((s) => s.assets.length))) process.stderr.write(cache.report.table());
}
