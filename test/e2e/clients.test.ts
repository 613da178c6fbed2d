/**
 * Real clients under `htvend build`, then the same command under `htvend offline` with no
 * network (unshare -n): each must get identical bytes with zero client configuration.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { randomBytes, createHash } from 'node:crypto';
import { join } from 'node:path';
import { sendBody } from '../helpers/https-upstream.js';
import { writeJavaClient } from '../helpers/java-client.js';
import { build, offlineUnshared, project, canUnshare, which, type Project } from './harness.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Client {
  name: string;
  available: boolean;
  /** Known failure elsewhere, reported as a todo rather than failing the suite. */
  todo?: string;
  /** argv fetching `url` into `out` (relative to the project dir: the child runs there via -C). */
  argv(p: Project, url: string, out: string): Promise<string[]>;
}

const clients: Client[] = [
  { name: 'curl', available: which('curl'), argv: async (_p, url, out) => ['curl', '-fsS', '-o', out, url] },
  // GNU wget (GnuTLS) reads no CA variable: it gets the CA through the WGETRC htvend writes.
  { name: 'GNU wget', available: which('wget'), argv: async (_p, url, out) => ['wget', '-q', '-O', out, url] },
  {
    name: 'busybox wget',
    available: which('busybox'),
    // busybox wget half-closes after its request: the proxy must still answer it.
    argv: async (_p, url, out) => ['busybox', 'wget', '-q', '-O', out, url],
  },
  {
    name: 'python3 urllib',
    available: which('python3'),
    argv: async (_p, url, out) => ['python3', '-c', 'import sys,urllib.request;open(sys.argv[2],"wb").write(urllib.request.urlopen(sys.argv[1]).read())', url, out],
  },
  { name: 'Java 17 HttpURLConnection', available: which('java'), argv: async (p, url, out) => ['java', await writeJavaClient(p.dir), url, out] },
];

for (const c of clients) {
  test(`${c.name}: build records an HTTPS download and offline (no network) replays identical bytes`, { skip: !c.available || !canUnshare ? `${c.name} or unshare -n unavailable` : false, todo: c.todo }, async (t) => {
    const p = await project(t);
    const body = randomBytes(300_000);
    p.up.route('/files/asset.bin', sendBody(body, { 'content-type': 'application/x-test' }));
    const url = `${p.up.https}/files/asset.bin`;

    const b = await build(p, ['--', ...(await c.argv(p, url, 'online.bin'))]);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(sha(await readFile(join(p.dir, 'online.bin'))), sha(body));
    const assets = JSON.parse(await readFile(join(p.dir, 'assets.json'), 'utf8'));
    assert.equal(assets[url]?.Sha256, sha(body), JSON.stringify(assets));
    assert.equal(p.up.hits('/files/asset.bin'), 1);

    const o = await offlineUnshared(p, ['--', ...(await c.argv(p, url, 'offline.bin'))]);
    assert.equal(o.code, 0, o.stderr);
    assert.equal(sha(await readFile(join(p.dir, 'offline.bin'))), sha(body));
    assert.equal(p.up.hits('/files/asset.bin'), 1, 'offline never reached the upstream');
  });
}

test('Java without JAVA_TOOL_OPTIONS (--no-java-tool-options) works from JKS_KEYSTORE_FILE and the proxy variables alone', { skip: !which('java') || !canUnshare ? 'needs java and unshare -n' : false }, async (t) => {
  const p = await project(t);
  const body = randomBytes(10_000);
  p.up.route('/j.bin', sendBody(body));
  const client = await writeJavaClient(p.dir);
  // What a build script does by hand: truststore from JKS_KEYSTORE_FILE, proxy from HTTPS_PROXY.
  const script = (out: string) =>
    `test -z "$JAVA_TOOL_OPTIONS" && hp=\${HTTPS_PROXY#http://} && exec java -Djavax.net.ssl.trustStore="$JKS_KEYSTORE_FILE" -Djavax.net.ssl.trustStoreType=PKCS12 -Dhttps.proxyHost=\${hp%:*} -Dhttps.proxyPort=\${hp##*:} -Dhttp.nonProxyHosts= ${client} ${p.up.https}/j.bin ${out}`;
  const b = await build(p, ['--no-java-tool-options', '--', 'sh', '-c', script('a.bin')]);
  assert.equal(b.code, 0, b.stderr);
  const o = await offlineUnshared(p, ['--no-java-tool-options', '--', 'sh', '-c', script('b.bin')]);
  assert.equal(o.code, 0, o.stderr);
  assert.equal(sha(await readFile(join(p.dir, 'b.bin'))), sha(body));
  assert.equal(p.up.hits('/j.bin'), 1);
});
