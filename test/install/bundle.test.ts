/** The air-gapped install (README "Install") needs every runtime dependency inside the tarball. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

test('bundleDependencies lists every runtime dependency, so npm install --offline of the tarball needs no registry', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string>; bundleDependencies: string[] };
  assert.deepEqual([...pkg.bundleDependencies].sort(), Object.keys(pkg.dependencies).sort());
});
