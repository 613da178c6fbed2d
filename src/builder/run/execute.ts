/**
 * One RUN step: overlay (or copy) snapshot of the stage rootfs → OCI bundle → runc/crun →
 * the step's changes as a layer. See docs/builder-run.md.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, lstat, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HtvendError } from '../../util/errors.js';
import { timed } from '../../util/timing.js';
import { writeLayer } from '../fs/layer-writer.js';
import { listingFromEntries } from '../fs/listing.js';
import type { LayerEntry } from '../fs/types.js';
import { applyEntries } from './apply-entries.js';
import { proxyInjection } from './inject.js';
import { prepareMounts } from './mounts.js';
import { canUseOverlay, mountOverlay, unmountOverlay } from './overlay.js';
import { checkPlatform } from './platform.js';
import { resolveInRoot } from './rootpath.js';
import { pickRuntime, runContainer } from './runtime.js';
import { dropStubsFromCopy, diffTrees, makeCopySnapshot } from './snapshot-copy.js';
import { buildSpec, getEnv, setEnv, sortMounts, standardMounts, type OciMount } from './spec.js';
import type { RunExecutorOptions, RunStepRequest, RunStepResult } from './types.js';
import { upperToEntries, type MountStubs } from './upper.js';
import { resolveUser } from './user.js';
import { stderrSink, writeStderr } from '../../util/stdio.js';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
let counter = 0;

/**
 * Knobs the builder normally takes from the environment (tests set them explicitly), plus
 * `applyTo`: the step's files are moved there after the layer is written (see
 * apply-entries.ts) and the result says `appliedTo`, so the builder marks the layer as applied
 * instead of extracting it again.
 */
export interface ExecuteOptions extends RunExecutorOptions {
  /** Default `BUILD_IMG_SNAPSHOT` (`overlay` | `copy`), else overlay when it can be mounted. */
  snapshot?: 'overlay' | 'copy';
  /** Default `BUILD_IMG_RUNTIME`, else runc, else crun. */
  runtime?: string;
}

/** Runs one RUN step and returns its changes as a layer (null when it changed nothing). */
export async function executeRun(req: RunStepRequest, opts: ExecuteOptions = {}): Promise<RunStepResult> {
  req.signal.throwIfAborted();
  if (req.rootfsLayers.length === 0) throw new HtvendError('INTERNAL', `${req.dockerfileLine}: RUN without a rootfs`);
  await checkPlatform(req.platform, req.dockerfileLine);
  const stateRoot = join(req.tmpDir, 'runtime-state');
  await mkdir(stateRoot, { recursive: true, mode: 0o700 });
  const rt = await pickRuntime(stateRoot, opts.runtime ? { ...process.env, BUILD_IMG_RUNTIME: opts.runtime } : process.env);
  const stepDir = await mkdtemp(join(req.tmpDir, 'run-'));
  try {
    const overlay = await canUseOverlay(req.tmpDir, opts.snapshot ?? snapshotFromEnv());
    const { entries, result } = overlay ? await runOnOverlay(req, stepDir, rt) : await runOnCopy(req, stepDir, rt);
    if (opts.applyTo === undefined) return result;
    await timed('apply', () => applyEntries(opts.applyTo!, entries, req.signal));
    return { ...result, appliedTo: opts.applyTo };
  } finally {
    await timed('cleanup', () => rm(stepDir, { recursive: true, force: true }));
  }
}

type Rt = Awaited<ReturnType<typeof pickRuntime>>;

interface StepOutcome {
  entries: LayerEntry[];
  result: RunStepResult;
}

async function runOnOverlay(req: RunStepRequest, stepDir: string, rt: Rt): Promise<StepOutcome> {
  const dirs = await mountOverlay(req.rootfsLayers, join(stepDir, 'ovl'), req.signal);
  let stubs: MountStubs;
  try {
    stubs = await timed('run', () => runStep(req, stepDir, dirs.merged, rt));
  } finally {
    await unmountOverlay(dirs.merged);
  }
  const entries = await timed('walk upper', () => upperToEntries(dirs.upper, stubs, req.signal));
  return { entries, result: await timed('write layer', () => layerFrom(req, entries)) };
}

async function runOnCopy(req: RunStepRequest, stepDir: string, rt: Rt): Promise<StepOutcome> {
  if (req.rootfsLayers.length > 1) throw new HtvendError('INTERNAL', 'the copy snapshot supports a single rootfs layer');
  const lower = req.rootfsLayers[0]!;
  const copy = join(stepDir, 'rootfs');
  const mark = await makeCopySnapshot(lower, copy, req.signal);
  const stubs = await runStep(req, stepDir, copy, rt);
  await dropStubsFromCopy(copy, stubs);
  const entries = await diffTrees(lower, copy, mark, new Set(stubs.parents.keys()), req.signal);
  return { entries, result: await layerFrom(req, entries) };
}

/** Must run before stepDir (which holds the entries' sources) is removed; the blob goes to tmpDir. */
async function layerFrom(req: RunStepRequest, entries: LayerEntry[]): Promise<RunStepResult> {
  if (entries.length === 0) return { layer: null };
  return { layer: await writeLayer(entries, { epoch: req.epoch, dir: req.tmpDir, signal: req.signal }), listing: listingFromEntries(entries) };
}

/** Builds the bundle on `rootfs`, runs it, and returns the mountpoint stubs to drop. */
async function runStep(req: RunStepRequest, stepDir: string, rootfs: string, rt: Rt): Promise<MountStubs> {
  const user = await resolveUser(rootfs, req.user, req.dockerfileLine);
  const injected = proxyInjection(req);
  const prepared = await prepareMounts(req, stepDir);
  try {
    let env = req.env.slice();
    if (getEnv(env, 'PATH') === undefined) env = setEnv(env, 'PATH', DEFAULT_PATH);
    if (getEnv(env, 'HOME') === undefined) env = setEnv(env, 'HOME', user.home);
    for (const e of [...injected.env, ...prepared.env]) {
      const i = e.indexOf('=');
      env = setEnv(env, e.slice(0, i), e.slice(i + 1));
    }
    const ordered = sortMounts([...(await hostNetworkFiles(stepDir)), ...injected.mounts, ...prepared.mounts]);
    const { mounts, stubs } = await resolveMountpoints(rootfs, [...standardMounts(), ...ordered]);
    const nofile = await openFilesLimit();
    const spec = buildSpec({ rootfs, args: req.argv, env, cwd: req.workdir || '/', user, network: req.network, privileged: req.privileged, mounts: mounts.slice(standardMounts().length), nofile });
    const bundle = join(stepDir, 'bundle');
    await mkdir(bundle, { mode: 0o700 });
    await writeFile(join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
    const id = `build-img-${process.pid}-${++counter}-${randomBytes(4).toString('hex')}`;
    const code = await runContainer(rt, { bundle, id, output: req.output ?? stderrSink(), signal: req.signal });
    if (code !== 0) {
      throw new HtvendError('CHILD', `${req.dockerfileLine}: RUN ${JSON.stringify(req.argv)} failed: exit code ${code}`, { exitCode: 1 });
    }
    return stubs;
  } finally {
    prepared.release();
  }
}

/**
 * Points every mount destination at where the runtime will really put it (symlinks followed
 * inside the rootfs) and records which paths the runtime will have to create.
 */
async function resolveMountpoints(rootfs: string, mounts: OciMount[]): Promise<{ mounts: OciMount[]; stubs: MountStubs }> {
  const stubs: MountStubs = { created: new Set(), parents: new Map() };
  const out: OciMount[] = [];
  for (const m of mounts) {
    const r = await resolveInRoot(rootfs, m.destination);
    out.push({ ...m, destination: `/${r.rel}` });
    if (r.exists) continue;
    for (const p of r.missing) stubs.created.add(p);
    const first = r.missing[0]!;
    for (let i = first.lastIndexOf('/'); i > 0; i = first.lastIndexOf('/', i - 1)) {
      const parent = first.slice(0, i);
      if (stubs.parents.has(parent) || stubs.created.has(parent)) continue;
      const st = await lstat(join(rootfs, parent));
      stubs.parents.set(parent, { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
    }
  }
  return { mounts: out, stubs };
}

/** This process's hard RLIMIT_NOFILE (what Docker would give: the daemon's own limit). */
async function openFilesLimit(): Promise<number> {
  const limits = await readFile('/proc/self/limits', 'utf8').catch(() => '');
  const m = /^Max open files\s+\S+\s+(\d+)/m.exec(limits);
  return m ? Number(m[1]) : 1024;
}

/**
 * The host's /etc/resolv.conf and /etc/hosts (the step shares the host network), as private
 * copies so a step that edits them changes neither the host nor the image.
 */
async function hostNetworkFiles(stepDir: string): Promise<OciMount[]> {
  const dir = join(stepDir, 'etc');
  await mkdir(dir, { mode: 0o755 });
  const out: OciMount[] = [];
  for (const name of ['resolv.conf', 'hosts']) {
    const copy = join(dir, name);
    try {
      await copyFile(`/etc/${name}`, copy);
    } catch {
      await writeFile(copy, name === 'hosts' ? '127.0.0.1 localhost\n::1 localhost\n' : '');
    }
    out.push({ destination: `/etc/${name}`, type: 'bind', source: copy, options: ['rbind', 'rw'] });
  }
  return out;
}

function snapshotFromEnv(): 'overlay' | 'copy' | undefined {
  const v = process.env.BUILD_IMG_SNAPSHOT;
  if (v === undefined || v === '') return undefined;
  if (v === 'overlay' || v === 'copy') return v;
  throw new HtvendError('USAGE', `BUILD_IMG_SNAPSHOT=${v}: expected overlay or copy`);
}
