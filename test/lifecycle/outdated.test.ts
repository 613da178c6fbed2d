/**
 * `htvend outdated` against a local HTTPS upstream whose files change between runs: one with
 * an ETag, one with Last-Modified, one with neither, one that disappears, and an apt
 * InRelease (an index: "moved"). Recorded through `htvend build -- curl`, so the validators
 * come from a real recording.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { build, project } from '../e2e/harness.js';
import { runCli } from '../helpers/cli.js';

test('outdated: same, changed (ETag, Last-Modified, --deep), gone and moved; exit 1 on change', async (t) => {
  const p = await project(t);
  let version = 1;
  const body = (name: string) => `${name} version ${version}\n`;
  const lastModified = () => new Date(Date.UTC(2026, 0, version)).toUTCString();
  p.up.route('/etag.txt', (req: IncomingMessage, res: ServerResponse) => {
    const tag = `"v${version}"`;
    if (req.headers['if-none-match'] === tag) return void res.writeHead(304, { etag: tag }).end();
    res.writeHead(200, { etag: tag, 'content-type': 'text/plain' }).end(body('etag'));
  });
  p.up.route('/lm.txt', (req: IncomingMessage, res: ServerResponse) => {
    if (req.headers['if-modified-since'] === lastModified()) return void res.writeHead(304).end();
    res.writeHead(200, { 'last-modified': lastModified() }).end(body('lm'));
  });
  p.up.route('/plain.txt', (_req: IncomingMessage, res: ServerResponse) => void res.writeHead(200).end(body('plain')));
  p.up.route('/going.txt', (_req: IncomingMessage, res: ServerResponse) => void (version === 1 ? res.writeHead(200).end('here') : res.writeHead(404).end()));
  // The shape of an apt InRelease: a mutable index (src/purl), so a change is "moved".
  p.up.route('/debian/dists/bookworm/InRelease', (_req: IncomingMessage, res: ServerResponse) => void res.writeHead(200, { etag: `"p${version}"` }).end(`{"v":${version}}`));
  const urls = ['/etag.txt', '/lm.txt', '/plain.txt', '/going.txt', '/debian/dists/bookworm/InRelease'].map((x) => p.up.https + x);
  const rec = await build(p, ['--', 'sh', '-c', urls.map((u) => `curl -fsS -o /dev/null ${u}`).join(' && ')]);
  assert.equal(rec.code, 0, rec.stderr);
  const assets = JSON.parse(await readFile(join(p.dir, 'assets.json'), 'utf8')) as Record<string, { Headers: Record<string, string> }>;
  assert.equal(assets[urls[0]!]!.Headers['Etag'], '"v1"', 'ETag recorded');
  assert.equal(assets[urls[1]!]!.Headers['Last-Modified'], lastModified(), 'Last-Modified recorded');

  const outdated = (...a: string[]) => runCli('htvend', ['-C', p.dir, 'outdated', '--json', ...a], { env: p.env });
  const statuses = (stdout: string) => Object.fromEntries((JSON.parse(stdout) as { assets: { url: string; status: string }[] }).assets.map((x) => [x.url.replace(p.up.https, ''), x.status]));

  const before = await outdated();
  assert.equal(before.code, 0, before.stderr);
  assert.deepEqual(statuses(before.stdout), { '/etag.txt': 'same', '/lm.txt': 'same', '/plain.txt': 'unknown', '/going.txt': 'unknown', '/debian/dists/bookworm/InRelease': 'same' });
  assert.equal(p.up.lastHeaders('/etag.txt')?.['if-none-match'], '"v1"', 'asked with the recorded ETag');

  version = 2;
  const after = await outdated();
  assert.equal(after.code, 1, after.stderr);
  assert.deepEqual(statuses(after.stdout), { '/etag.txt': 'changed', '/lm.txt': 'changed', '/plain.txt': 'unknown', '/going.txt': 'gone', '/debian/dists/bookworm/InRelease': 'moved' });

  const deep = await outdated('--deep');
  assert.equal(deep.code, 1);
  assert.equal(statuses(deep.stdout)['/plain.txt'], 'changed', '--deep hashes what has no validators');

  await p.up.close();
  const down = await outdated('--jobs', '2');
  assert.equal(down.code, 0, 'an unreachable upstream is reported per asset, not a crash');
  assert.ok(Object.values(statuses(down.stdout)).every((s) => s === 'unknown'));
});
