/**
 * The private temp dir of one build, and the sweep of dirs left by builds that died
 * (SPEC §11). Each dir is `$TMPDIR/build-img-<pid>-XXXXXX` (the pid in the name from the
 * very first moment, so a concurrent sweep never mistakes a build that is still writing its
 * lock for a dead one) holding `lock`: `{"pid":N,"start":T}`, T being the process start time
 * from /proc/PID/stat, so a recycled pid is not taken for the build that owned it.
 *
 * A build is gone when its pid does not exist or has another start time. Its leftovers are
 * swept in this order: containers in its runtime state (`RT delete`), then every mount under
 * its dir (deepest first; lazily when busy), then the dir itself, but only once no mount
 * remains under it: removing a dir with a mounted overlay would delete through it. Builds
 * that are alive are never touched; other builds run concurrently on the same machine.
 */
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { runTool } from '../run/exec.js';
import { deleteContainer, pickRuntime } from '../run/runtime.js';

const PREFIX = 'build-img-';
const LOCK = 'lock';

interface Lock {
  pid: number;
  start?: number | undefined;
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot), or undefined if no such process. */
async function startTime(pid: number): Promise<number | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!stat) return undefined;
  // comm (field 2) may hold spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[19]);
}

/** Creates this build's dir (0700) with its lock, after sweeping what dead builds left. */
export async function createBuildDir(log: Logger, base = tmpdir()): Promise<string> {
  await sweepDeadBuilds(log, base);
  const dir = await mkdtemp(join(base, `${PREFIX}${process.pid}-`));
  await chmod(dir, 0o700);
  const lock: Lock = { pid: process.pid, start: await startTime(process.pid) };
  await writeFile(join(dir, LOCK), JSON.stringify(lock) + '\n', { mode: 0o600 });
  return dir;
}

/** The lock of a build dir: the file, else the pid in the name; undefined for a dir that is not ours. */
async function lockOf(dir: string, name: string): Promise<Lock | undefined> {
  try {
    const j = JSON.parse(await readFile(join(dir, LOCK), 'utf8')) as Partial<Lock>;
    if (Number.isInteger(j.pid)) return { pid: j.pid!, start: typeof j.start === 'number' ? j.start : undefined };
  } catch {
    /* no lock yet (a build between mkdtemp and writeFile), or an older layout */
  }
  const m = /^build-img-(\d+)-/.exec(name);
  return m ? { pid: Number(m[1]) } : undefined;
}

async function isGone(lock: Lock): Promise<boolean> {
  const start = await startTime(lock.pid);
  if (start === undefined) return true;
  return lock.start !== undefined && start !== lock.start;
}

/** Mount points at or under `dir`, deepest first (octal escapes of mountinfo undone). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const points = info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(dir + '/'));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Sweeps the dirs of builds whose process is gone. Failures are logged, never thrown. */
export async function sweepDeadBuilds(log: Logger, base = tmpdir()): Promise<void> {
  const names = await readdir(base).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.startsWith(PREFIX))) {
    const dir = join(base, name);
    const lock = await lockOf(dir, name);
    if (!lock || lock.pid === process.pid || !(await isGone(lock))) continue;
    try {
      await sweepOne(dir, log);
      log.info(`removed the leftovers of a build that died (pid ${lock.pid}): ${dir}`);
    } catch (e) {
      log.warn(`could not clean up after the dead build in ${dir}: ${describeError(e)}`);
    }
  }
}

async function sweepOne(dir: string, log: Logger): Promise<void> {
  const stateRoot = join(dir, 'runtime-state');
  const ids = await readdir(stateRoot).catch(() => [] as string[]);
  if (ids.length) {
    const rt = await pickRuntime(stateRoot).catch(() => undefined);
    // `delete` first (its namespace died with the build); `delete -f` for one that may still
    // run: a build on a host without the PID-namespace tie (see tiedToUs()).
    for (const id of ids) if (rt) await deleteContainer(rt, id, { dead: true, orForce: true });
  }
  for (const m of await mountsUnder(dir)) {
    const r = await runTool(['umount', m]);
    if (r.code !== 0) await runTool(['umount', '-l', m]);
    log.debug(`unmounted ${m}`);
  }
  const left = await mountsUnder(dir);
  if (left.length) throw new Error(`still mounted: ${left.join(', ')}`);
  await rm(dir, { recursive: true, force: true });
}
