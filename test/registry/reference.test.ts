import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseImageReference, formatImageReference, manifestReference } from '../../src/registry/reference.js';
import { parseChallenges } from '../../src/registry/auth.js';
import { selectPlatform, parsePlatform, hostPlatform } from '../../src/registry/platform.js';
import { HtvendError } from '../../src/util/errors.js';
import type { ImageIndex } from '../../src/registry/types.js';

const D = 'a'.repeat(64);

test('normalises Docker Hub short names to registry-1.docker.io/library and :latest', () => {
  assert.deepEqual(parseImageReference('alpine'), { registry: 'registry-1.docker.io', repository: 'library/alpine', tag: 'latest', digest: undefined });
  assert.deepEqual(parseImageReference('docker.io/grafana/grafana:10.1'), { registry: 'registry-1.docker.io', repository: 'grafana/grafana', tag: '10.1', digest: undefined });
  assert.equal(parseImageReference('index.docker.io/alpine:3').repository, 'library/alpine');
  assert.equal(parseImageReference('user/img').registry, 'registry-1.docker.io');
});

test('treats a first component with a dot, a port or localhost as the registry host', () => {
  assert.deepEqual(parseImageReference(`127.0.0.1:5000/x/y@sha256:${D}`), { registry: '127.0.0.1:5000', repository: 'x/y', tag: undefined, digest: D });
  assert.deepEqual(parseImageReference('localhost/img:dev'), { registry: 'localhost', repository: 'img', tag: 'dev', digest: undefined });
  const both = parseImageReference(`ghcr.io/o/r:v1@sha256:${D}`);
  assert.equal(both.tag, 'v1');
  assert.equal(manifestReference(both), `sha256:${D}`);
  assert.equal(formatImageReference(both), `ghcr.io/o/r:v1@sha256:${D}`);
  assert.equal(manifestReference(parseImageReference('quay.io/a/b')), 'latest');
});

test('rejects malformed references with an INPUT error naming them', () => {
  for (const bad of ['', 'Upper/case', 'x@sha256:short', 'a/b:bad tag', 'a//b']) {
    assert.throws(() => parseImageReference(bad), (e: HtvendError) => e.code === 'INPUT' && e.message.includes(JSON.stringify(bad)));
  }
});

test('parses WWW-Authenticate challenges with quoted and bare parameters', () => {
  assert.deepEqual(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } },
  ]);
  assert.deepEqual(parseChallenges('Basic realm="Registry Realm", Bearer realm=x'), [
    { scheme: 'basic', params: { realm: 'Registry Realm' } },
    { scheme: 'bearer', params: { realm: 'x' } },
  ]);
  assert.deepEqual(parseChallenges('Basic realm="a \\"q\\""'), [{ scheme: 'basic', params: { realm: 'a "q"' } }]);
});

test('selects the platform entry of an index, honouring arm variants', () => {
  const index: ImageIndex = {
    schemaVersion: 2,
    manifests: [
      { mediaType: 'm', digest: 'sha256:1', size: 1, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: 'm', digest: 'sha256:2', size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
      { mediaType: 'm', digest: 'sha256:3', size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
      { mediaType: 'm', digest: 'sha256:4', size: 1, platform: { os: 'linux', architecture: 'arm64' } },
      { mediaType: 'm', digest: 'sha256:5', size: 1, platform: { os: 'unknown', architecture: 'unknown' } },
    ],
  };
  assert.equal(selectPlatform(index, parsePlatform('linux/amd64'), 'img').digest, 'sha256:1');
  assert.equal(selectPlatform(index, parsePlatform('linux/arm/v7'), 'img').digest, 'sha256:3');
  assert.equal(selectPlatform(index, parsePlatform('linux/arm64/v8'), 'img').digest, 'sha256:4');
  assert.throws(
    () => selectPlatform(index, parsePlatform('linux/s390x'), 'img'),
    (e: HtvendError) => e.code === 'NOT_FOUND' && e.message.includes('linux/s390x') && e.message.includes('linux/arm/v7') && !e.message.includes('unknown'),
  );
  assert.deepEqual(hostPlatform('x64'), { os: 'linux', architecture: 'amd64' });
  assert.throws(() => parsePlatform('amd64'), (e: HtvendError) => e.code === 'USAGE');
});
