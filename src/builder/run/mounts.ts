/**
 * `RUN --mount=…` (and the global `--mount`s) → OCI mounts and env for one step, with the
 * semantics of buildah 1.44: bind (read-only unless `rw`, writes discarded), cache (kept for
 * this build only, under `cacheRoot`), tmpfs, secret (file at `target`, default
 * /run/secrets/<id>, or exported as `env=NAME`; `required` fails when no `--secret` of that
 * id was given).
 */
import { chmod, chown, copyFile, mkdir, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { HtvendError } from '../../util/errors.js';
import { mustRunTool } from './exec.js';
import { resolveInRoot } from './rootpath.js';
import type { OciMount } from './spec.js';
import type { BindMount, CacheMount, RunMount, RunStepRequest, SecretMount } from './types.js';

export interface PreparedMounts {
  mounts: OciMount[];
  /** `NAME=value` entries to add to the process env (secrets with `env=`). */
  env: string[];
  /** Releases cache locks; temp copies live in the step dir and go with it. */
  release: () => void;
}

/** Prepares the step's mounts; temp files (secret copies, rw bind copies) go under `stepDir`. */
export async function prepareMounts(req: RunStepRequest, stepDir: string): Promise<PreparedMounts> {
  const mounts: OciMount[] = [];
  const env: string[] = [];
  const releases: (() => void)[] = [];
  const release = () => releases.splice(0).forEach((r) => r());
  try {
    for (const m of req.mounts) {
      req.signal.throwIfAborted();
      switch (m.type) {
        case 'bind':
          mounts.push(await bindMount(req, m, stepDir));
          break;
        case 'cache': {
          const { mount, release: r } = await cacheMount(req, m, stepDir);
          mounts.push(mount);
          releases.push(r);
          break;
        }
        case 'tmpfs':
          mounts.push({
            destination: absTarget(req, m.target, 'tmpfs'),
            type: 'tmpfs',
            source: 'tmpfs',
            options: ['nosuid', 'nodev', 'mode=1777', ...(m.size !== undefined ? [`size=${m.size}`] : [])],
          });
          break;
        case 'secret': {
          const s = await secretMount(req, m, stepDir);
          if (s?.env) env.push(s.env);
          if (s?.mount) mounts.push(s.mount);
          break;
        }
        default:
          throw new HtvendError('INPUT', `${req.dockerfileLine}: unsupported mount type ${(m as RunMount).type}`);
      }
    }
    return { mounts, env, release };
  } catch (e) {
    release();
    throw e;
  }
}

function absTarget(req: RunStepRequest, target: string, what: string): string {
  if (!target) throw new HtvendError('INPUT', `${req.dockerfileLine}: --mount=type=${what} needs a target`);
  return posix.resolve('/', target);
}

async function bindMount(req: RunStepRequest, m: BindMount, stepDir: string): Promise<OciMount> {
  if (m.hostSource !== undefined) return { destination: absTarget(req, m.target, 'bind'), type: 'bind', source: m.hostSource, options: ['rbind', 'ro'] };
  const root = m.from !== undefined ? await req.stageRootfs(m.from) : req.contextDir;
  const src = await resolveInRoot(root, m.source || '/');
  if (!src.exists) {
    throw new HtvendError('NOT_FOUND', `${req.dockerfileLine}: --mount=type=bind source ${m.source || '.'} not found in ${m.from ?? 'the build context'}`);
  }
  let source = join(root, src.rel);
  if (!m.readonly) {
    // rw: the step may write, but neither the context nor the other stage may change.
    const copy = await mkdtemp(join(stepDir, 'bind-'));
    await mustRunTool(['cp', '-a', '--reflink=auto', '-T', source, join(copy, 'src')], `copying bind mount source ${m.source}`, req.signal);
    source = join(copy, 'src');
  }
  return { destination: absTarget(req, m.target, 'bind'), type: 'bind', source, options: ['rbind', m.readonly ? 'ro' : 'rw'] };
}

/** In-use cache ids of this process, for `sharing=locked|private`. */
const cacheLocks = new Map<string, Promise<void>>();

async function cacheMount(req: RunStepRequest, m: CacheMount, stepDir: string): Promise<{ mount: OciMount; release: () => void }> {
  const id = m.id || m.target;
  // One path component, never `.`/`..`: an id must not name a directory outside cacheRoot.
  let dir = join(req.cacheRoot, encodeURIComponent(id).replace(/^\.+/, (dots) => '%2E'.repeat(dots.length)));
  const key = dir;
  let release = () => {};
  if (m.sharing !== 'shared' && cacheLocks.has(key)) {
    if (m.sharing === 'private') dir = await mkdtemp(join(stepDir, 'cache-'));
    else while (cacheLocks.has(key)) await cacheLocks.get(key);
  }
  if (m.sharing !== 'shared' && !cacheLocks.has(key)) {
    let done!: () => void;
    cacheLocks.set(key, new Promise<void>((r) => (done = r)));
    release = () => {
      cacheLocks.delete(key);
      done();
    };
  }
  if (!(await exists(dir))) {
    await mkdir(dir, { recursive: true });
    if (m.from !== undefined) {
      const root = await req.stageRootfs(m.from);
      const src = await resolveInRoot(root, m.source ?? '/');
      if (src.exists) await mustRunTool(['cp', '-a', '--reflink=auto', '-T', join(root, src.rel), dir], `seeding cache ${id}`, req.signal);
    }
    await chmod(dir, m.mode);
    await chown(dir, m.uid, m.gid);
  }
  return { mount: { destination: absTarget(req, m.target, 'cache'), type: 'bind', source: dir, options: ['rbind', m.readonly ? 'ro' : 'rw'] }, release };
}

async function secretMount(req: RunStepRequest, m: SecretMount, stepDir: string): Promise<{ env?: string; mount?: OciMount } | undefined> {
  if (!m.source) {
    if (m.required) {
      throw new HtvendError('INPUT', `${req.dockerfileLine}: secret ${m.id} is required but no --secret id=${m.id} was given`);
    }
    return undefined;
  }
  if (m.env) {
    const value = m.source.kind === 'value' ? m.source.value : await readFile(m.source.path, 'utf8');
    return { env: `${m.env}=${value}` };
  }
  // A private copy with the requested owner and mode, so the host file is never exposed rw.
  const dir = await mkdtemp(join(stepDir, 'secret-'));
  const file = join(dir, 'secret');
  if (m.source.kind === 'value') await writeFile(file, m.source.value, { mode: 0o600 });
  else await copyFile(m.source.path, file);
  await chmod(file, m.mode);
  await chown(file, m.uid, m.gid);
  return { mount: { destination: absTarget(req, m.target ?? `/run/secrets/${m.id}`, 'secret'), type: 'bind', source: file, options: ['rbind', 'ro'] } };
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
