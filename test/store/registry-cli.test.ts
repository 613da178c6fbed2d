/**
 * End to end through the htvend CLI with the registry backend: `build` records into a real
 * registry (TLS + htpasswd basic auth, credentials in the URL), then `offline` replays from it
 * inside `unshare -n`. A new network namespace cannot reach the host's loopback, so the same
 * registry (same config and storage directory, same 127.0.0.1 port) is started again inside
 * the namespace: the only thing the offline run can reach is the store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry } from '../helpers/registry-server.js';
import { startUpstream, sendBody } from '../helpers/https-upstream.js';
import { cliCommand, run, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { RegistryClient } from '../../src/registry/index.js';
import { parseDigest, sha256Hex } from '../../src/util/digest.js';
import { bigBody, shq, canUnshare, NO_STDIN } from './registry-cli-helpers.js';

test('htvend build records into a registry store and offline replays from it with no network', async (t) => {
  const reg = await startRegistry(t, { tls: true, auth: 'basic' });
  const up = await startUpstream(t);
  const big = bigBody(12 * 1024 * 1024 + 5);
  up.route('/small.txt', sendBody('small asset\n'));
  up.route('/big.bin', sendBody(big));
  const dir = await tempDir(t);
  const bundle = join(dir, 'cas.pem');
  await writeFile(bundle, up.caPem + reg.caPem!);
  const password = reg.users.alice!;
  const storeUrl = `https://alice:${password}@${reg.host}/v2/team/htvend-blobs/`;
  const flags = ['--blobs-backend', 'registry', '--blobs-registry', storeUrl];
  const env = { ...process.env, SSL_CERT_FILE: bundle, HOME: dir };

  const built = await runCli('htvend', ['-C', dir, 'build', ...flags, '--', 'sh', '-c', `curl -sSf ${up.https}/small.txt && curl -sSf ${up.https}/big.bin | sha256sum`], { env, stdio: NO_STDIN });
  assert.equal(built.code, 0, built.stderr);
  assert.match(built.stdout, new RegExp(sha256Hex(big)));
  assert.doesNotMatch(built.stderr, new RegExp(password));
  const assets = JSON.parse(await readFile(join(dir, 'assets.json'), 'utf8')) as Record<string, { Sha256: string }>;
  assert.equal(Object.keys(assets).length, 2);
  const client = await RegistryClient.open(reg.host, 'team/htvend-blobs', { env: {}, extraRoots: [reg.caPem!], credentials: { username: 'alice', password } });
  t.after(() => client.close());
  for (const { Sha256 } of Object.values(assets)) assert.ok(await client.statBlob(parseDigest(Sha256)), `blob ${Sha256} is in the registry`);

  if (!(await canUnshare())) return t.skip('unshare -n is not permitted here');
  await reg.stop();
  const htvend = cliCommand('htvend').map(shq).join(' ');
  const script = [
    'ip link set lo up',
    `docker-registry serve ${shq(reg.configFile)} >/dev/null 2>&1 & rp=$!`,
    `i=0; until curl -sk -o /dev/null https://${reg.host}/v2/; do i=$((i+1)); [ $i -gt 200 ] && exit 97; sleep 0.05; done`,
    `${htvend} -C ${shq(dir)} offline ${flags.map(shq).join(' ')} -- sh -c ${shq(`curl -sSf ${up.https}/small.txt && curl -sSf ${up.https}/big.bin | sha256sum && curl -sSf -r 1000-1999 ${up.https}/big.bin | sha256sum && curl -s -o /dev/null -w '%{http_code}\\n' ${up.https}/not-recorded`)}`,
    'rc=$?; kill $rp; wait $rp 2>/dev/null; exit $rc',
  ].join('\n');
  // A pid namespace too (-p -f --kill-child): if the run is killed on timeout, the store server
  // started inside dies with it instead of lingering in a dead network namespace.
  const offline = await run(['unshare', '-n', '-p', '-f', '--kill-child', 'sh', '-c', script], { env, stdio: NO_STDIN });
  assert.equal(offline.code, 0, offline.stderr);
  // The Range request is served from the store's range read.
  assert.equal(offline.stdout, `small asset\n${sha256Hex(big)}  -\n${sha256Hex(big.subarray(1000, 2000))}  -\n404\n`);
});
