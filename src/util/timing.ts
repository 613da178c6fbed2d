/**
 * `BUILD_IMG_TIMING=1`: one stderr line per timed phase of a build, with its wall time and the
 * process uptime at its end (for bench/ and for finding where a slow build spends its time).
 * Off, `timed()` is a plain call.
 */
import { performance } from 'node:perf_hooks';
import { writeStderr } from './stdio.js';

const on = process.env.BUILD_IMG_TIMING === '1';

export async function timed<T>(what: string, f: () => Promise<T>): Promise<T> {
  if (!on) return f();
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    writeStderr(`build-img timing: ${what} ${((performance.now() - t0) / 1000).toFixed(3)}s (ends at ${process.uptime().toFixed(3)}s)\n`);
  }
}

/** A point in time (e.g. "main started": everything before it is Node's start and module loading). */
export function timingMark(what: string): void {
  if (on) writeStderr(`build-img timing: ${what} at ${process.uptime().toFixed(3)}s\n`);
}
