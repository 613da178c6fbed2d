// Bundles the two CLIs from tsc's output (dist/src/cli/*.js) into dist/bundle/, which bin/*.js
// load. Why: Node 20 loads an ES module graph file by file (resolve, stat, read, compile, link),
// and our ~160 modules cost ~70 ms of every start, a third of a warm rebuild's own time
// (docs/build-cache.md "Warm path"). One file per entry plus shared chunks loads in a fraction.
// - Our code only: packages stay external, so dependencies load from node_modules as npm
//   installed them (their licences, versions and `npm ls` stay true).
// - Code splitting keeps every `await import()` lazy: a command's code loads when it runs.
// - No minification: stack traces and the shipped code stay readable.
// Tests import dist/src/ directly; the bins, and so every test that spawns them, use the bundle.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist/bundle');
await rm(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { htvend: 'dist/src/cli/htvend.js', 'build-img-with-proxy': 'dist/src/cli/build-img-with-proxy.js' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  chunkNames: 'chunks/[name]-[hash]',
  logLevel: 'warning',
  // tsc's source maps point at src/*.ts, which the package does not ship.
  sourcemap: false,
  legalComments: 'none',
});
