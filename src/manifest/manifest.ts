/**
 * The manifest (assets.json) as the commands use it (SPEC §5).
 *
 * Modes:
 * - `build`  (htvend build): exclusive lock; `get` returns this run's entry, else the previous
 *   file's (unless `forceRefresh` / `clean`); `put` records into this run's set and schedules
 *   an incremental atomic save. `close()` writes exactly what this run requested.
 * - `update` (htvend verify --repair): exclusive lock; every loaded entry is kept, `put`
 *   replaces one; saves are incremental as in build mode.
 * - `offline` / `read` (htvend offline, verify, export): read-only, no lock. A missing file
 *   is an error, as in the Go tool (only a writer starts from an empty manifest).
 *
 * Incremental saves hold the previous file's entries *plus* this run's (unless `clean`), so a
 * build killed half-way never loses entries of the last complete build; only a normal
 * `close()` prunes to exactly this run's set.
 */
import { lstat, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import lockfile from 'proper-lockfile';
import { HtvendError, describeError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { AssetEntry, AssetLookup } from './types.js';
import { decodeAssets, encodeAssets, sameEntry, type AssetMap } from './codec.js';
import { writeFileAtomic } from './atomic.js';

export type ManifestMode = 'build' | 'update' | 'offline' | 'read';

export interface OpenManifestOptions {
  mode: ManifestMode;
  /** build: never answer `get` from the previous file (every asset is fetched again). */
  forceRefresh?: boolean | undefined;
  /**
   * build: start from an empty manifest. The Go tool's `--clean` resets the local list before
   * running; here it means previous entries are neither reused nor carried into saves.
   */
  clean?: boolean | undefined;
  signal?: AbortSignal | undefined;
  log?: Logger | undefined;
  /** Debounce for incremental saves (default 100 ms): bounds what a SIGKILL can lose. */
  saveDelayMs?: number | undefined;
  /** Locks older than this are taken over (ms, default 10 s; the holder refreshes every stale/2). */
  staleLockMs?: number | undefined;
}

export interface CloseOptions {
  /**
   * build mode only. true (default): the file becomes exactly what this run requested.
   * false: keep the previous file's entries too (e.g. when the build command failed early).
   */
  prune?: boolean | undefined;
}

/** A loaded assets.json; implements the proxy's `AssetLookup`. Use `Manifest.open()`. */
export class Manifest implements AssetLookup {
  private readonly run: AssetMap = new Map();
  private timer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();
  private dirty = false;
  private saveError: unknown;
  private closed = false;
  /** Exact text last read from or written to disk ('' if there was no file). */
  private onDisk: string;

  private constructor(
    /** Path of the assets.json file. */
    readonly path: string,
    readonly mode: ManifestMode,
    /** The entries of the file as loaded (empty for `clean` or a missing file). */
    private readonly previous: AssetMap,
    /** The entries of the file as loaded, also with `clean` (for the end-of-run summary). */
    readonly loaded: ReadonlyMap<string, AssetEntry>,
    loadedText: string,
    private readonly opts: OpenManifestOptions,
    private readonly release: (() => Promise<void>) | undefined,
  ) {
    this.onDisk = loadedText;
  }

  /** Opens (and in build/update mode locks) the manifest at `path`. */
  static async open(path: string, opts: OpenManifestOptions): Promise<Manifest> {
    const writable = opts.mode === 'build' || opts.mode === 'update';
    const log = opts.log ?? silentLogger;
    let release: (() => Promise<void>) | undefined;
    if (writable) release = await lock(path, opts, log);
    try {
      let text = '';
      let previous: AssetMap = new Map();
      try {
        const bytes = await readFile(path, { signal: opts.signal });
        text = bytes.toString('utf8');
        previous = decodeAssets(bytes, path);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT') {
          if (e instanceof HtvendError) throw e;
          throw new HtvendError('IO', `cannot read ${path}: ${describeError(e)}`, { cause: e });
        }
        if (!writable) throw new HtvendError('NOT_FOUND', `${path} does not exist`, { hint: 'record it first with `htvend build`, or pass -m/--manifest' });
      }
      const loaded = previous;
      if (opts.mode === 'build' && opts.clean) previous = new Map();
      return new Manifest(path, opts.mode, previous, loaded, text, opts, release);
    } catch (e) {
      await release?.().catch(() => {});
      throw e;
    }
  }

  /** See the class comment for what each mode answers. */
  get(key: string): AssetEntry | undefined {
    const mine = this.run.get(key);
    if (mine) return mine;
    if (this.mode === 'build' && this.opts.forceRefresh) return undefined;
    return this.previous.get(key);
  }

  /** Records `key` as requested by this run (build) or replaces it (update). */
  put(key: string, entry: AssetEntry): void {
    if (this.mode !== 'build' && this.mode !== 'update') throw new HtvendError('INTERNAL', `${this.path} was opened read-only (${this.mode})`);
    if (this.closed) throw new HtvendError('INTERNAL', `${this.path}: put after close`);
    const had = this.run.get(key);
    if (had && sameEntry(had, entry)) return;
    this.run.set(key, entry);
    this.dirty = true;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.saving = this.saving.then(() => this.saveNow(this.snapshot(false)));
    }, this.opts.saveDelayMs ?? 100);
  }

  /** The entries a reader should see: the loaded file plus (build/update) this run's entries. */
  entries(): ReadonlyMap<string, AssetEntry> {
    return this.snapshot(false);
  }

  /** Only the keys this run has `put` (build mode: what the final file will hold). */
  requested(): ReadonlyMap<string, AssetEntry> {
    return this.run;
  }

  /** Waits for any scheduled incremental save; rethrows a failed save. */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.saving = this.saving.then(() => this.saveNow(this.snapshot(false)));
    }
    await this.saving;
    if (this.saveError) throw this.saveError;
  }

  /**
   * Writes the final file (writable modes), then releases the lock. Idempotent. The file is
   * not rewritten when its bytes would not change, so an unchanged Go-written file stays
   * byte-identical (and keeps its mtime).
   */
  async close(opts: CloseOptions = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    try {
      if (this.release) {
        await this.saving;
        const prune = this.mode === 'build' && (opts.prune ?? true);
        this.dirty = true;
        await this.saveNow(this.snapshot(prune));
        if (this.saveError) throw this.saveError;
      }
    } finally {
      await this.release?.();
    }
  }

  private snapshot(pruned: boolean): AssetMap {
    if (pruned) return new Map(this.run);
    const all = new Map(this.previous);
    for (const [k, v] of this.run) all.set(k, v);
    return all;
  }

  private async saveNow(entries: AssetMap): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    const text = encodeAssets(entries);
    if (text === this.onDisk) return;
    try {
      await writeFileAtomic(this.path, text);
      this.onDisk = text;
    } catch (e) {
      this.saveError ??= e;
      (this.opts.log ?? silentLogger).warn(describeError(e));
    }
  }
}

/** Takes the writer's lock `<path>.lock`; a held lock is a LOCKED error naming the manifest. */
async function lock(path: string, opts: OpenManifestOptions, log: Logger): Promise<() => Promise<void>> {
  const lockPath = `${path}.lock`;
  try {
    await stat(dirname(path));
  } catch (e) {
    throw new HtvendError('IO', `cannot create ${path}: directory ${dirname(path)} is not accessible (${describeError(e)})`, { cause: e });
  }
  try {
    return await lockfile.lock(path, {
      realpath: false, // the manifest may not exist yet
      lockfilePath: lockPath,
      stale: opts.staleLockMs ?? 10_000,
      retries: 0,
      onCompromised: (err) => log.warn(`lock on ${path} was lost (${describeError(err)}); another htvend may be writing it too`),
    });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOCKED' || code === 'ENOTDIR') {
      // The Go htvend locks with flock(2) on a plain file of the same name (removed when it exits).
      const byGo = await lstat(lockPath).then((s) => s.isFile(), () => false);
      if (byGo) {
        throw new HtvendError('LOCKED', `${path} is locked: ${lockPath} is a lock file of the Go htvend`, {
          hint: `if no Go htvend is running on this manifest, remove ${lockPath}`,
          cause: e,
        });
      }
      throw new HtvendError('LOCKED', `${path} is locked by another htvend writer (${lockPath} exists)`, {
        hint: `wait for the other build to finish; if none is running, remove ${lockPath} (taken over automatically after ${Math.round((opts.staleLockMs ?? 10_000) / 1000)} s)`,
        cause: e,
      });
    }
    throw new HtvendError('IO', `cannot lock ${path}: ${describeError(e)}`, { cause: e });
  }
}
