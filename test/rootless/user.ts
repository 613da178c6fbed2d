/**
 * The unprivileged user the rootless tests run as (issue 14): created once, idempotently, with
 * `useradd -m` (Debian adds a 65536-id /etc/subuid and /etc/subgid range). The repository may
 * not be readable by that user (/work is root's), so `installApp` copies what the CLIs need
 * (dist, bin, package.json, node_modules) into a dir the user owns, removed after the test.
 */
import assert from 'node:assert/strict';
import { chown, cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { repoRoot, run } from '../helpers/cli.js';

export const TEST_USER = 'htvend-rootless-test';

/**
 * Test files run in parallel, and the ones that look for leftovers (files, processes) owned by
 * their user must not see another file's build: each of those passes a user of its own.
 */
export const USERS = { semantics: 'htvend-rl-sem', examples: 'htvend-rl-examples', leftovers: 'htvend-rl-left' } as const;

/** useradd/usermod take /etc/passwd's lock and fail at once when another holds it: serialise. */
const locked = (argv: string[]) => run(['flock', '/tmp/htvend-test-useradd.lock', ...argv]);

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Creates `name` if missing; `subIds: false` takes its subuid/subgid ranges away (error tests). */
export async function ensureUser(name = TEST_USER, subIds = true): Promise<TestUser> {
  if ((await run(['id', '-u', name])).code !== 0) {
    const r = await locked(['useradd', '-m', '-s', '/bin/sh', name]);
    if (r.code !== 0 && (await run(['id', '-u', name])).code !== 0) throw new Error(`useradd ${name}: ${r.stderr}`);
  }
  const uid = Number((await run(['id', '-u', name])).stdout.trim());
  const gid = Number((await run(['id', '-g', name])).stdout.trim());
  const home = (await run(['sh', '-c', `getent passwd ${name} | cut -d: -f6`])).stdout.trim();
  const has = (await run(['grep', '-q', `^${name}:`, '/etc/subuid'])).code === 0 && (await run(['grep', '-q', `^${name}:`, '/etc/subgid'])).code === 0;
  if (subIds && !has) {
    // A range of its own far from useradd's (100000 + 65536·n), so it overlaps nobody's.
    const base = 3_000_000 + (uid % 1000) * 65536;
    const r = await locked(['usermod', '--add-subuids', `${base}-${base + 65535}`, '--add-subgids', `${base}-${base + 65535}`, name]);
    if (r.code !== 0) throw new Error(`usermod ${name}: ${r.stderr}`);
  }
  if (!subIds) {
    for (const f of ['/etc/subuid', '/etc/subgid']) await locked(['sed', '-i', `/^${name}:/d;/^${uid}:/d`, f]);
  }
  return { name, uid, gid, home };
}

/** A copy of the built CLIs the user can read, as `{ dir, bin(name) }`. */
export async function installApp(t: Pick<TestContext, 'after'>, u: TestUser): Promise<{ dir: string; argv: (cli: 'htvend' | 'build-img-with-proxy') => string[] }> {
  const dir = await mkdtemp(join(u.home, 'app-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const p of ['dist', 'bin', 'package.json', 'node_modules']) await cp(join(repoRoot, p), join(dir, p), { recursive: true, verbatimSymlinks: true });
  await run(['chown', '-R', `${u.uid}:${u.gid}`, dir]);
  await chown(dir, u.uid, u.gid);
  return { dir, argv: (cli) => [process.execPath, join(dir, 'bin', `${cli}.js`)] };
}

/** argv prefix running a command as `u` with a clean, explicit environment. */
export function asUser(u: TestUser, env: Record<string, string>): string[] {
  return ['runuser', '-u', u.name, '--', 'env', '-i', `HOME=${u.home}`, `USER=${u.name}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)];
}

/** A dir in the user's home, owned by the user (so it can traverse it), removed after the test. */
export async function userDir(t: Pick<TestContext, 'after'>, u: TestUser, prefix: string): Promise<string> {
  const d = await mkdtemp(join(u.home, prefix));
  t.after(() => rm(d, { recursive: true, force: true }));
  await chown(d, u.uid, u.gid);
  return d;
}

export async function chownR(u: TestUser, d: string): Promise<void> {
  const r = await run(['chown', '-R', `${u.uid}:${u.gid}`, d]);
  assert.equal(r.code, 0, r.stderr);
}

/** The user's leftovers: /tmp entries it owns, and mounts mentioning `dir`. */
export async function leftovers(u: TestUser, dir: string): Promise<string[]> {
  const r = await run(['find', '/tmp', '/var/tmp', `/run/user/${u.uid}`, '-maxdepth', '1', '-user', String(u.uid)]);
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes(dir));
  return [...r.stdout.split('\n').filter(Boolean), ...mounts];
}
