/**
 * `--mount=…` (RUN flag and global CLI flag) and `--secret=…` (CLI) parsing into the typed
 * values of src/builder/run/types.ts. CSV of `key=value` and bare flags, like BuildKit.
 */
import { HtvendError } from '../../util/errors.js';
import type { RunMount, SecretSource } from '../run/types.js';

function csv(spec: string): [string, string | undefined][] {
  return spec.split(',').filter((p) => p !== '').map((p) => {
    const eq = p.indexOf('=');
    return eq < 0 ? [p.trim().toLowerCase(), undefined] : [p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1)];
  });
}

function boolOf(v: string | undefined, key: string, where: string): boolean {
  if (v === undefined || v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new HtvendError('INPUT', `${where}: --mount ${key}=${v}: expected true or false`);
}

function intOf(v: string | undefined, key: string, where: string, radix = 10): number {
  if (v === undefined || !(radix === 8 ? /^[0-7]+$/ : /^\d+$/).test(v)) throw new HtvendError('INPUT', `${where}: --mount ${key}=${v ?? ''}: expected a number`);
  return parseInt(v, radix);
}

/**
 * A size like BuildKit's (docker/go-units RAMInBytes): bytes, or a number with a binary unit
 * k, m, g, t, p (optionally followed by `b`/`ib`, any case): `128m` = 128 MiB.
 */
export function bytesOf(v: string, where: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?(i?b)?$/i.exec(v);
  if (!m) throw new HtvendError('INPUT', `${where}: --mount size=${v}: expected bytes or a size such as 64k, 128m, 1g`);
  const mult = 1024 ** ' kmgtp'.indexOf((m[2] ?? ' ').toLowerCase());
  return Math.floor(Number(m[1]) * mult);
}

/** Parses one `--mount` value; `secrets` resolves `type=secret` ids given with `--secret`. */
export function parseMount(spec: string, where: string, secrets: Map<string, SecretSource>): RunMount {
  const kv = csv(spec);
  const get = (...keys: string[]) => kv.find(([k]) => keys.includes(k))?.[1];
  const has = (...keys: string[]) => kv.some(([k]) => keys.includes(k));
  const type = (get('type') ?? 'bind').toLowerCase();
  const known: Record<string, string[]> = {
    bind: ['type', 'target', 'dst', 'destination', 'source', 'src', 'from', 'readonly', 'ro', 'rw', 'readwrite', 'bind-propagation', 'z', 'relabel'],
    cache: ['type', 'target', 'dst', 'destination', 'id', 'sharing', 'from', 'source', 'src', 'mode', 'uid', 'gid', 'readonly', 'ro', 'rw', 'readwrite'],
    tmpfs: ['type', 'target', 'dst', 'destination', 'size', 'tmpfs-size'],
    secret: ['type', 'id', 'target', 'dst', 'destination', 'env', 'required', 'mode', 'uid', 'gid'],
  };
  if (!known[type]) throw new HtvendError('INPUT', `${where}: --mount type=${type}: unsupported (bind, cache, tmpfs, secret)`);
  for (const [k] of kv) if (!known[type]!.includes(k)) throw new HtvendError('INPUT', `${where}: --mount type=${type}: unknown option ${k}`);
  const target = get('target', 'dst', 'destination');
  const ro = has('readonly', 'ro') ? boolOf(get('readonly', 'ro'), 'readonly', where) : has('rw', 'readwrite') ? !boolOf(get('rw', 'readwrite'), 'rw', where) : undefined;
  const needTarget = () => {
    if (!target) throw new HtvendError('INPUT', `${where}: --mount type=${type} needs target=`);
    if (!target.startsWith('/')) throw new HtvendError('INPUT', `${where}: --mount target=${target} must be absolute`);
    return target;
  };
  switch (type) {
    case 'bind': {
      const from = get('from');
      return { type: 'bind', target: needTarget(), source: get('source', 'src') ?? '', ...(from ? { from } : {}), readonly: ro ?? true };
    }
    case 'cache': {
      const t = needTarget();
      const sharing = (get('sharing') ?? 'shared') as 'shared' | 'private' | 'locked';
      if (!['shared', 'private', 'locked'].includes(sharing)) throw new HtvendError('INPUT', `${where}: --mount sharing=${sharing}: expected shared, private or locked`);
      const from = get('from');
      const source = get('source', 'src');
      return {
        type: 'cache', target: t, id: get('id') ?? t, sharing, readonly: ro ?? false,
        ...(from ? { from } : {}), ...(source ? { source } : {}),
        mode: has('mode') ? intOf(get('mode'), 'mode', where, 8) : 0o755,
        uid: has('uid') ? intOf(get('uid'), 'uid', where) : 0,
        gid: has('gid') ? intOf(get('gid'), 'gid', where) : 0,
      };
    }
    case 'tmpfs': {
      const size = get('size', 'tmpfs-size');
      return { type: 'tmpfs', target: needTarget(), ...(size ? { size: bytesOf(size, where) } : {}) };
    }
    default: {
      const id = get('id') ?? (target ? target.split('/').pop() : undefined);
      if (!id) throw new HtvendError('INPUT', `${where}: --mount type=secret needs id=`);
      const env = get('env');
      const source = secrets.get(id);
      const required = has('required') ? boolOf(get('required'), 'required', where) : false;
      if (required && !source) throw new HtvendError('INPUT', `${where}: secret ${id} is required but no --secret id=${id} was given`);
      return {
        type: 'secret', id, required,
        ...(target ? { target } : {}), ...(env ? { env } : {}), ...(source ? { source } : {}),
        mode: has('mode') ? intOf(get('mode'), 'mode', where, 8) : 0o400,
        uid: has('uid') ? intOf(get('uid'), 'uid', where) : 0,
        gid: has('gid') ? intOf(get('gid'), 'gid', where) : 0,
      };
    }
  }
}

/** Parses a CLI `--secret id=…,type=file|env,src=…|env=…` against the builder's environment. */
export function parseSecret(spec: string, env: Readonly<Record<string, string | undefined>>): [string, SecretSource] {
  const kv = csv(spec);
  const get = (...keys: string[]) => kv.find(([k]) => keys.includes(k))?.[1];
  const id = get('id');
  if (!id) throw new HtvendError('USAGE', `--secret ${spec}: needs id=`);
  const src = get('src', 'source');
  const envName = get('env');
  const type = get('type') ?? (src ? 'file' : envName ? 'env' : 'file');
  if (type === 'file') {
    if (!src) throw new HtvendError('USAGE', `--secret id=${id}: type=file needs src=PATH`);
    return [id, { kind: 'file', path: src }];
  }
  if (type === 'env') {
    const name = envName ?? src ?? id;
    const value = env[name];
    if (value === undefined) throw new HtvendError('USAGE', `--secret id=${id}: environment variable ${name} is not set`);
    return [id, { kind: 'value', value }];
  }
  throw new HtvendError('USAGE', `--secret id=${id}: type must be file or env, not ${type}`);
}
