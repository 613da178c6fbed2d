/**
 * `htvend diff OLD NEW`: what changed between two lockfiles, grouped by package
 * (src/lifecycle/diff.ts). Exit codes as diff(1): 0 same, 1 different, 2 trouble.
 */
import { HtvendError, isHtvendError, describeError } from '../util/errors.js';
import { loadLockfile } from '../lifecycle/load.js';
import { diffLockfiles, formatDiff } from '../lifecycle/diff.js';

export interface DiffOptions {
  old: string;
  new: string;
  json: boolean;
  write?: ((s: string) => void) | undefined;
  signal?: AbortSignal | undefined;
}

export async function diffCommand(o: DiffOptions): Promise<number> {
  const write = o.write ?? ((s: string) => void process.stdout.write(s));
  let sides;
  try {
    sides = await Promise.all([loadLockfile(o.old, o), loadLockfile(o.new, o)]);
  } catch (e) {
    // diff(1): trouble is exit 2, whatever the kind of error.
    if (isHtvendError(e)) throw new HtvendError(e.code, e.message, { hint: e.hint, cause: e.cause, exitCode: 2 });
    throw new HtvendError('INTERNAL', describeError(e), { cause: e, exitCode: 2 });
  }
  const d = diffLockfiles(sides[0], sides[1]);
  write(o.json ? `${JSON.stringify({ old: o.old, new: o.new, ...d }, null, 2)}\n` : formatDiff(d, o.old, o.new));
  return d.same ? 0 : 1;
}
