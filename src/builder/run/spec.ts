/**
 * The OCI runtime bundle config (runtime-spec 1.0) for one RUN step, built as data. Pure: no
 * I/O. Modelled on what `runc spec` and buildah produce, with the differences a build needs:
 * the host network namespace (so the loopback htvend proxy is reachable), Docker's default
 * capability set (package managers chown/setuid), and no terminal.
 */
import { readFileSync } from 'node:fs';
import type { ResolvedUser } from './user.js';
import { inUserNamespace } from '../rootless/enter.js';

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

/** The subset of the runtime spec we write. */
export interface OciSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: Record<'bounding' | 'effective' | 'permitted' | 'inheritable' | 'ambient', string[]>;
    rlimits: { type: string; hard: number; soft: number }[];
    noNewPrivileges: boolean;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: OciMount[];
  linux: {
    namespaces: { type: string }[];
    resources: { devices: { allow: boolean; access: string }[] };
    maskedPaths: string[];
    readonlyPaths: string[];
  };
}

/** Docker's and buildah's default capabilities for build containers. */
export const DEFAULT_CAPABILITIES = [
  'CAP_AUDIT_WRITE',
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_MKNOD',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_RAW',
  'CAP_SETFCAP',
  'CAP_SETGID',
  'CAP_SETPCAP',
  'CAP_SETUID',
  'CAP_SYS_CHROOT',
];

/** Capability names by number (capability.h), for privileged steps. */
const CAPABILITY_NAMES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK',
  'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/**
 * Every capability the builder itself may pass on (its bounding set, /proc/self/status
 * CapBnd): a container cannot get more, and asking for more makes the runtime fail (inside
 * a restricted sandbox, "unable to apply caps").
 */
function builderCapabilities(): string[] {
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  const bits = BigInt(`0x${m?.[1] ?? '0'}`);
  return CAPABILITY_NAMES.filter((_, i) => (bits >> BigInt(i)) & 1n);
}

/**
 * What every container gets before the step's own mounts (same as `runc spec`, /sys read-only).
 * In a user namespace (rootless, docs/rootless.md) sysfs cannot be mounted with the host's
 * network namespace, so /sys is bind-mounted read-only instead, as `runc spec --rootless` does.
 */
export function standardMounts(rootless = inUserNamespace()): OciMount[] {
  const sys: OciMount = rootless
    ? { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] }
    : { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] };
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    sys,
  ];
}

export interface SpecInput {
  rootfs: string;
  args: string[];
  env: string[];
  cwd: string;
  user: ResolvedUser;
  network: 'host' | 'none';
  /** RUN --security=insecure: what `docker run --privileged` gives (see buildSpec). */
  privileged?: boolean;
  /** Step mounts (after the standard ones), already ordered so parents come before children. */
  mounts: OciMount[];
  /** RLIMIT_NOFILE for the process: the builder's own hard limit (raising it needs privileges the container lacks). */
  nofile: number;
}

/** Builds config.json for one step. */
export function buildSpec(input: SpecInput): OciSpec {
  const namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  // Host network unless --network none: the htvend proxy listens on the host's 127.0.0.1.
  if (input.network === 'none') namespaces.push({ type: 'network' });
  const user: OciSpec['process']['user'] = { uid: input.user.uid, gid: input.user.gid };
  const caps = input.privileged ? builderCapabilities() : DEFAULT_CAPABILITIES;
  // Privileged (RUN --security=insecure), as `docker run --privileged` minus the host's device
  // nodes: every capability we hold, /sys writable, nothing masked, every device allowed by the cgroup.
  const mounts = standardMounts().map((m) => (input.privileged && m.destination === '/sys' ? { ...m, options: m.options.filter((o) => o !== 'ro') } : m));
  if (input.user.additionalGids.length > 0) user.additionalGids = input.user.additionalGids;
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user,
      args: input.args,
      env: input.env,
      cwd: input.cwd,
      capabilities: {
        bounding: caps,
        effective: caps,
        permitted: caps,
        inheritable: [],
        ambient: [],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: input.nofile, soft: input.nofile }],
      noNewPrivileges: false,
    },
    root: { path: input.rootfs, readonly: false },
    // With a host network the UTS namespace still isolates the name; a fixed one keeps builds reproducible.
    hostname: 'build-img-with-proxy',
    mounts: [...mounts, ...input.mounts],
    linux: {
      namespaces,
      resources: { devices: [{ allow: input.privileged === true, access: 'rwm' }] },
      maskedPaths: input.privileged ? [] : [
        '/proc/acpi',
        '/proc/asound',
        '/proc/kcore',
        '/proc/keys',
        '/proc/latency_stats',
        '/proc/timer_list',
        '/proc/timer_stats',
        '/proc/sched_debug',
        '/sys/firmware',
        '/proc/scsi',
      ],
      readonlyPaths: input.privileged ? [] : ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** Env list with `name=value` set, replacing an earlier entry of that name (last wins, order kept). */
export function setEnv(env: string[], name: string, value: string): string[] {
  const prefix = `${name}=`;
  const i = env.findIndex((e) => e.startsWith(prefix) || e === name);
  const entry = `${name}=${value}`;
  if (i < 0) return [...env, entry];
  const out = env.slice();
  out[i] = entry;
  return out;
}

/** Value of `name` in an env list, if set. */
export function getEnv(env: string[], name: string): string | undefined {
  const prefix = `${name}=`;
  for (let i = env.length - 1; i >= 0; i--) if (env[i]!.startsWith(prefix)) return env[i]!.slice(prefix.length);
  return undefined;
}

/**
 * Orders mounts so a mount never hides one made inside it: fewer path components first, the
 * original order otherwise (what Docker and buildah do).
 */
export function sortMounts(mounts: OciMount[]): OciMount[] {
  const depth = (m: OciMount) => m.destination.split('/').filter(Boolean).length;
  return mounts.map((m, i) => ({ m, i })).sort((a, b) => depth(a.m) - depth(b.m) || a.i - b.i).map((x) => x.m);
}
