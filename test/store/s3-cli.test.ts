/**
 * End to end through the htvend CLI with the S3 backend (s3rver): `build` records into a
 * bucket, `offline` replays from it inside `unshare -n`, with s3rver started again inside the
 * namespace on the same port and directory (the host's loopback is unreachable from there).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startS3Server, s3Env, s3ServerCommand } from '../helpers/s3-server.js';
import { startUpstream, sendBody } from '../helpers/https-upstream.js';
import { cliCommand, repoRoot, run, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { openS3Store } from '../../src/store/s3/index.js';
import { parseDigest, sha256Hex } from '../../src/util/digest.js';
import { bigBody, shq, canUnshare, NO_STDIN } from './registry-cli-helpers.js';

test('htvend build records into an S3 bucket and offline replays from it with no network', async (t) => {
  const s3 = await startS3Server(t, ['fleet-cache']);
  const up = await startUpstream(t);
  const big = bigBody(10 * 1024 * 1024 + 3);
  up.route('/small.txt', sendBody('small asset\n'));
  up.route('/big.bin', sendBody(big));
  const dir = await tempDir(t);
  await writeFile(join(dir, 'ca.pem'), up.caPem);
  const flags = ['--blobs-backend', 's3', '--blobs-bucket', 'fleet-cache', '--blobs-prefix', 'htvend/'];
  const env = { ...process.env, ...s3Env(s3), SSL_CERT_FILE: join(dir, 'ca.pem'), HOME: dir };

  const built = await runCli('htvend', ['-C', dir, 'build', ...flags, '--', 'sh', '-c', `curl -sSf ${up.https}/small.txt && curl -sSf ${up.https}/big.bin | sha256sum`], { env, stdio: NO_STDIN });
  assert.equal(built.code, 0, built.stderr);
  assert.match(built.stdout, new RegExp(sha256Hex(big)));
  const assets = JSON.parse(await readFile(join(dir, 'assets.json'), 'utf8')) as Record<string, { Sha256: string }>;
  assert.equal(Object.keys(assets).length, 2);
  const store = await openS3Store({ bucket: 'fleet-cache', prefix: 'htvend/' }, { env: s3Env(s3) });
  t.after(() => store.close());
  for (const { Sha256 } of Object.values(assets)) assert.ok(await store.stat(parseDigest(Sha256)), `blob ${Sha256} is in the bucket`);

  if (!(await canUnshare())) return t.skip('unshare -n is not permitted here');
  const port = new URL(s3.endpoint).port;
  await s3.stop();
  const htvend = cliCommand('htvend').map(shq).join(' ');
  const script = [
    'ip link set lo up',
    `cd ${shq(repoRoot)} && ${s3ServerCommand(s3.dir, ['fleet-cache'], Number(port)).map(shq).join(' ')} >/dev/null & sp=$!`,
    `i=0; until curl -s -o /dev/null ${s3.endpoint}/; do i=$((i+1)); [ $i -gt 200 ] && exit 97; sleep 0.05; done`,
    `${htvend} -C ${shq(dir)} offline ${flags.map(shq).join(' ')} -- sh -c ${shq(`curl -sSf ${up.https}/small.txt && curl -sSf ${up.https}/big.bin | sha256sum && curl -sSf -r 1000-1999 ${up.https}/big.bin | sha256sum`)}`,
    'rc=$?; kill $sp; wait $sp 2>/dev/null; exit $rc',
  ].join('\n');
  // A pid namespace too (-p -f --kill-child): if the run is killed on timeout, the store server
  // started inside dies with it instead of lingering in a dead network namespace.
  const offline = await run(['unshare', '-n', '-p', '-f', '--kill-child', 'sh', '-c', script], { env, stdio: NO_STDIN });
  assert.equal(offline.code, 0, offline.stderr);
  assert.equal(offline.stdout, `small asset\n${sha256Hex(big)}  -\n${sha256Hex(big.subarray(1000, 2000))}  -\n`);
});
