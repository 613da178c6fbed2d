/**
 * The real bins under a shell pipe whose reader leaves early (`… 2>&1 | head -1`): htvend must
 * keep serving its child, record/replay, save assets.json and exit with the child's code;
 * the builder must finish its image and exit 0. Before the fix both died of EPIPE within a
 * fraction of a second, orphaning the child.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cliCommand, run } from '../helpers/cli.js';
import { sendBody } from '../helpers/https-upstream.js';
import { project, q } from '../e2e/harness.js';

/** Runs `CMD 2>&1 | head -1` in bash; resolves with CMD's own exit status and head's line. */
async function underHead(argv: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<{ status: number; line: string; stderr: string }> {
  const script = `${argv.map(q).join(' ')} 2>&1 | head -1; echo "status=\${PIPESTATUS[0]}" >&2`;
  const r = await run(['bash', '-c', script], { env, cwd, timeoutMs: 120_000 });
  const m = /status=(\d+)/.exec(r.stderr);
  assert.ok(m, r.stderr);
  return { status: Number(m[1]), line: r.stdout, stderr: r.stderr };
}

test('htvend build under `2>&1 | head -1`: the child is still served and recorded, and its exit code is returned', async (t) => {
  const p = await project(t);
  p.up.route('/late.txt', sendBody('fetched after head left\n'));
  const url = `${p.up.https}/late.txt`;
  // -v makes htvend write a line per request, long after head has read its one line and gone.
  const child = `sleep 1; curl -fsS -o got.txt ${q(url)} && exit 3`;
  const r = await underHead([...cliCommand('htvend'), '-v', '-C', p.dir, 'build', '--blobs-dir', p.blobs, '--', 'sh', '-c', child], p.env, p.dir);
  assert.equal(r.status, 3, `htvend exits with the child's code (3), not 1 from EPIPE; ${r.stderr}`);
  assert.match(r.line, /^htvend: debug: /);
  assert.equal(await readFile(join(p.dir, 'got.txt'), 'utf8'), 'fetched after head left\n');
  const assets = JSON.parse(await readFile(join(p.dir, 'assets.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(Object.keys(assets), [url], 'the fetch made after the pipe closed is recorded');
});

test('htvend offline under `2>&1 | head -1`: replays to the child after the pipe closed, exits with its code', async (t) => {
  const p = await project(t);
  p.up.route('/a.txt', sendBody('replayed\n'));
  const url = `${p.up.https}/a.txt`;
  const rec = await run([...cliCommand('htvend'), '-C', p.dir, 'build', '--blobs-dir', p.blobs, '--', 'curl', '-fsS', '-o', '/dev/null', url], { env: p.env });
  assert.equal(rec.code, 0, rec.stderr);
  await p.up.close(); // offline must not need it
  const child = `sleep 1; curl -fsS -o got.txt ${q(url)}; curl -fsS -o /dev/null ${q(`${p.up.https}/not-recorded`)}; exit 4`;
  const r = await underHead([...cliCommand('htvend'), '-v', '-C', p.dir, 'offline', '--blobs-dir', p.blobs, '--', 'sh', '-c', child], p.env, p.dir);
  assert.equal(r.status, 4, r.stderr);
  assert.equal(await readFile(join(p.dir, 'got.txt'), 'utf8'), 'replayed\n');
});

test('build-img-with-proxy under `2>&1 | head -1`: the image is written and the exit code is 0', async (t) => {
  const p = await project(t, { upstream: false });
  await mkdir(join(p.dir, 'ctx'));
  const copies = Array.from({ length: 5 }, (_, i) => `COPY f${i} /f${i}`).join('\n');
  await writeFile(join(p.dir, 'ctx', 'Dockerfile'), `FROM scratch\n${copies}\n`);
  for (let i = 0; i < 5; i++) await writeFile(join(p.dir, 'ctx', `f${i}`), `file ${i}\n`);
  const env = { ...p.env, BUILDAH_OPTS: '' };
  const r = await underHead([...cliCommand('build-img-with-proxy'), '-v', '--platform', 'linux/amd64', '-t', `oci:${join(p.dir, 'out')}`, join(p.dir, 'ctx')], env, p.dir);
  assert.equal(r.status, 0, r.stderr);
  const index = JSON.parse(await readFile(join(p.dir, 'out', 'index.json'), 'utf8')) as { manifests: unknown[] };
  assert.equal(index.manifests.length, 1);
});
