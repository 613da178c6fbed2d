/**
 * USER resolution against the image's own /etc/passwd and /etc/group (never the host's), like
 * Docker/buildah: `name`, `uid`, `name:group`, `uid:gid`; supplementary groups are the primary
 * group plus the groups that list the user by name.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HtvendError } from '../../util/errors.js';
import { resolveInRoot } from './rootpath.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  /** Home directory from /etc/passwd, `/` when unknown (Docker's default HOME). */
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** Resolves `user` (the image config's User, '' = root) inside `root` (a rootfs directory). */
export async function resolveUser(root: string, user: string, where: string): Promise<ResolvedUser> {
  const [userPart = '', groupPart] = user === '' ? ['root'] : splitOnce(user, ':');
  const passwd = parsePasswd(await readImageFile(root, '/etc/passwd'));
  const groups = parseGroup(await readImageFile(root, '/etc/group'));

  const numericUser = /^\d+$/.test(userPart);
  const entry = numericUser ? passwd.find((p) => p.uid === Number(userPart)) : passwd.find((p) => p.name === userPart);
  if (!entry && !numericUser) {
    throw new HtvendError('INPUT', `${where}: unable to find user ${userPart}: no matching entries in the image's /etc/passwd`);
  }
  const uid = numericUser ? Number(userPart) : entry!.uid;

  let gid: number;
  if (groupPart === undefined || groupPart === '') {
    gid = entry?.gid ?? 0;
  } else if (/^\d+$/.test(groupPart)) {
    gid = Number(groupPart);
  } else {
    const g = groups.find((x) => x.name === groupPart);
    if (!g) throw new HtvendError('INPUT', `${where}: unable to find group ${groupPart}: no matching entries in the image's /etc/group`);
    gid = g.gid;
  }
  // Like BuildKit (containerd's WithAdditionalGIDs), the primary group is always in the list
  // (`id` shows `groups=0(root)`); the groups naming the user are added only when USER names
  // no explicit group.
  const members = groupPart === undefined && entry ? groups.filter((g) => g.members.includes(entry.name) && g.gid !== gid).map((g) => g.gid) : [];
  const additionalGids = [gid, ...[...new Set(members)].sort((a, b) => a - b)];
  return { uid, gid, additionalGids, home: entry?.home || '/' };
}

async function readImageFile(root: string, path: string): Promise<string> {
  const r = await resolveInRoot(root, path);
  if (!r.exists) return '';
  try {
    return await readFile(join(root, r.rel), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'EISDIR') return '';
    throw e;
  }
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) continue;
    out.push({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! });
  }
  return out;
}

function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 4 || !/^\d+$/.test(f[2]!)) continue;
    out.push({ name: f[0]!, gid: Number(f[2]), members: f[3]!.split(',').filter(Boolean) });
  }
  return out;
}
