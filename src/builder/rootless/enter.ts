/**
 * Rootless builds (docs/rootless.md): an unprivileged build-img-with-proxy re-executes itself
 * inside a new user + mount namespace where it is root, the way `podman unshare` does:
 *   uid/gid 0        -> the caller's own uid/gid
 *   uid/gid 1..65536 -> the caller's /etc/subuid and /etc/subgid range (via newuidmap/newgidmap)
 * Inside, the builder runs unchanged: layers unpack with their real owners, overlay mounts are
 * allowed (kernel >= 5.11), and runc/crun see a user namespace and skip cgroups (spec.ts gives
 * them a bind-mounted /sys). So the bytes written, and the digests, are those of a root build.
 * The network namespace is the caller's, so RUN steps reach htvend's loopback proxy as for root.
 * The mount namespace dies with the child, taking every mount along; the child removes its own
 * temp dirs (files owned by sub-ids could not be removed from outside).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { HtvendError } from '../../util/errors.js';
import { rootlessPreflight } from './preflight.js';

/** True when this process must enter a user namespace to build: not root. */
export function needsRootless(): boolean {
  return typeof process.geteuid === 'function' && process.geteuid() !== 0;
}

/** True inside the namespace `reexecRootless` made (root there, but not the host's root). */
export function inUserNamespace(): boolean {
  try {
    // The initial namespace maps the whole 32-bit range: "0 0 4294967295".
    const map = readFileSync('/proc/self/uid_map', 'utf8');
    return !/^\s*0\s+0\s+4294967295\s*$/.test(map);
  } catch {
    return false;
  }
}

/** The argv (without the executable) that runs `cmd` inside the mapped namespace. */
export function unshareArgs(p: { subuid: { start: number; count: number }; subgid: { start: number; count: number } }, cmd: string[]): string[] {
  const n = (r: { start: number; count: number }) => `${r.start},1,${Math.min(r.count, 65536)}`;
  return ['--user', `--map-users=${n(p.subuid)}`, `--map-groups=${n(p.subgid)}`, '--map-root-user', '--mount', '--propagation', 'private', '--', ...cmd];
}

/**
 * Checks the prerequisites (each failure before any work, see preflight.ts), then runs this
 * same program with the same arguments inside the namespace and returns its exit code.
 * SIGINT/SIGTERM are passed on; the child's stdio is ours.
 */
export async function reexecRootless(env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<number> {
  const me = userInfo();
  const pre = await rootlessPreflight({ uid: me.uid, gid: me.gid, user: me.username, path: env.PATH ?? '', signal });
  const cmd = [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  const child = spawn('unshare', unshareArgs(pre, cmd), { stdio: 'inherit', env });
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.on('error', (e) =>
        reject(new HtvendError('NOT_FOUND', `cannot start unshare: ${e.message}`, { hint: 'install util-linux 2.38 or newer (Debian 12: apt-get install util-linux)' })),
      );
      child.on('close', (code, sig) => resolve(code ?? (sig === 'SIGINT' ? 130 : 143)));
    });
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
  }
}
