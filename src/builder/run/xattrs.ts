/**
 * Reading extended attributes. Node has no xattr API, so one `getfattr -R` (package `attr`)
 * dumps a whole tree per step: one process instead of one per file.
 */
import { HtvendError } from '../../util/errors.js';
import { runTool } from './exec.js';
import { inUserNamespace } from '../rootless/enter.js';

/** Absolute host path → attribute name → value, for every file under `dir` that has any. */
export type XattrMap = Map<string, Map<string, Buffer>>;

/** Dumps every xattr (all namespaces, as root) under `dir`, not following symlinks. */
export async function readXattrsRecursive(dir: string, signal?: AbortSignal): Promise<XattrMap> {
  const r = await runTool(['getfattr', '-R', '-P', '-h', '--absolute-names', '-d', '-m', '-', '-e', 'hex', dir], signal);
  // getfattr exits 1 when some file has no xattr support (e.g. sockets); output is still complete.
  if (r.code !== 0 && r.stdout.length === 0 && r.stderr) {
    throw new HtvendError('IO', `reading extended attributes under ${dir}: ${r.stderr}`, { hint: 'install the attr package (bash scripts/setup.sh)' });
  }
  return parseGetfattr(r.stdout);
}

/** Parses `getfattr -d -e hex --absolute-names` output. */
export function parseGetfattr(out: Buffer): XattrMap {
  const map: XattrMap = new Map();
  let current: Map<string, Buffer> | undefined;
  for (const raw of out.toString('latin1').split('\n')) {
    if (raw.startsWith('# file: ')) {
      current = new Map();
      map.set(unescapeName(raw.slice(8)), current);
      continue;
    }
    const eq = raw.indexOf('=');
    if (!current || eq <= 0) continue;
    const name = raw.slice(0, eq);
    const value = raw.slice(eq + 1);
    current.set(name, value.startsWith('0x') ? Buffer.from(value.slice(2), 'hex') : Buffer.from(value.replace(/^"|"$/g, ''), 'latin1'));
  }
  return map;
}

/** getfattr prints names byte for byte except `\` and non-printables as `\ooo`. */
function unescapeName(latin1: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < latin1.length; i++) {
    const c = latin1.charCodeAt(i);
    if (c === 0x5c && /^[0-7]{3}$/.test(latin1.slice(i + 1, i + 4))) {
      bytes.push(parseInt(latin1.slice(i + 1, i + 4), 8));
      i += 3;
    } else if (c === 0x5c && latin1[i + 1] === '\\') {
      bytes.push(0x5c);
      i += 1;
    } else bytes.push(c);
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * The namespace overlayfs keeps its own xattrs in (opaque markers …): `trusted.overlay.` as
 * root; `user.overlay.` in a user namespace (rootless, mounted with `userxattr`, Linux ≥ 5.11),
 * where trusted.* is out of reach.
 */
export const OVERLAY_XATTR_PREFIX = inUserNamespace() ? 'user.overlay.' : 'trusted.overlay.';

/** Attributes that belong to the filesystem or host, never to an image layer. */
export function isLayerXattr(name: string): boolean {
  return !name.startsWith(OVERLAY_XATTR_PREFIX) && !name.startsWith('trusted.overlay.') && name !== 'security.selinux';
}
