/**
 * A progress bar on stderr for long blob operations (SPEC §6), shown only when the stream is
 * a terminal: logs, CI output and tests get no control characters. cli-progress is used because
 * it already handles redraw throttling, terminal width and ETA.
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
  /** Force on/off (tests); default: `stream.isTTY`. */
  enabled?: boolean;
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
  if (!(opts.enabled ?? stream.isTTY === true) || opts.total === 0) return noProgress;
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
