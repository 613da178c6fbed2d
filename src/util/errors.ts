/**
 * One error type for everything the user can get wrong or the world can break.
 * The CLI has a single catch that prints `message` (+ `hint`) and exits with `exitCode`.
 * Messages must already be redacted (see redact.ts): they are printed verbatim.
 */
export type ErrorCode =
  | 'USAGE' // bad flag / argument
  | 'INPUT' // malformed file (assets.json, Dockerfile, …)
  | 'NOT_FOUND' // missing blob, file, stage, image
  | 'DIGEST_MISMATCH' // bytes do not hash to what was promised
  | 'UPSTREAM' // an upstream server misbehaved
  | 'STORE' // a blob store failed
  | 'LOCKED' // another writer holds the manifest
  | 'IO' // local filesystem / network listen failure
  | 'CHILD' // child process failed (exit code carried separately)
  | 'ABORTED'
  | 'INTERNAL';

export interface HtvendErrorOptions {
  hint?: string;
  cause?: unknown;
  exitCode?: number;
}

export class HtvendError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, opts: HtvendErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HtvendError';
    this.code = code;
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? (code === 'USAGE' ? 2 : 1);
  }
}

export function isHtvendError(e: unknown): e is HtvendError {
  return e instanceof HtvendError;
}

/**
 * Short description of any thrown value, for wrapping into a HtvendError message. Our own
 * errors give their message only: their code (DIGEST_MISMATCH, STORE, …) is for programs, not
 * people. A system error keeps its errno name (ENOENT, ECONNREFUSED), which people search for.
 * A bare "fetch failed" (undici) or "terminated" says nothing: the real reason is its `cause`
 * (getaddrinfo ENOTFOUND, a certificate error, a reset), so that is appended.
 */
export function describeError(e: unknown): string {
  if (e instanceof HtvendError) return e.message;
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    const own = typeof code === 'string' && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
    const cause = (e as { cause?: unknown }).cause;
    if (cause !== undefined && cause !== e && (e.message === 'fetch failed' || e.message === 'terminated' || !own)) {
      const why = describeError(cause);
      return own ? `${own}: ${why}` : why;
    }
    return own;
  }
  return String(e);
}

/** True for errors caused by an AbortSignal firing. */
export function isAbortError(e: unknown): boolean {
  return (
    e instanceof Error &&
    (e.name === 'AbortError' || (e as NodeJS.ErrnoException).code === 'ABORT_ERR' || (e instanceof HtvendError && e.code === 'ABORTED'))
  );
}
