/**
 * Platform selection in OCI indexes and Docker manifest lists, with the same matching rules
 * as containerd's platforms package in the cases that matter: os and architecture must match;
 * a wanted variant must match (arm64's missing variant means `v8`); without a wanted variant
 * the first entry for os/architecture wins.
 */
import { HtvendError } from '../util/errors.js';
import type { Descriptor, ImageIndex, Platform } from './types.js';

const NODE_ARCH: Record<string, Platform> = {
  x64: { os: 'linux', architecture: 'amd64' },
  arm64: { os: 'linux', architecture: 'arm64', variant: 'v8' },
  arm: { os: 'linux', architecture: 'arm', variant: 'v7' },
  ia32: { os: 'linux', architecture: '386' },
  ppc64: { os: 'linux', architecture: 'ppc64le' },
  s390x: { os: 'linux', architecture: 's390x' },
  riscv64: { os: 'linux', architecture: 'riscv64' },
};

/** The platform of this machine, in OCI terms (always linux: that is what we build). */
export function hostPlatform(arch: string = process.arch): Platform {
  return { ...(NODE_ARCH[arch] ?? { os: 'linux', architecture: arch }) };
}

/** Parses `os/arch[/variant]` (e.g. `linux/arm64/v8`); a bad value is a USAGE error. */
export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/.test(p))) {
    throw new HtvendError('USAGE', `invalid platform ${JSON.stringify(s)}: want os/arch[/variant], e.g. linux/amd64`);
  }
  return { os: parts[0]!, architecture: parts[1]!, variant: parts[2] };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

function normalVariant(p: Platform): string | undefined {
  if (p.architecture === 'arm64' && !p.variant) return 'v8';
  return p.variant || undefined;
}

/** True if an index entry's platform satisfies `want`. */
export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have || have.os !== want.os || have.architecture !== want.architecture) return false;
  const wantVariant = normalVariant(want);
  return !want.variant || normalVariant(have) === wantVariant;
}

/**
 * The index entry for `want`, preferring an exact variant match. Throws NOT_FOUND listing the
 * platforms on offer when nothing matches (`what` names the image in the message).
 */
export function selectPlatform(index: ImageIndex, want: Platform, what: string): Descriptor {
  const candidates = index.manifests.filter((m) => platformMatches(m.platform, want));
  const exact = candidates.find((m) => (m.platform?.variant || undefined) === (want.variant || undefined));
  const chosen = exact ?? candidates[0];
  if (chosen) return chosen;
  const offered = index.manifests.filter((m) => m.platform && m.platform.os !== 'unknown').map((m) => formatPlatform(m.platform!));
  throw new HtvendError('NOT_FOUND', `${what}: no manifest for platform ${formatPlatform(want)} (available: ${offered.join(', ') || 'none'})`);
}
