/**
 * Checks that an unprivileged user can enter a user namespace mapped from /etc/subuid and
 * /etc/subgid, before any work is done (docs/rootless.md). Each failure names the fix: the
 * sysctl, the Debian package, or the exact line to add. Reads only; `roots` lets tests point
 * it at fixture files (the real sysctls cannot be switched off on a shared machine).
 */
import { access, constants, readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { HtvendError } from '../../util/errors.js';

export interface IdRange {
  start: number;
  count: number;
}

export interface PreflightInput {
  uid: number;
  gid: number;
  /** The user's login name (os.userInfo().username); subuid lines may use it or the uid. */
  user: string;
  /** PATH to look for newuidmap/newgidmap in. */
  path: string;
  /** Overrides for tests. */
  procSys?: string;
  subuidFile?: string;
  subgidFile?: string;
  signal?: AbortSignal;
}

export interface Preflight {
  newuidmap: string;
  newgidmap: string;
  subuid: IdRange;
  subgid: IdRange;
}

/** One `/etc/subuid`-format file: the first range for `user` (by name or number). */
export function parseSubIds(text: string, user: string, uid: number): IdRange | undefined {
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if (who !== user && who !== String(uid)) continue;
    const s = Number(start);
    const c = Number(count);
    if (Number.isSafeInteger(s) && Number.isSafeInteger(c) && c > 0) return { start: s, count: c };
  }
  return undefined;
}

async function readOptional(file: string, signal?: AbortSignal): Promise<string | undefined> {
  try {
    return await readFile(file, { encoding: 'utf8', signal });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function findOnPath(name: string, path: string): Promise<string | undefined> {
  for (const d of path.split(delimiter).filter(Boolean)) {
    const p = join(d, name);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Throws the first problem found, in the order a user would fix them. */
export async function rootlessPreflight(i: PreflightInput): Promise<Preflight> {
  const procSys = i.procSys ?? '/proc/sys';
  // Debian/Ubuntu kernels before 6.1 had their own switch; every kernel has the ucount limit.
  const clone = await readOptional(join(procSys, 'kernel/unprivileged_userns_clone'), i.signal);
  if (clone !== undefined && clone.trim() === '0') {
    throw new HtvendError('IO', 'user namespaces are disabled for unprivileged users (sysctl kernel.unprivileged_userns_clone = 0)', {
      hint: 'as root: sysctl -w kernel.unprivileged_userns_clone=1 (persist it in /etc/sysctl.d/), or run build-img-with-proxy as root',
    });
  }
  const max = await readOptional(join(procSys, 'user/max_user_namespaces'), i.signal);
  if (max !== undefined && max.trim() === '0') {
    throw new HtvendError('IO', 'user namespaces are disabled (sysctl user.max_user_namespaces = 0)', {
      hint: 'as root: sysctl -w user.max_user_namespaces=15000 (persist it in /etc/sysctl.d/), or run build-img-with-proxy as root',
    });
  }
  const newuidmap = await findOnPath('newuidmap', i.path);
  const newgidmap = await findOnPath('newgidmap', i.path);
  if (!newuidmap || !newgidmap) {
    throw new HtvendError('NOT_FOUND', `${!newuidmap ? 'newuidmap' : 'newgidmap'} not found on PATH (needed to map /etc/subuid and /etc/subgid ranges)`, {
      hint: 'install the Debian package uidmap: apt-get install uidmap',
    });
  }
  const ranges: IdRange[] = [];
  for (const [file, what] of [
    [i.subuidFile ?? '/etc/subuid', 'uid'],
    [i.subgidFile ?? '/etc/subgid', 'gid'],
  ] as const) {
    const text = (await readOptional(file, i.signal)) ?? '';
    const r = parseSubIds(text, i.user, i.uid);
    if (!r) {
      throw new HtvendError('INPUT', `${file} has no sub${what} range for user ${i.user} (${what} ${what === 'uid' ? i.uid : i.gid})`, {
        hint: `as root, add the line "${i.user}:100000:65536" to ${file} (a range no other user has), or: usermod --add-sub${what}s 100000-165535 ${i.user}`,
      });
    }
    if (r.count < 65535) {
      throw new HtvendError('INPUT', `${file}: the sub${what} range of ${i.user} has ${r.count} ids; images need 65536`, {
        hint: `as root, give ${i.user} a 65536-id range in ${file}, e.g. "${i.user}:100000:65536"`,
      });
    }
    ranges.push(r);
  }
  return { newuidmap, newgidmap, subuid: ranges[0]!, subgid: ranges[1]! };
}
