/**
 * Writing to our own stdout/stderr when the reader may be gone (`htvend build … 2>&1 | head -1`).
 * Node ignores SIGPIPE, so a write to a closed pipe fails with EPIPE, emitted as an 'error'
 * event; with no listener that kills the process — and htvend would abandon the child it is
 * serving. Instead, a dead stream is marked and later writes to it are dropped: htvend keeps
 * serving, recording and saving, and exits with the child's code.
 */
import { Writable } from 'node:stream';

const dead = new WeakSet<NodeJS.WritableStream>();

function markDeadOnError(stream: NodeJS.WriteStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    dead.add(stream);
    // EPIPE / EOF / a destroyed stream: the reader left. Anything else is also unrecoverable
    // for a log stream, and still no reason to abandon the child.
    void e;
  });
}

let guarded = false;

/** Installs the 'error' listeners on process.stdout and process.stderr (idempotent). */
export function guardStdio(): void {
  if (guarded) return;
  guarded = true;
  markDeadOnError(process.stdout);
  markDeadOnError(process.stderr);
}

/** True once writes to `stream` failed (the reader closed its end) or it was destroyed. */
export function isDead(stream: NodeJS.WriteStream): boolean {
  return dead.has(stream) || stream.destroyed || stream.writableEnded;
}

function safeWrite(stream: NodeJS.WriteStream, s: string | Uint8Array): void {
  if (isDead(stream)) return;
  try {
    stream.write(s);
  } catch {
    // a synchronous EPIPE on some platforms: same as the 'error' event
    dead.add(stream);
  }
}

/** Writes to stderr unless its reader is gone. */
export function writeStderr(s: string): void {
  safeWrite(process.stderr, s);
}

/** Writes to stdout unless its reader is gone. */
export function writeStdout(s: string): void {
  safeWrite(process.stdout, s);
}

/**
 * A Writable that forwards to stderr while it lives and then swallows everything: for piping
 * a child's output (RUN steps) into our stderr. Piping straight into process.stderr would, once
 * the reader is gone, stop draining the child's pipe and leave it blocked on a full pipe.
 */
export function stderrSink(): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      safeWrite(process.stderr, chunk);
      cb();
    },
  });
}
