/**
 * A progress bar on stderr for long blob operations (SPEC §6), shown only to a person at a
 * terminal: not when stderr is not a TTY (logs, pipes, tests), nor with NO_COLOR (any
 * non-empty value, no-color.org), TERM=dumb, CI set (as CI services do), LOG_LEVEL=error or
 * `-q` (the logger's level is error). Those get no control characters at all. cli-progress is
 * used because it already handles redraw throttling, terminal width and ETA.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** One more item done (verified / copied / skipped). */
  itemDone(): void;
  /** Bytes moved since the last call (drives the throughput figure). */
  addBytes(n: number): void;
  /** Removes the bar. Idempotent. */
  stop(): void;
}

export interface ProgressOptions {
  /** Short verb shown before the bar, e.g. `verify`. */
  label: string;
  /** Number of items. */
  total: number;
  /** Default process.stderr; the bar appears only if `stream.isTTY`. */
  stream?: NodeJS.WriteStream;
  /** Force on/off (tests); default: `progressWanted(stream, env, level)`. */
  enabled?: boolean;
  /** Environment read for NO_COLOR / TERM / CI / LOG_LEVEL (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** The logger's level: `error` (from `-q` or LOG_LEVEL=error) turns the bar off. */
  level?: string;
}

/** Whether a progress bar may be drawn on `stream` (see the file comment). */
export function progressWanted(stream: { isTTY?: boolean }, env: Readonly<Record<string, string | undefined>>, level?: string): boolean {
  if (stream.isTTY !== true) return false;
  if (env['NO_COLOR']) return false;
  if ((env['TERM'] ?? '') === 'dumb') return false;
  if (env['CI'] && env['CI'] !== 'false' && env['CI'] !== '0') return false;
  if (level === 'error' || env['LOG_LEVEL']?.toLowerCase() === 'error') return false;
  return true;
}

const noProgress: Progress = { itemDone() {}, addBytes() {}, stop() {} };

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return `${n.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

/** A progress bar, or a no-op when stderr is not a terminal. */
export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  if (!(opts.enabled ?? progressWanted(stream, opts.env ?? process.env, opts.level)) || opts.total === 0) return noProgress;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${opts.label} [{bar}] {value}/{total} blobs | {bytes} | {rate}/s | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  const start = Date.now();
  let bytes = 0;
  let done = 0;
  const payload = () => {
    const secs = Math.max(0.001, (Date.now() - start) / 1000);
    return { bytes: formatBytes(bytes), rate: formatBytes(bytes / secs) };
  };
  bar.start(opts.total, 0, payload());
  // Byte counts arrive per chunk; push them to the bar a few times a second, not per chunk.
  const timer = setInterval(() => bar.update(done, payload()), 200);
  timer.unref();
  let stopped = false;
  return {
    itemDone() {
      done++;
      bar.update(done, payload());
    },
    addBytes(n) {
      bytes += n;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      bar.stop();
    },
  };
}
