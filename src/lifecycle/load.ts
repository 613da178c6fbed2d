/**
 * A lockfile named on the command line: a path, or `git:REV:PATH` read with `git show
 * REV:PATH` (PATH as git reads it: from the repository root, or `./x` from the current
 * directory). Used by `htvend diff`.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { HtvendError, describeError } from '../util/errors.js';
import { decodeAssets, type AssetMap } from '../manifest/codec.js';

const GIT_TIMEOUT_MS = 60_000;

function gitShow(spec: string, signal?: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['show', spec], { stdio: ['ignore', 'pipe', 'pipe'], signal, timeout: GIT_TIMEOUT_MS });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2000)));
    child.on('error', (e) => reject(new HtvendError('IO', `git show ${spec}: cannot run git (${describeError(e)})`, { cause: e })));
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new HtvendError('NOT_FOUND', `git:${spec}: ${err.trim().split('\n').pop() || `git show exited ${code}`}`));
    });
  });
}

/** Reads and parses one side; errors name the argument as given. */
export async function loadLockfile(arg: string, opts: { signal?: AbortSignal | undefined } = {}): Promise<AssetMap> {
  if (arg.startsWith('git:')) {
    const spec = arg.slice(4);
    if (!/^[^:]+:.+$/.test(spec)) throw new HtvendError('USAGE', `${arg}: want git:REV:PATH, e.g. git:HEAD~1:assets.json`);
    return decodeAssets(await gitShow(spec, opts.signal), arg);
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(arg, { signal: opts.signal });
  } catch (e) {
    throw new HtvendError('NOT_FOUND', `${arg}: cannot read (${describeError(e)})`, { cause: e });
  }
  return decodeAssets(bytes, arg);
}
