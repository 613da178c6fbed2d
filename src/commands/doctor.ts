/**
 * `htvend doctor`: checks what recording, offline replay and image building need on this
 * machine, one result per check with the fix (the Debian package or command), so a newcomer
 * learns in one run what `build-img-with-proxy` would otherwise report one failure at a time.
 *
 * Checks probe the real thing where that is cheap and harmless (a trial overlay mount in a
 * private mount namespace, `unshare -U true`), and read the kernel's own files otherwise
 * (binfmt_misc entries, /etc/subuid). Every probe has a timeout. Tools are looked up on the
 * PATH of the environment given, so hiding one from PATH shows as missing.
 */
import { spawn } from 'node:child_process';
import { access, mkdtemp, mkdir, readFile, rm, statfs } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { hostArchitecture } from '../builder/run/platform.js';
import { findExecutable, findRuntime } from '../builder/run/runtime.js';

/** `missing`: something the builder needs (exit non-zero); `warn`: an optional ability is off. */
export type CheckStatus = 'ok' | 'warn' | 'missing';

export interface CheckResult {
  /** Short name, e.g. `runtime`, `overlay`. */
  name: string;
  status: CheckStatus;
  /** What was found, or what is wrong. */
  detail: string;
  /** How to fix it (Debian package / command); set unless ok. */
  fix?: string | undefined;
}

export interface DoctorOptions {
  /** The filesystem blob dir whose free space is checked. */
  blobsDir: string;
  env: Readonly<Record<string, string | undefined>>;
  /**
   * Architectures the builds will target (`--platform`, e.g. `arm64`). Default: this host's
   * only, which is what `build-img-with-proxy` builds without `--platform`.
   */
  arches?: readonly string[] | undefined;
  signal?: AbortSignal | undefined;
}

const PROBE_TIMEOUT_MS = 10_000;
/** Below this, recording even one base image may fail. */
const MIN_FREE = 512 * 1024 ** 2;
/** Below this, say so: a few images and their layers fill it. */
const LOW_FREE = 5 * 1024 ** 3;
const QEMU: Record<string, string> = { amd64: 'x86_64', arm64: 'aarch64', arm: 'arm', '386': 'i386', ppc64le: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** Absolute path of `name` on the env's PATH, or undefined. */
export function findOnPath(name: string, env: Readonly<Record<string, string | undefined>>): Promise<string | undefined> {
  return findExecutable(name, env['PATH'] ?? '');
}

interface Probe {
  code: number | null;
  out: string;
}

/** Runs argv (argv[0] an absolute path) with a timeout; never rejects. */
function probe(argv: string[], env: Readonly<Record<string, string | undefined>>, signal?: AbortSignal): Promise<Probe> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'], timeout: PROBE_TIMEOUT_MS, killSignal: 'SIGKILL', signal });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', (e) => resolve({ code: null, out: e.message }));
    child.on('close', (code) => resolve({ code, out: out.trim() }));
  });
}

const firstLine = (s: string) => s.split('\n')[0]!.trim();
const gib = (n: number) => `${(n / 1024 ** 3).toFixed(1)} GiB`;
const isRoot = () => process.getuid?.() === 0;

async function checkRuntime(o: DoctorOptions): Promise<CheckResult> {
  // The builder's own lookup, so doctor judges the runtime a build would use.
  const { wanted, found } = await findRuntime(o.env);
  if (found) {
    const v = await probe([found.path, '--version'], o.env, o.signal);
    if (v.code !== 0) return { name: 'runtime', status: 'missing', detail: `${found.path} --version failed: ${firstLine(v.out)}`, fix: `apt-get install --reinstall ${found.name === 'crun' ? 'crun' : 'runc'}` };
    return { name: 'runtime', status: 'ok', detail: `${firstLine(v.out)} (${found.path})` };
  }
  return wanted
    ? { name: 'runtime', status: 'missing', detail: `BUILD_IMG_RUNTIME=${wanted}: no such executable`, fix: 'unset BUILD_IMG_RUNTIME, or apt-get install runc (or crun)' }
    : { name: 'runtime', status: 'missing', detail: 'no OCI runtime (runc or crun) on PATH: RUN steps cannot run', fix: 'apt-get install runc (or crun)' };
}

/** A trial overlay mount in a throwaway mount namespace (user namespace too when not root). */
async function checkOverlay(o: DoctorOptions): Promise<CheckResult> {
  const fix = 'a kernel with overlayfs (modprobe overlay); mount and unshare come with Debian packages mount and util-linux';
  const [unshare, mount, umount] = await Promise.all([findOnPath('unshare', o.env), findOnPath('mount', o.env), findOnPath('umount', o.env)]);
  if (!mount) return { name: 'overlay', status: 'missing', detail: 'no mount on PATH (RUN steps mount overlays with it)', fix: 'apt-get install mount' };
  // Without unshare, root can still try in the host's namespace (and unmount right after).
  if (!unshare && (!isRoot() || !umount)) return { name: 'overlay', status: 'missing', detail: 'cannot try an overlay mount: no unshare on PATH', fix };
  const dir = await mkdtemp(join(tmpdir(), 'htvend-doctor-'));
  try {
    for (const d of ['l', 'u', 'w', 'm']) await mkdir(join(dir, d));
    const opts = `lowerdir=${join(dir, 'l')},upperdir=${join(dir, 'u')},workdir=${join(dir, 'w')}`;
    const argv = [mount, '-t', 'overlay', 'overlay', '-o', opts, join(dir, 'm')];
    const r = await probe(unshare ? [unshare, ...(isRoot() ? ['-m'] : ['-r', '-m']), ...argv] : argv, o.env, o.signal);
    if (r.code === 0 && !unshare && umount) await probe([umount, join(dir, 'm')], o.env, o.signal);
    if (r.code === 0) return { name: 'overlay', status: 'ok', detail: `overlayfs mounts work (tried under ${tmpdir()})` };
    return { name: 'overlay', status: 'missing', detail: `a trial overlay mount failed: ${firstLine(r.out)}`, fix };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function checkUnshare(o: DoctorOptions): Promise<CheckResult> {
  const unshare = await findOnPath('unshare', o.env);
  const fix = 'apt-get install util-linux';
  // Not needed by the builder itself: it is how `htvend offline` is proved offline.
  if (!unshare) return { name: 'unshare', status: 'warn', detail: 'no unshare on PATH: `htvend offline` cannot be run in a network namespace', fix };
  const r = await probe([unshare, ...(isRoot() ? [] : ['-r']), '-n', unshare, '--version'], o.env, o.signal);
  if (r.code !== 0) return { name: 'unshare', status: 'warn', detail: `unshare -n failed: ${firstLine(r.out)}`, fix: 'run as root, or enable user namespaces (sysctl user.max_user_namespaces=15000)' };
  return { name: 'unshare', status: 'ok', detail: `${unshare} -n gives a network namespace` };
}

/** User namespaces: needed when not root (rootless); as root only an optional ability. */
async function checkUserns(o: DoctorOptions): Promise<CheckResult> {
  const need: CheckStatus = isRoot() ? 'warn' : 'missing';
  const max = Number((await readFile('/proc/sys/user/max_user_namespaces', 'utf8').catch(() => '0')).trim());
  const fix = 'sysctl -w user.max_user_namespaces=15000 (and kernel.unprivileged_userns_clone=1 where it exists)';
  if (!(max > 0)) return { name: 'userns', status: need, detail: 'user namespaces are disabled (user.max_user_namespaces = 0)', fix };
  const unshare = await findOnPath('unshare', o.env);
  if (!unshare) return { name: 'userns', status: need, detail: 'no unshare on PATH to try a user namespace', fix: 'apt-get install util-linux' };
  const r = await probe([unshare, '-U', unshare, '--version'], o.env, o.signal);
  if (r.code !== 0) return { name: 'userns', status: need, detail: `unshare -U failed: ${firstLine(r.out)}`, fix };
  return { name: 'userns', status: 'ok', detail: `user namespaces work (max ${max})` };
}

async function checkIdMapping(o: DoctorOptions): Promise<CheckResult> {
  const need: CheckStatus = isRoot() ? 'warn' : 'missing';
  const why = isRoot() ? ' (only rootless use needs them)' : '';
  const [u, g] = await Promise.all([findOnPath('newuidmap', o.env), findOnPath('newgidmap', o.env)]);
  if (!u || !g) return { name: 'uidmap', status: need, detail: `no ${!u ? 'newuidmap' : 'newgidmap'} on PATH${why}`, fix: 'apt-get install uidmap' };
  const user = userInfo();
  const ranges = async (file: string) => {
    const text = await readFile(file, 'utf8').catch(() => '');
    return text
      .split('\n')
      .map((l) => l.split(':'))
      .filter((f) => f.length === 3 && (f[0] === user.username || f[0] === String(user.uid)))
      .reduce((n, f) => n + (Number(f[2]) || 0), 0);
  };
  const [su, sg] = await Promise.all([ranges('/etc/subuid'), ranges('/etc/subgid')]);
  if ((su < 65536 || sg < 65536) && isRoot()) {
    return { name: 'uidmap', status: 'ok', detail: `newuidmap/newgidmap present; root needs no subordinate ids (/etc/subuid has ${su} for root)` };
  }
  if (su < 65536 || sg < 65536) {
    return {
      name: 'uidmap',
      status: need,
      detail: `${user.username} has ${su} subordinate uids and ${sg} gids in /etc/subuid, /etc/subgid (want 65536 each)${why}`,
      fix: `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user.username}`,
    };
  }
  return { name: 'uidmap', status: 'ok', detail: `newuidmap/newgidmap present; ${user.username} has ${su} subuids and ${sg} subgids` };
}

/** binfmt_misc + qemu for the asked architectures other than this host's (none by default). */
async function checkBinfmt(o: DoctorOptions): Promise<CheckResult> {
  const host = hostArchitecture();
  const foreign = [...new Set(o.arches ?? [])].filter((a) => a !== host);
  if (foreign.length === 0) {
    return { name: 'binfmt', status: 'ok', detail: `not needed: builds target linux/${host} (this host) unless --platform says otherwise; check others with htvend doctor --platform linux/arm64,linux/amd64` };
  }
  const fix = 'apt-get install qemu-user-static binfmt-support; mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; update-binfmts --enable';
  const note = `RUN steps for ${foreign.map((a) => `linux/${a}`).join(', ')} (asked with --platform) cannot run; linux/${host} still works`;
  const mounted = await access('/proc/sys/fs/binfmt_misc/status').then(() => true, () => false);
  if (!mounted) return { name: 'binfmt', status: 'warn', detail: `binfmt_misc is not mounted: ${note}`, fix };
  const off: string[] = [];
  for (const a of foreign) {
    const q = QEMU[a] ?? a;
    const entry = await readFile(`/proc/sys/fs/binfmt_misc/qemu-${q}`, 'utf8').catch(() => '');
    const interp = /^interpreter (.+)$/m.exec(entry)?.[1];
    if (!entry.startsWith('enabled') || !interp || !(await access(interp).then(() => true, () => false))) off.push(`qemu-${q}`);
  }
  if (off.length) return { name: 'binfmt', status: 'warn', detail: `${off.join(', ')} not registered in binfmt_misc: ${note}`, fix };
  return { name: 'binfmt', status: 'ok', detail: `qemu registered for ${foreign.map((a) => `linux/${a}`).join(', ')}` };
}

async function checkFreeSpace(o: DoctorOptions): Promise<CheckResult> {
  // The blob dir may not exist yet: measure the filesystem it will be created on.
  let dir = o.blobsDir;
  for (;;) {
    try {
      const s = await statfs(dir);
      const free = s.bavail * s.bsize;
      const where = dir === o.blobsDir ? o.blobsDir : `${o.blobsDir} (not yet created; measured at ${dir})`;
      const fix = 'free some space, or point --blobs-dir (or XDG_DATA_HOME) at a bigger filesystem';
      if (free < MIN_FREE) return { name: 'blob space', status: 'missing', detail: `${gib(free)} free for ${where}`, fix };
      if (free < LOW_FREE) return { name: 'blob space', status: 'warn', detail: `only ${gib(free)} free for ${where}`, fix };
      return { name: 'blob space', status: 'ok', detail: `${gib(free)} free for ${where}` };
    } catch (e) {
      const up = dirname(dir);
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || up === dir) {
        return { name: 'blob space', status: 'missing', detail: `cannot measure ${dir}: ${(e as Error).message}`, fix: 'check --blobs-dir' };
      }
      dir = up;
    }
  }
}

/** Runs every check (concurrently: each is a few ms to a few hundred) in a fixed order. */
export async function doctor(o: DoctorOptions): Promise<CheckResult[]> {
  return Promise.all([checkRuntime(o), checkOverlay(o), checkUnshare(o), checkUserns(o), checkIdMapping(o), checkBinfmt(o), checkFreeSpace(o)]);
}

/** One line per check: `ok      name        detail` plus `-> fix: …` when not ok. */
export function formatChecks(results: readonly CheckResult[]): string {
  const w = Math.max(...results.map((r) => r.name.length));
  return results
    .map((r) => `${r.status.toUpperCase().padEnd(7)} ${r.name.padEnd(w)}  ${r.detail}${r.fix ? ` -> fix: ${r.fix}` : ''}\n`)
    .join('');
}
