/**
 * Blob store failures are htvend's failures (SPEC §11): a blob dir on a 1 MiB tmpfs fills up
 * while a 3 MiB body is being recorded. The client still gets every byte, htvend exits 74
 * naming the store, the URL and ENOSPC, assets.json keeps what was recorded, and no temp file
 * is left. An unwritable blob dir (EACCES) fails the same way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, chown, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sendBody } from '../helpers/https-upstream.js';
import { cliCommand, run } from '../helpers/cli.js';
import { build, project } from '../e2e/harness.js';
import { canMount, readAssets, smallTmpfs, tempFilesIn } from './helpers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('a blob dir that fills up mid-recording fails the run with exit 74; the client still gets the body', { skip: !canMount }, async (t) => {
  const p = await project(t);
  const blobs = await smallTmpfs(t, '1m');
  const big = Buffer.alloc(3 << 20);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
  p.up.route('/small', sendBody('small and stored'));
  p.up.route('/big', sendBody(big));
  const res = await build({ ...p, blobs }, ['--', 'sh', '-c', `curl -sSf -o /dev/null ${p.up.https}/small && curl -sSf -o big.out ${p.up.https}/big; echo curl=$?`], { timeoutMs: 60_000 });
  assert.equal(res.code, 74, res.stderr);
  assert.match(res.stdout, /curl=0/, 'the transfer already flowing to the client completes');
  assert.equal(sha(await readFile(join(p.dir, 'big.out'))), sha(big));
  assert.match(res.stderr, new RegExp(`filesystem store ${blobs}.*storing ${p.up.https}/big failed: .*ENOSPC`));
  const assets = await readAssets(join(p.dir, 'assets.json'));
  assert.deepEqual(Object.keys(assets), [`${p.up.https}/small`]);
  assert.deepEqual(await tempFilesIn(blobs), []);
});

test('a blob dir that becomes unwritable (EACCES) fails the run with exit 74 naming the store and URL', { skip: !canMount }, async (t) => {
  const p = await project(t);
  p.up.route('/a', sendBody('aaa'));
  p.up.route('/b', sendBody('bbb'));
  // root ignores file modes: htvend and its child run as nobody, and the child takes the
  // write permission of the blob dir away between two downloads.
  await mkdir(p.blobs);
  await chown(p.blobs, 65534, 65534);
  await chmod(p.dir, 0o777);
  const stored = `until ls ${p.blobs} | grep -q '^[0-9a-f]\\{64\\}$'; do sleep 0.05; done`;
  const script = `curl -sSf -o /dev/null ${p.up.https}/a && ${stored} && chmod 555 ${p.blobs} && curl -sSf -o /dev/null ${p.up.https}/b; echo curl=$?`;
  const res = await run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--', ...cliCommand('htvend'), '-C', p.dir, 'build', '--blobs-dir', p.blobs, '--', 'sh', '-c', script], {
    env: { ...p.env, HOME: p.dir },
  });
  assert.equal(res.code, 74, res.stderr);
  assert.match(res.stdout, /curl=0/, res.stderr);
  assert.match(res.stderr, new RegExp(`filesystem store ${p.blobs}.*storing ${p.up.https}/b failed: .*EACCES`));
  assert.deepEqual(Object.keys(await readAssets(join(p.dir, 'assets.json'))), [`${p.up.https}/a`], res.stderr);
});
