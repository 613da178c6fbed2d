/**
 * Running the child (SPEC §4): inherited stdio, its exit code becomes ours (death by signal
 * N → 128+N, as shells report it), SIGINT/SIGTERM forwarded. No command → an interactive
 * shell whose prompt shows the mode. `--daemon` → no child; serve until signalled.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { basename } from 'node:path';
import { HtvendError, describeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';

export type Mode = 'build' | 'offline';
const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface ShellCommand {
  argv: string[];
  /** Extra environment for the shell (the prompt). */
  env: Record<string, string>;
}

/**
 * The interactive shell for a session without a command: `$SHELL` (default /bin/sh). bash
 * gets `--norc` so its rc files cannot replace the prompt (as the Go tool does); every
 * shell gets PS1 `(htvend MODE) $ `.
 */
export function interactiveShell(parentEnv: Readonly<Record<string, string | undefined>>, mode: Mode): ShellCommand {
  const shell = parentEnv['SHELL'] || '/bin/sh';
  const isBash = basename(shell) === 'bash';
  return {
    argv: isBash ? [shell, '--norc'] : [shell],
    env: { PS1: isBash ? `(htvend ${mode}) \\$ ` : `(htvend ${mode}) $ ` },
  };
}

/** Exit status the way a shell reports it: the code, or 128 + signal number. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal ? constants.signals[signal] : undefined;
  return n ? 128 + n : 1;
}

export interface RunChildOptions {
  argv: readonly string[];
  env: Record<string, string>;
  log: Logger;
}

/**
 * Runs the child to completion with stdio inherited; resolves to its exit status. While it
 * runs, SIGINT/SIGTERM/SIGHUP sent to htvend are passed on to it (and do not kill htvend,
 * which must outlive the child to save the manifest). A command that cannot be started is a
 * CHILD error with the shell's conventional 127 (not found) / 126 (not executable).
 */
export function runChild(o: RunChildOptions): Promise<number> {
  const [cmd, ...args] = o.argv;
  if (!cmd) return Promise.reject(new HtvendError('USAGE', 'no command to run'));
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'inherit', env: o.env });
    const forward = (sig: NodeJS.Signals) => {
      o.log.debug(`forwarding ${sig} to the child (pid ${child.pid ?? '?'})`);
      child.kill(sig);
    };
    for (const s of FORWARDED) process.on(s, forward);
    const done = () => {
      for (const s of FORWARDED) process.removeListener(s, forward);
    };
    child.once('error', (e: NodeJS.ErrnoException) => {
      done();
      const notFound = e.code === 'ENOENT';
      reject(
        new HtvendError('CHILD', `cannot run ${JSON.stringify(cmd)}: ${notFound ? 'command not found' : describeError(e)}`, {
          cause: e,
          exitCode: notFound ? 127 : 126,
        }),
      );
    });
    child.once('exit', (code, signal) => {
      done();
      o.log.debug(`child exited with ${code ?? signal}`);
      resolve(exitStatus(code, signal));
    });
  });
}

/** Resolves on the first SIGINT/SIGTERM/SIGHUP (or when `signal` aborts); used by `--daemon`. */
export function untilSignalled(signal?: AbortSignal): Promise<NodeJS.Signals | 'abort'> {
  return new Promise((resolve) => {
    const finish = (s: NodeJS.Signals | 'abort') => {
      for (const x of FORWARDED) process.removeListener(x, finish);
      signal?.removeEventListener('abort', onAbort);
      resolve(s);
    };
    const onAbort = () => finish('abort');
    for (const x of FORWARDED) process.once(x, finish);
    if (signal?.aborted) finish('abort');
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}
