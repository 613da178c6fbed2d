/**
 * Helpers shared by the CLIs: Go-flags-like list options, listen-address and regex parsing,
 * XDG path expansion, logging set-up, `--github-output-path`, and the one top-level error
 * handler that maps HtvendError → message + hint + exit code.
 */
import { realpathSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { isIP } from 'node:net';
import { HtvendError, describeError, isHtvendError } from '../util/errors.js';
import { createLogger, parseLevel, type Logger } from '../util/log.js';
import { redactText } from '../util/redact.js';
import { guardStdio, writeStderr, writeStdout } from '../util/stdio.js';

/**
 * A commander option parser for a repeatable list flag with defaults, matching go-flags:
 * the first use on the command line *replaces* the default list, later uses append.
 * An empty value (`--flag=`) adds nothing, so `--set-env-var-no-proxy=` empties the list
 * (go-flags would add an empty name, which is useless).
 */
export function listFlag(defaults: readonly string[]): { parse: (v: string, prev: string[]) => string[]; defaults: string[] } {
  const initial = [...defaults];
  return {
    defaults: initial,
    parse: (v, prev) => [...(prev === initial ? [] : prev), ...(v === '' ? [] : [v])],
  };
}

/** Compiles `--flag` regexes (Go RE2 syntax is, for these patterns, JS syntax); bad ones are USAGE errors naming the flag. */
export function compileRegexes(patterns: readonly string[], flag: string): RegExp[] {
  return patterns.map((p) => {
    try {
      return new RegExp(p);
    } catch (e) {
      throw new HtvendError('USAGE', `${flag} ${JSON.stringify(p)}: invalid regular expression (${describeError(e)})`);
    }
  });
}

/** RFC 9110 §5.1 field-name: a token (no spaces, colons or separators). */
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Checks `--cache-header` style header names; a bad one is a USAGE error naming it. */
export function parseHeaderNames(names: readonly string[], flag: string): string[] {
  for (const n of names) {
    if (!FIELD_NAME.test(n)) {
      throw new HtvendError('USAGE', `${flag} ${JSON.stringify(n)}: not an HTTP header name`, { hint: 'a header name is one word of letters, digits and - (e.g. Content-Type), without the colon or a value' });
    }
  }
  return [...names];
}

/**
 * commander's output settings for our style: `PROG: error: MESSAGE` then `PROG: hint: run
 * 'COMMAND --help' …`; help on stdout and errors on stderr, both dropped once their reader is
 * gone (see util/stdio.ts).
 */
export function commanderOutput(prog: string, helpCommand: string): {
  writeOut: (s: string) => void;
  writeErr: (s: string) => void;
  outputError: (s: string, write: (s: string) => void) => void;
} {
  return {
    writeOut: writeStdout,
    writeErr: writeStderr,
    outputError: (str, write) => {
      const msg = str.replace(/^error: /, '').trimEnd();
      write(`${prog}: error: ${msg}\n${prog}: hint: run '${helpCommand} --help' for usage and examples\n`);
    },
  };
}

export interface ListenAddr {
  host: string;
  port: number;
}

/** Parses `host:port` / `[v6]:port` / `:port` (→ 127.0.0.1, loopback by default unlike Go's all-interfaces). */
export function parseListenAddr(s: string, flag: string): ListenAddr {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  const host = m ? (m[1] ?? m[2] ?? '') : '';
  if (!m || port > 65535 || (host !== '' && host !== 'localhost' && isIP(host) === 0)) {
    throw new HtvendError('USAGE', `${flag} ${JSON.stringify(s)}: want HOST:PORT with an IP address (e.g. 127.0.0.1:0)`);
  }
  return { host: host === '' || host === 'localhost' ? '127.0.0.1' : host, port };
}

/** A `--flag SECONDS` value (decimals allowed, > 0, at most a day) → milliseconds. */
export function parseSeconds(v: string, flag: string): number {
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v.trim()) || !(n > 0) || n > 86_400) throw new HtvendError('USAGE', `${flag} ${JSON.stringify(v)}: want a number of seconds, more than 0 and at most 86400`);
  return Math.round(n * 1000);
}

/** `${XDG_DATA_HOME}/x` → `$XDG_DATA_HOME/x`, or `~/.local/share/x` when unset (as Go's xdg package). */
export function expandXdg(path: string, env: Readonly<Record<string, string | undefined>>): string {
  const prefix = '${XDG_DATA_HOME}';
  if (!path.startsWith(prefix)) return path;
  const base = env['XDG_DATA_HOME'] || join(env['HOME'] || homedir(), '.local', 'share');
  return base + path.slice(prefix.length);
}

/**
 * Level from `-v` (debug) or `-q` (error), which win over LOG_LEVEL — also over a LOG_LEVEL
 * that is not a level, so `-v` always works. Without either, an unknown LOG_LEVEL is a USAGE
 * error, as in Go. `-v` with `-q` is a contradiction, reported as a usage error.
 */
export function makeLogger(verbose: boolean, env: Readonly<Record<string, string | undefined>>, prefix = 'htvend', quiet = false): Logger {
  if (verbose && quiet) throw new HtvendError('USAGE', '-v/--verbose and -q/--quiet cannot be used together');
  if (verbose || quiet) return createLogger(verbose ? 'debug' : 'error', prefix);
  const fromEnv = env['LOG_LEVEL'];
  const parsed = parseLevel(fromEnv);
  if (fromEnv !== undefined && fromEnv !== '' && !parsed) {
    throw new HtvendError('USAGE', `LOG_LEVEL=${JSON.stringify(fromEnv)} is not a log level`, { hint: 'use debug, info, warn or error (or -v / -q, which override LOG_LEVEL)' });
  }
  return createLogger(parsed ?? 'info', prefix);
}

/**
 * Appends `name=value` lines for every `htvend_*` counter to `path` (GitHub Actions'
 * GITHUB_OUTPUT format), in name order, as the Go tool does on exit.
 */
export async function writeGithubOutput(path: string, counters: Readonly<Record<string, number>>): Promise<void> {
  const lines = Object.keys(counters)
    .filter((k) => k.startsWith('htvend_'))
    .sort()
    .map((k) => `${k}=${Math.trunc(counters[k]!)}\n`)
    .join('');
  try {
    await appendFile(path, lines, { mode: 0o666 });
  } catch (e) {
    throw new HtvendError('IO', `--github-output-path ${path}: cannot append (${describeError(e)})`, { cause: e });
  }
}

/**
 * The single top-level catch: prints `PROG: error: MESSAGE` and `PROG: hint: …` on stderr and
 * returns the exit code. Usage errors without a hint of their own point to `--help`. The
 * error's internal code is shown only at debug level (`-v`). Non-HtvendErrors are bugs or
 * unexpected failures: printed with their stack at debug level.
 */
export function reportError(
  e: unknown,
  log: Pick<Logger, 'debug'> | undefined,
  write: (s: string) => void = writeStderr,
  opts: { prog?: string; helpCommand?: string } = {},
): number {
  const prog = opts.prog ?? 'htvend';
  // Written directly, not through `log`: errors show at every log level, and a hint is not an error line.
  const err = (m: string) => write(`${prog}: error: ${redactText(m)}\n`);
  const hint = (h: string) => write(`${prog}: hint: ${redactText(h)}\n`);
  if (isHtvendError(e)) {
    err(e.message);
    const h = e.hint ?? (e.code === 'USAGE' ? `run '${opts.helpCommand ?? prog} --help' for usage and examples` : undefined);
    if (h) hint(h);
    log?.debug(`(error code ${e.code}, exit ${e.exitCode})`);
    if (e.cause instanceof Error && e.cause.stack) log?.debug(e.cause.stack);
    return e.exitCode;
  }
  err(`unexpected error: ${describeError(e)}`);
  if (e instanceof Error && e.stack) log?.debug(e.stack);
  return 1;
}

/**
 * Runs `main` as the program when the calling module is the process entry point: started
 * directly (`node dist/src/cli/X.js`, tsx), through `bin/X.js`, or through an npm bin symlink.
 * Importing the module from a test does nothing.
 */
export function runIfEntryPoint(moduleUrl: string, binName: string, main: (argv: string[]) => Promise<number>): void {
  const script = process.argv[1];
  if (!script) return;
  let real: string;
  try {
    real = realpathSync(script);
    if (real !== realpathSync(fileURLToPath(moduleUrl)) && !real.endsWith(`/bin/${binName}.js`)) return;
  } catch {
    return;
  }
  guardStdio();
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => process.exit(reportError(e, undefined, writeStderr, { prog: binName })),
  );
}
