/**
 * Leveled logging to stderr. Level from `-v` (debug) or `LOG_LEVEL` (debug|info|warn|error).
 * Deliberately tiny: htvend's output is a handful of human-readable lines on stderr, and the
 * child process owns stdout. Every message goes through `redactText`.
 */
import { redactText } from './redact.js';
import { writeStderr } from './stdio.js';

export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** `PREFIX: hint: …`, the next thing to try after a warning; shown at the warn level. */
  hint(msg: string): void;
  readonly level: Level;
}

export function parseLevel(s: string | undefined): Level | undefined {
  const l = s?.toLowerCase();
  return l === 'debug' || l === 'info' || l === 'warn' || l === 'error' ? l : l === 'warning' ? 'warn' : undefined;
}

/** How each level is tagged: `htvend: error: …`, `htvend: warning: …` (the style of git, cargo, gcc). */
const TAG: Record<Level, string> = { debug: 'debug: ', info: '', warn: 'warning: ', error: 'error: ' };

/** A logger writing `PREFIX: TAG MESSAGE` lines; stderr by default (dropped once its reader is gone). */
export function createLogger(level: Level, prefix = 'htvend', write: (line: string) => void = writeStderr): Logger {
  const at = (l: Level) => (msg: string) => {
    if (ORDER[l] >= ORDER[level]) write(`${prefix ? `${prefix}: ` : ''}${TAG[l]}${redactText(msg)}\n`);
  };
  const hint = (msg: string) => {
    if (ORDER.warn >= ORDER[level]) write(`${prefix ? `${prefix}: ` : ''}hint: ${redactText(msg)}\n`);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), hint, level };
}

/** A logger that drops everything (for library use and tests). */
export const silentLogger: Logger = createLogger('error', '', () => {});
