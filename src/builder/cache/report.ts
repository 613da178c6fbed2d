/**
 * `--report FILE` (docs/build-cache.md, "Report"): one record per Dockerfile instruction and
 * platform — cached or run, how long it took, its layer, and the assets it fetched (or, when
 * cached, the assets it fetched when it ran, asked for again before reuse). The format is
 * versioned and kept stable: other tools (SLSA provenance) read it.
 */
import { writeFileAtomic } from '../../manifest/atomic.js';

export interface ReportAsset {
  /** The assets.json key (the URL, any password redacted). */
  url: string;
  sha256: string;
  size: number;
}

export interface StepRecord {
  platform: string;
  stage: number;
  /** `Dockerfile:LINE`. */
  location: string;
  line: number;
  instruction: string;
  kind: string;
  status: 'run' | 'cached';
  durationMs: number;
  layer: { digest: string; diffId: string; size: number } | null;
  assets: ReportAsset[];
  /** Step identity the step's requests were attributed to (absent without attribution). */
  stepId?: string;
  /** Cache key (RUN, COPY, ADD with the cache on). */
  cacheKey?: string;
  /** Why a cacheable step ran, or why its result was not stored. */
  note?: string;
}

export interface BuildReportFile {
  version: 1;
  dockerfile: string;
  attribution: { available: boolean; reason?: string; mode?: 'build' | 'offline' };
  cache: { enabled: boolean; dir?: string };
  durationMs: number;
  steps: StepRecord[];
}

export class BuildReport {
  readonly steps: StepRecord[] = [];
  private readonly started = Date.now();
  constructor(private readonly head: Omit<BuildReportFile, 'steps' | 'durationMs' | 'version'>) {}

  add(r: StepRecord): void {
    this.steps.push(r);
  }

  json(): BuildReportFile {
    return { version: 1, ...this.head, durationMs: Date.now() - this.started, steps: this.steps };
  }

  async write(path: string): Promise<void> {
    await writeFileAtomic(path, JSON.stringify(this.json(), null, 2) + '\n');
  }

  /** The short table printed at the end of a build on a terminal. */
  table(): string {
    const rows = this.steps.filter((s) => s.kind === 'RUN' || s.kind === 'COPY' || s.kind === 'ADD' || s.kind === 'FROM');
    const size = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
    const lines = rows.map((s) => {
      const text = s.instruction.length > 48 ? `${s.instruction.slice(0, 47)}…` : s.instruction;
      return [s.location.padEnd(16), s.status.padEnd(6), `${(s.durationMs / 1000).toFixed(2)} s`.padStart(9), (s.layer ? size(s.layer.size) : '-').padStart(10), String(s.assets.length).padStart(6), ` ${text}`].join(' ');
    });
    const cached = rows.filter((s) => s.status === 'cached').length;
    return [`${'step'.padEnd(16)} ${'status'.padEnd(6)} ${'time'.padStart(9)} ${'layer'.padStart(10)} ${'assets'.padStart(6)}  instruction`, ...lines, `${cached} of ${rows.length} steps from the cache`].join('\n') + '\n';
  }
}
