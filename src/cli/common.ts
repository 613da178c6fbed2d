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

/** Level from `-v` (wins) or LOG_LEVEL (an unknown value is a USAGE error, as in Go). */
export function makeLogger(verbose: boolean, env: Readonly<Record<string, string | undefined>>, prefix = 'htvend'): Logger {
  const fromEnv = env['LOG_LEVEL'];
  const parsed = parseLevel(fromEnv);
  if (fromEnv !== undefined && fromEnv !== '' && !parsed) {
    throw new HtvendError('USAGE', `LOG_LEVEL=${JSON.stringify(fromEnv)}: not a log level (debug, info, warn, error)`);
  }
  return createLogger(verbose ? 'debug' : (parsed ?? 'info'), prefix);
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
 * The single top-level catch: prints the error (and hint) and returns the exit code.
 * Non-HtvendErrors are bugs or unexpected failures: printed with their stack at debug level.
 */
export function reportError(e: unknown, log: Pick<Logger, 'error' | 'debug'> | undefined, write: (s: string) => void = (s) => process.stderr.write(s)): number {
  const err = (m: string) => (log ? log.error(m) : write(`htvend: ERROR: ${redactText(m)}\n`));
  if (isHtvendError(e)) {
    err(e.message);
    if (e.hint) (log ? log.error(`hint: ${e.hint}`) : write(`htvend: hint: ${redactText(e.hint)}\n`));
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
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => process.exit(reportError(e, undefined)),
  );
}
