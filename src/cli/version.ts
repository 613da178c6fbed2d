/**
 * `--version` for both bins: the version in the package.json this code was installed with,
 * read at run time (not baked in at compile time), so a packed tarball, a global install and a
 * git checkout all report the version their package.json says.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';

/**
 * The `version` of the nearest package.json named `htvend` above this module: two levels up
 * from src/cli/ (tsx) or three from dist/src/cli/ (compiled). Falls back to `unknown` rather
 * than failing a command over a version string.
 */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'htvend' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // no (readable) package.json here: keep walking up
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return 'unknown';
}

/** Adds `--version` (printing `packageVersion()`) to a commander program. */
export function withVersion(c: Command): Command {
  return c.version(packageVersion(), '--version', 'Print the htvend package version and exit');
}
