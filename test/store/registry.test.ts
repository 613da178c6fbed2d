import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runConformance } from './conformance.js';
import { startRegistry, type RegistryServer } from '../helpers/registry-server.js';
import { openRegistryStore, parseRegistryStoreUrl, BLOBS_ARTIFACT_TYPE, type RegistryStore } from '../../src/store/registry/index.js';
import { RegistryClient, MEDIA_TYPES, type ImageManifest } from '../../src/registry/index.js';
import { canFinalizeExport, type BlobStore } from '../../src/store/store.js';
import { sha256Hex, type Digest } from '../../src/util/digest.js';
import { HtvendError } from '../../src/util/errors.js';
import { putBytes } from '../helpers/store.js';

/** Where docker-registry's filesystem driver keeps a blob's bytes. */
function blobDataPath(reg: RegistryServer, digest: Digest): string {
  return join(reg.dir, 'docker/registry/v2/blobs/sha256', digest.slice(0, 2), digest, 'data');
}

const servers = new WeakMap<BlobStore, RegistryServer>();

runConformance(
  'registry (TLS + token auth)',
  async (t) => {
    const reg = await startRegistry(t, { tls: true, auth: 'token' });
    const store = await openRegistryStore(`https://alice:${reg.users.alice}@${reg.host}/v2/htvend/blobs/`, { env: { SSL_CERT_FILE: reg.caFile } });
    t.after(() => store.close());
    servers.set(store, reg);
    return store;
  },
  { corrupt: async (store, digest, bytes) => writeFile(blobDataPath(servers.get(store)!, digest), bytes) },
);

test('parses --blobs-registry URLs and rejects ones without /v2/<repo>/', () => {
  assert.deepEqual(parseRegistryStoreUrl('https://u:p%40ss@reg.example:5000/v2/team/blobs/'), {
    scheme: 'https',
    host: 'reg.example:5000',
    pathPrefix: '',
    repository: 'team/blobs',
    credentials: { username: 'u', password: 'p@ss' },
    display: 'https://reg.example:5000/v2/team/blobs/',
    exportTag: undefined,
  });
  assert.equal(parseRegistryStoreUrl('http://127.0.0.1:1/mirror/v2/x').pathPrefix, '/mirror');
  assert.equal(parseRegistryStoreUrl('https://reg.example/v2/x/?tag=release-7').exportTag, 'release-7');
  for (const bad of ['https://u:secret@reg.example/team/blobs', 'ftp://reg.example/v2/x/', 'https://reg.example/v2/UPPER/', 'not a url']) {
    assert.throws(() => parseRegistryStoreUrl(bad), (e: HtvendError) => e.code === 'USAGE' && !e.message.includes('secret'));
  }
});

test('finalizeExport pushes a tagged artifact manifest listing every blob, findable by its tag', async (t) => {
  const reg = await startRegistry(t, {});
  const store = await openRegistryStore(`http://${reg.host}/v2/htvend/blobs/`, { env: {} });
  t.after(() => store.close());
  assert.ok(canFinalizeExport(store));
  const a = await putBytes(store, Buffer.from('blob a'));
  const b = await putBytes(store, Buffer.from('blob bb'));
  const ref = await store.finalizeExport([{ digest: b }, { digest: a, size: 6 }, { digest: b }]);
  const tag = `htvend-${sha256Hex([a, b].sort().join('\n')).slice(0, 24)}`;
  assert.match(ref, new RegExp(`^${reg.host}/htvend/blobs:${tag}@sha256:[0-9a-f]{64}$`));
  const client = await RegistryClient.open(reg.host, 'htvend/blobs', { env: {}, scheme: 'http' });
  t.after(() => client.close());
  const got = await client.getManifest(tag);
  const m = JSON.parse(got.body.toString()) as ImageManifest;
  assert.equal(got.mediaType, MEDIA_TYPES.ociManifest);
  assert.equal(m.artifactType, BLOBS_ARTIFACT_TYPE);
  assert.deepEqual(
    m.layers.map((l) => [l.digest, l.size]),
    [[`sha256:${a}`, 6], [`sha256:${b}`, 7]].sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
  );
  // Same set, same tag and manifest; a user-chosen tag works too.
  assert.equal(await store.finalizeExport([{ digest: a }, { digest: b }]), ref);
  const custom = await store.finalizeExport([{ digest: a }], { tag: 'release-1.2' });
  assert.match(custom, /:release-1\.2@sha256:/);
  const tagged = await openRegistryStore(`http://${reg.host}/v2/htvend/blobs/?tag=fleet-2026`, { env: {} });
  t.after(() => tagged.close());
  assert.match(await tagged.finalizeExport([a]), /:fleet-2026@sha256:/);
  await assert.rejects(store.finalizeExport([{ digest: sha256Hex('absent') }]), (e: HtvendError) => e.code === 'STORE' && e.message.includes('is missing'));
});

test('a registry store with a wrong password fails with an error naming the store and not the password', async (t) => {
  const reg = await startRegistry(t, { auth: 'basic' });
  const store: RegistryStore = await openRegistryStore(`http://alice:not-the-pw@${reg.host}/v2/htvend/blobs/`, { env: {} });
  t.after(() => store.close());
  await assert.rejects(putBytes(store, Buffer.from('x')), (e: HtvendError) => {
    assert.equal(e.code, 'STORE');
    assert.match(e.message, /htvend\/blobs/);
    assert.match(e.message, /credentials rejected/);
    assert.doesNotMatch(e.message, /not-the-pw/);
    return true;
  });
});
