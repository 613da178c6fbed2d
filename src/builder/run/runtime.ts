/**
 * Running one bundle with an OCI runtime (runc or crun): `RT --root STATE run --bundle B ID`,
 * output streamed live, and `RT delete -f ID` always afterwards. Aborting kills the container.
 */
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { HtvendError } from '../../util/errors.js';

export interface Runtime {
  /** Absolute path of the runtime binary. */
  path: string;
  name: string;
  /** Private state directory (`--root`), so our containers never mix with others. */
  stateRoot: string;
}

/**
 * Picks the runtime: `BUILD_IMG_RUNTIME` (a name on PATH or a path) when set, else runc,
 * else crun.
 */
export async function pickRuntime(stateRoot: string, env: NodeJS.ProcessEnv = process.env): Promise<Runtime> {
  const wanted = env.BUILD_IMG_RUNTIME?.trim();
  const candidates = wanted ? [wanted] : ['runc', 'crun'];
  for (const c of candidates) {
    const path = await findExecutable(c, env.PATH ?? '');
    if (path) return { path, name: c.split('/').pop()!, stateRoot };
  }
  throw new HtvendError('NOT_FOUND', wanted ? `BUILD_IMG_RUNTIME=${wanted}: no such executable` : 'no OCI runtime found: install runc or crun', {
    hint: '`htvend doctor` checks every prerequisite and names the Debian package (apt-get install runc)',
  });
}

async function findExecutable(name: string, pathEnv: string): Promise<string | undefined> {
  const dirs = name.includes('/') ? [''] : pathEnv.split(delimiter).filter(Boolean);
  for (const d of dirs) {
    const p = d ? join(d, name) : name;
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export interface RunContainerOptions {
  bundle: string;
  id: string;
  /** Where the container's stdout and stderr go (never ended by us). */
  output: NodeJS.WritableStream;
  signal: AbortSignal;
}

/**
 * Runs the container to completion and returns its exit code (128+n when killed by signal n).
 * Rejects with ABORTED when `signal` fires (after killing the container).
 */
export async function runContainer(rt: Runtime, opts: RunContainerOptions): Promise<number> {
  opts.signal.throwIfAborted();
  const child = spawn(rt.path, ['--root', rt.stateRoot, 'run', '--bundle', opts.bundle, opts.id], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(opts.output as NodeJS.WritableStream, { end: false });
  child.stderr.pipe(opts.output as NodeJS.WritableStream, { end: false });
  let aborted = false;
  const onAbort = () => {
    aborted = true;
    // The runtime forwards signals to the container's init, but `kill` reaches it even when
    // the runtime is still setting up; SIGKILL the runtime too in case it is wedged.
    void runQuiet(rt, ['kill', opts.id, 'KILL']).finally(() => setTimeout(() => child.kill('SIGKILL'), 2000).unref());
  };
  opts.signal.addEventListener('abort', onAbort, { once: true });
  try {
    const code = await new Promise<number>((resolve, reject) => {
      child.on('error', (e) => reject(new HtvendError('IO', `cannot start ${rt.name}: ${e.message}`, { cause: e })));
      child.on('close', (c, sig) => resolve(c ?? 128 + (sig ? signalNumber(sig) : 0)));
    });
    if (aborted) throw new HtvendError('ABORTED', 'RUN step aborted');
    return code;
  } finally {
    opts.signal.removeEventListener('abort', onAbort);
    await deleteContainer(rt, opts.id);
  }
}

/** `RT delete -f ID`; a container that never got created is not an error. */
export async function deleteContainer(rt: Runtime, id: string): Promise<void> {
  await runQuiet(rt, ['delete', '-f', id]);
}

function runQuiet(rt: Runtime, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(rt.path, ['--root', rt.stateRoot, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.on('error', () => resolve({ code: -1, stderr }));
    c.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

function signalNumber(sig: NodeJS.Signals): number {
  const n = (
    { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 } as Partial<Record<NodeJS.Signals, number>>
  )[sig];
  return n ?? 0;
}
