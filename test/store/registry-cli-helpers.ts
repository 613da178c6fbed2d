/** Small helpers shared by the remote-store CLI tests. */
import { run } from '../helpers/cli.js';

/** Deterministic, non-repeating test bytes. */
export function bigBody(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) b.writeUInt32LE((i * 2654435761) >>> 0, i);
  return b;
}

/** POSIX shell single-quoting. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * stdio for CLI runs with no stdin: the shared run() helper writes an empty stdin, which can
 * fail with EPIPE when the child has already closed it.
 */
export const NO_STDIN: ['ignore', 'pipe', 'pipe'] = ['ignore', 'pipe', 'pipe'];

let unshareOk: Promise<boolean> | undefined;
/** Whether this process may create network and pid namespaces (root on the CI machine). */
export function canUnshare(): Promise<boolean> {
  unshareOk ??= run(['unshare', '-n', '-p', '-f', '--kill-child', 'true'], { stdio: NO_STDIN }).then((r) => r.code === 0, () => false);
  return unshareOk;
}

