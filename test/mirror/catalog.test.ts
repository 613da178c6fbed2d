/** MirrorCatalog: which recorded URL a mirror request maps to (pure, no I/O). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MirrorCatalog } from '../../src/mirror/catalog.js';
import type { AssetEntry } from '../../src/manifest/types.js';
import { sha256Hex, type Digest } from '../../src/util/digest.js';

const e = (body: string, headers: Record<string, string> = {}): AssetEntry => ({ Sha256: sha256Hex(body), Headers: headers });
const idx = e('index');
const entries = new Map<string, AssetEntry>([
  ['https://registry-1.docker.io/v2/library/alpine/manifests/3.20', idx],
  ['https://ghcr.io/v2/team/app/manifests/v1', e('app-ghcr')],
  ['https://quay.io/v2/team/app/manifests/v1', e('app-quay')],
  ['http://10.0.0.5:5000/v2/solo/blobs/sha256:' + sha256Hex('blob'), e('blob')],
  ['https://example.com/file.tar.gz', e('not a registry')],
]);

test('containerd ns=docker.io maps to registry-1.docker.io', () => {
  const r = new MirrorCatalog(entries).resolve({ kind: 'manifests', name: 'library/alpine', reference: '3.20', ns: 'docker.io' });
  assert.equal(r.kind, 'found');
  assert.equal(r.kind === 'found' && r.key, 'https://registry-1.docker.io/v2/library/alpine/manifests/3.20');
});

test('an official image without library/ is found under library/, with a default registry or without', () => {
  for (const cat of [new MirrorCatalog(entries, 'docker.io'), new MirrorCatalog(entries)]) {
    assert.equal(cat.resolve({ kind: 'manifests', name: 'alpine', reference: '3.20' }).kind, 'found');
  }
});

test('a manifest asked for by digest is the entry recorded under its tag', () => {
  const r = new MirrorCatalog(entries).resolve({ kind: 'manifests', name: 'library/alpine', reference: `sha256:${idx.Sha256}`, ns: 'docker.io' });
  assert.equal(r.kind === 'found' && r.key, 'https://registry-1.docker.io/v2/library/alpine/manifests/3.20');
});

test('without ns= a repository held by one registry is found, by two is ambiguous unless --default-registry', () => {
  const cat = new MirrorCatalog(entries);
  assert.equal(cat.resolve({ kind: 'blobs', name: 'solo', reference: `sha256:${sha256Hex('blob')}` }).kind, 'found');
  const amb = cat.resolve({ kind: 'manifests', name: 'team/app', reference: 'v1' });
  assert.deepEqual(amb, { kind: 'ambiguous', origins: ['ghcr.io', 'quay.io'] });
  const r = new MirrorCatalog(entries, 'quay.io').resolve({ kind: 'manifests', name: 'team/app', reference: 'v1' });
  assert.equal(r.kind === 'found' && r.entry.Sha256, sha256Hex('app-quay') as Digest);
});

test('an unrecorded tag is unknown and names the URLs looked up', () => {
  const r = new MirrorCatalog(entries).resolve({ kind: 'manifests', name: 'team/app', reference: 'v2', ns: 'ghcr.io' });
  assert.deepEqual(r, { kind: 'unknown', tried: ['https://ghcr.io/v2/team/app/manifests/v2', 'http://ghcr.io/v2/team/app/manifests/v2'] });
});
