/** Spawning build-img-with-proxy from any working directory (it writes `oci/` into its cwd). */
import { join } from 'node:path';
import { cliCommand, repoRoot, run, type RunResult } from '../helpers/cli.js';

/**
 * cliCommand() with tsx's loader given as an absolute path: `--import tsx` is resolved from the
 * child's cwd, which fails outside the repository (compiled runs are unaffected).
 */
export function builderCommand(): string[] {
  return cliCommand('build-img-with-proxy').map((a) => (a === 'tsx' ? join(repoRoot, 'node_modules', 'tsx', 'dist', 'loader.mjs') : a));
}

export function runBuilder(args: string[], opts: Parameters<typeof run>[1] = {}): Promise<RunResult> {
  return run([...builderCommand(), ...args], opts);
}
