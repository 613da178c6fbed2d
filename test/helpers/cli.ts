/**
 * Spawning our own CLIs from tests. Works both from compiled tests (dist/test/…, runs bin/*.js,
 * the bundle users install: dist/bundle/, made by `npm run build`) and from TypeScript run with
 * tsx (runs src/cli/*.ts through tsx).
 */
import { spawn, type SpawnOptions } from 'node:child_process';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const fromTs = import.meta.url.endsWith('.ts');
/** Repository root. */
export const repoRoot = fromTs ? join(here, '..', '..') : join(here, '..', '..', '..');

/**
 * tsx's loader as an absolute file URL: a bare `--import tsx` is resolved from the child's
 * cwd, which fails when a test runs the CLI outside the repository (e.g. in a temp dir).
 */
const tsxLoader = fromTs ? import.meta.resolve('tsx') : '';

/** argv prefix that runs CLI `name` (`htvend` or `build-img-with-proxy`) from any cwd. */
export function cliCommand(name: 'htvend' | 'build-img-with-proxy'): string[] {
  return fromTs
    ? [process.execPath, '--import', tsxLoader, join(repoRoot, 'src', 'cli', `${name}.ts`)]
    : (checkBundle(name), [process.execPath, join(repoRoot, 'bin', `${name}.js`)]);
}

/** A bundle older than tsc's output would test yesterday's code: say so instead. */
function checkBundle(name: string): void {
  const age = (p: string) => statSync(join(repoRoot, p), { throwIfNoEntry: false })?.mtimeMs;
  const bundle = age(`dist/bundle/${name}.js`);
  const compiled = age(`dist/src/cli/${name}.js`);
  if (bundle === undefined || (compiled !== undefined && bundle < compiled)) {
    throw new Error(`dist/bundle/${name}.js is ${bundle === undefined ? 'missing' : 'older than dist/src'}: run \`npm run build\` (tsc, then the bundle)`);
  }
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to completion, capturing output. Rejects only if it cannot be spawned.
 * stdin is a pipe only when `input` is given (else /dev/null), so a tool that exits without
 * reading it cannot make the test fail with EPIPE.
 */
export function run(argv: string[], opts: SpawnOptions & { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd!, args, { stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    // A child that exits before reading all of `input` is its own business, not a test error.
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input ?? '');
  });
}

/** Runs one of our CLIs. */
export function runCli(name: 'htvend' | 'build-img-with-proxy', args: string[], opts: Parameters<typeof run>[1] = {}): Promise<RunResult> {
  return run([...cliCommand(name), ...args], opts);
}
