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

/** What `BUILD_IMG_RUNTIME` asks for (undefined: runc, else crun) and what it finds on PATH. */
export interface RuntimeLookup {
  wanted: string | undefined;
  found: { path: string; name: string } | undefined;
}

/**
 * The one runtime lookup, for the builder and `htvend doctor`: `BUILD_IMG_RUNTIME` (a name on
 * `env.PATH` or a path) when set, else runc, else crun.
 */
export async function findRuntime(env: NodeJS.ProcessEnv = process.env): Promise<RuntimeLookup> {
  const wanted = env.BUILD_IMG_RUNTIME?.trim() || undefined;
  for (const c of wanted ? [wanted] : ['runc', 'crun']) {
    const path = await findExecutable(c, env.PATH ?? '');
    if (path) return { wanted, found: { path, name: c.split('/').pop()! } };
  }
  return { wanted, found: undefined };
}

/** The runtime `findRuntime` picks, with its private state directory; a clear error without one. */
export async function pickRuntime(stateRoot: string, env: NodeJS.ProcessEnv = process.env): Promise<Runtime> {
  const { wanted, found } = await findRuntime(env);
  if (found) return { ...found, stateRoot };
  throw new HtvendError('NOT_FOUND', wanted ? `BUILD_IMG_RUNTIME=${wanted}: no such executable` : 'no OCI runtime found: install runc or crun', {
    hint: '`htvend doctor` checks every prerequisite and names the Debian package (apt-get install runc)',
  });
}

/** `name` on `pathEnv` (or as a path when it has a `/`), if executable. */
export async function findExecutable(name: string, pathEnv: string): Promise<string | undefined> {
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
 * argv prefix that ties the runtime to this process (SPEC §11, "a builder that dies leaves no
 * running container process"): `setpriv --pdeathsig KILL` makes `unshare` die with us, and
 * `unshare --pid --fork --kill-child` runs the runtime as init of a fresh PID namespace, whose
 * death takes every process in it (the container's own namespace is nested inside) along.
 * `--mount-proc` gives the runtime a /proc of that namespace (runc reads /proc/PID/fd of the
 * pids it forked). Empty when the host cannot do it (no util-linux, no CAP_SYS_ADMIN): the
 * container then only dies with the runtime, and the next build's sweep is the safety net.
 */
export function tiedToUs(): Promise<string[]> {
  tieProbe ??= new Promise((resolve) => {
    const argv = ['setpriv', '--pdeathsig', 'KILL', '--', 'unshare', '--pid', '--fork', '--mount-proc', '--kill-child=SIGKILL', '--'];
    const c = spawn(argv[0]!, [...argv.slice(1), 'true'], { stdio: 'ignore' });
    c.on('error', () => resolve([]));
    c.on('close', (code) => resolve(code === 0 ? argv : []));
  });
  return tieProbe;
}
let tieProbe: Promise<string[]> | undefined;

/**
 * Runs the container to completion and returns its exit code (128+n when killed by signal n).
 * Rejects with ABORTED when `signal` fires (after killing the container).
 */
export async function runContainer(rt: Runtime, opts: RunContainerOptions): Promise<number> {
  opts.signal.throwIfAborted();
  const tie = await tiedToUs();
  const argv = [...tie, rt.path, '--root', rt.stateRoot, 'run', '--bundle', opts.bundle, opts.id];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(opts.output as NodeJS.WritableStream, { end: false });
  child.stderr.pipe(opts.output as NodeJS.WritableStream, { end: false });
  let aborted = false;
  const onAbort = () => {
    aborted = true;
    // In our PID namespace, killing its init's parent (unshare) kills everything in it. The
    // runtime's own `kill` would be wrong there: its state holds pids of that namespace.
    if (tie.length) {
      child.kill('SIGKILL');
      return;
    }
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
    await deleteContainer(rt, opts.id, { dead: tie.length > 0 });
  }
}

/**
 * `RT delete ID` of a container known to be dead (its PID namespace is gone), else
 * `RT delete -f ID`; a container that never got created is not an error. `-f` is avoided when
 * it can be: for a container of another PID namespace it would signal a pid read from the
 * state file in ours.
 */
export async function deleteContainer(rt: Runtime, id: string, o: { dead?: boolean; orForce?: boolean } = {}): Promise<void> {
  if (o.dead && (await runQuiet(rt, ['delete', id])).code === 0) return;
  if (o.dead && !o.orForce) return;
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
