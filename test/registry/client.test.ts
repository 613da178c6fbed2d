import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { openUploads, startRegistry, type RegistryServer, type RegistryServerOptions } from '../helpers/registry-server.js';
import { RegistryClient, MEDIA_TYPES, EMPTY_JSON, selectPlatform, type ImageIndex, type ImageManifest } from '../../src/registry/index.js';
import { sha256Hex, type Digest } from '../../src/util/digest.js';
import { HtvendError } from '../../src/util/errors.js';

async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function clientFor(reg: RegistryServer, repo: string, extra: Parameters<typeof RegistryClient.open>[2] = {}) {
  return RegistryClient.open(reg.host, repo, {
    env: {},
    scheme: reg.url.startsWith('https') ? 'https' : 'http',
    extraRoots: reg.caPem ? [reg.caPem] : [],
    credentials: { username: 'alice', password: reg.users.alice! },
    chunkSize: 1024 * 1024,
    ...extra,
  });
}

const modes: [string, RegistryServerOptions][] = [
  ['plain HTTP, anonymous', {}],
  ['TLS, anonymous', { tls: true }],
  ['htpasswd basic auth', { auth: 'basic' }],
  ['TLS + token auth', { tls: true, auth: 'token' }],
];

for (const [name, mode] of modes) {
  test(`registry client against docker-registry (${name})`, async (t) => {
    const reg = await startRegistry(t, mode);
    const client = await clientFor(reg, 'team/app');
    t.after(() => client.close());
    const big = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
    const bigDigest = sha256Hex(big);

    await t.test('uploads a small blob monolithically and reads it back verified', async () => {
      const data = Buffer.from('hello registry');
      const r = await client.putBlob(data);
      assert.equal(r.digest, sha256Hex(data));
      assert.deepEqual(await client.statBlob(r.digest), { size: data.length });
      assert.deepEqual(await collect(await client.getBlob(r.digest)), data);
    });

    await t.test('uploads a multi-chunk blob from a stream in chunked PATCHes', async () => {
      const upload = client.createUpload();
      await pipeline(Readable.from((function* () {
        for (let i = 0; i < big.length; i += 64 * 1024) yield big.subarray(i, i + 64 * 1024);
      })()), upload.stream);
      const r = await upload.commit();
      assert.deepEqual(r, { digest: bigDigest, size: big.length });
      assert.equal(sha256Hex(await collect(await client.getBlob(bigDigest, { size: big.length }))), bigDigest);
      assert.deepEqual(await openUploads(reg, 'team/app'), []);
    });

    await t.test('streams a blob of announced size bigger than a chunk in one PATCH, and refuses wrong bytes or length leaving no session', async () => {
      const other = Buffer.from(big);
      other[other.length - 1] = (other[other.length - 1] ?? 0) ^ 1;
      const send = async (data: Buffer, size: number) => {
        const upload = client.createUpload({ expected: sha256Hex(other), size });
        const patches: number[] = [];
        const realSend = client.send.bind(client);
        client.send = async (method, url, o) => {
          if (method === 'PATCH') patches.push(1);
          return realSend(method, url, o);
        };
        try {
          await pipeline(Readable.from((function* () {
            for (let i = 0; i < data.length; i += 64 * 1024) yield data.subarray(i, i + 64 * 1024);
          })()), upload.stream);
          return { result: await upload.commit(sha256Hex(other)), patches };
        } catch (e) {
          await upload.abort(e);
          throw e;
        } finally {
          client.send = realSend;
        }
      };
      await assert.rejects(send(big, big.length), (e: HtvendError) => e.code === 'DIGEST_MISMATCH');
      await assert.rejects(send(other.subarray(0, other.length - 1), other.length), (e: HtvendError) => e.code === 'DIGEST_MISMATCH');
      await assert.rejects(send(other, other.length - 1), (e: HtvendError) => e.code === 'DIGEST_MISMATCH');
      assert.equal(await client.statBlob(sha256Hex(other)), undefined);
      const { result, patches } = await send(other, other.length);
      assert.deepEqual(result, { digest: sha256Hex(other), size: other.length });
      assert.deepEqual(patches, [1], 'one PATCH carrying the whole blob');
      assert.equal(sha256Hex(await collect(await client.getBlob(sha256Hex(other)))), sha256Hex(other));
      for (let i = 0; i < 50 && (await openUploads(reg, 'team/app')).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(await openUploads(reg, 'team/app'), []);
    });

    await t.test('reads a byte range of a blob', async () => {
      const slice = await collect(await client.getBlobRange(bigDigest, 100, 4195));
      assert.deepEqual(slice, big.subarray(100, 4196));
    });

    await t.test('reports a missing blob as undefined on stat and NOT_FOUND on get', async () => {
      const missing = sha256Hex('never uploaded');
      assert.equal(await client.statBlob(missing), undefined);
      await assert.rejects(client.getBlob(missing), (e: HtvendError) => e.code === 'NOT_FOUND' && e.message.includes(`sha256:${missing}`) && e.message.includes(reg.host));
    });

    await t.test('mounts a blob from another repository', async () => {
      const other = await clientFor(reg, 'team/other');
      t.after(() => other.close());
      assert.equal(await other.statBlob(bigDigest), undefined);
      assert.equal(await other.mountBlob(bigDigest, 'team/app'), true);
      assert.deepEqual(await other.statBlob(bigDigest), { size: big.length });
      // A blob the source does not have is not mounted, and the fallback session is closed.
      assert.equal(await other.mountBlob(sha256Hex('nope'), 'team/app'), false);
      assert.deepEqual(await openUploads(reg, 'team/other'), []);
    });

    await t.test('refuses a commit whose content does not match the expected digest, leaving nothing', async () => {
      const upload = client.createUpload();
      upload.stream.end(Buffer.from('actual bytes'));
      const expected = sha256Hex('other bytes');
      await assert.rejects(upload.commit(expected), (e: HtvendError) => e.code === 'DIGEST_MISMATCH');
      assert.equal(await client.statBlob(expected), undefined);
      assert.deepEqual(await openUploads(reg, 'team/app'), []);
    });

    await t.test('abort deletes the upload session of a partly sent blob', async () => {
      const upload = client.createUpload();
      upload.stream.write(big.subarray(0, 2 * 1024 * 1024 + 1));
      for (let i = 0; i < 100 && (await openUploads(reg, 'team/app')).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal((await openUploads(reg, 'team/app')).length, 1, 'a PATCH has opened a session');
      await upload.abort(new Error('stop'));
      assert.deepEqual(await openUploads(reg, 'team/app'), []);
    });

    await t.test('pushes and fetches an image manifest and an index, selecting a platform', async () => {
      const config = await client.putBlob(Buffer.from(JSON.stringify({ architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })));
      const empty = await client.putBlob(Buffer.from(EMPTY_JSON.bytes));
      assert.equal(`sha256:${empty.digest}`, EMPTY_JSON.digest);
      const manifest: ImageManifest = {
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        config: { mediaType: MEDIA_TYPES.ociConfig, digest: `sha256:${config.digest}`, size: config.size },
        layers: [{ mediaType: MEDIA_TYPES.ociLayerGzip, digest: `sha256:${bigDigest}`, size: big.length }],
      };
      const body = JSON.stringify(manifest);
      const mDigest = await client.putManifest('v1-arm64', body, MEDIA_TYPES.ociManifest);
      assert.equal(mDigest, `sha256:${sha256Hex(body)}`);
      const index: ImageIndex = {
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociIndex,
        manifests: [{ mediaType: MEDIA_TYPES.ociManifest, digest: mDigest, size: Buffer.byteLength(body), platform: { os: 'linux', architecture: 'arm64' } }],
      };
      await client.putManifest('v1', JSON.stringify(index), MEDIA_TYPES.ociIndex);

      const gotIndex = await client.getManifest('v1');
      assert.equal(gotIndex.mediaType, MEDIA_TYPES.ociIndex);
      const chosen = selectPlatform(JSON.parse(gotIndex.body.toString()) as ImageIndex, { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'team/app:v1');
      const got = await client.getManifest(chosen.digest);
      assert.equal(got.digest, mDigest);
      assert.equal(got.mediaType, MEDIA_TYPES.ociManifest);
      assert.equal(got.body.toString(), body);
      const head = await client.headManifest('v1-arm64');
      assert.equal(head?.digest, mDigest);
      assert.equal(await client.headManifest('no-such-tag'), undefined);
      await assert.rejects(client.getManifest('no-such-tag'), (e: HtvendError) => e.code === 'NOT_FOUND' && e.message.includes('manifest no-such-tag'));
    });

    await t.test('pushes a Docker schema 2 manifest and reads its media type back', async () => {
      const config = await client.putBlob(Buffer.from('{"os":"linux","architecture":"amd64"}'));
      const m = JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.dockerManifest,
        config: { mediaType: MEDIA_TYPES.dockerConfig, digest: `sha256:${config.digest}`, size: config.size },
        layers: [{ mediaType: MEDIA_TYPES.dockerLayerGzip, digest: `sha256:${bigDigest}`, size: big.length }],
      });
      await client.putManifest('docker', m, MEDIA_TYPES.dockerManifest);
      const got = await client.getManifest('docker', { accept: [MEDIA_TYPES.dockerManifest] });
      assert.equal(got.mediaType, MEDIA_TYPES.dockerManifest);
    });
  });
}

test('wrong credentials give an error naming the registry, without the password', async (t) => {
  for (const auth of ['basic', 'token'] as const) {
    const reg = await startRegistry(t, { auth });
    const client = await clientFor(reg, 'team/app', { credentials: { username: 'alice', password: 'WRONG-pw-123' } });
    t.after(() => client.close());
    await assert.rejects(client.statBlob(sha256Hex('x')), (e: HtvendError) => {
      assert.ok(e instanceof HtvendError, String(e));
      assert.match(e.message, new RegExp(reg.host.replace(/\./g, '\\.')));
      assert.doesNotMatch(e.message + (e.hint ?? ''), /WRONG-pw-123/);
      assert.match(e.message, auth === 'basic' ? /credentials rejected/ : /refused the credentials of user alice/);
      return true;
    });
  }
});

test('anonymous pulls work on a token registry but anonymous pushes are refused clearly', async (t) => {
  const reg = await startRegistry(t, { auth: 'token' });
  const authed = await clientFor(reg, 'pub/img');
  t.after(() => authed.close());
  const r = await authed.putBlob(Buffer.from('public data'));
  const anon = await clientFor(reg, 'pub/img', { credentials: undefined });
  t.after(() => anon.close());
  assert.deepEqual(await collect(await anon.getBlob(r.digest)), Buffer.from('public data'));
  await assert.rejects(anon.putBlob(Buffer.from('not allowed')), (e: HtvendError) => /HTTP 401/.test(e.message) && e.message.includes('pub/img'));
  assert.deepEqual(await openUploads(reg, 'pub/img'), []);
  const before = reg.tokenRequests();
  await authed.statBlob(r.digest);
  await authed.statBlob(r.digest);
  assert.equal(reg.tokenRequests(), before, 'tokens are cached per scope');
});

test('credentials come from DOCKER_CONFIG config.json when the URL has none', async (t) => {
  const { tempDir } = await import('../helpers/tmp.js');
  const { writeFile } = await import('node:fs/promises');
  const reg = await startRegistry(t, { auth: 'basic' });
  const dockerConfig = await tempDir(t);
  const auth = Buffer.from(`alice:${reg.users.alice}`).toString('base64');
  await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth } } }));
  const client = await clientFor(reg, 'team/app', { credentials: undefined, env: { DOCKER_CONFIG: dockerConfig } });
  t.after(() => client.close());
  const r = await client.putBlob(Buffer.from('with docker config creds'));
  assert.deepEqual(await client.statBlob(r.digest as Digest), { size: 24 });
});

test('with tlsVerify false, a self-signed registry is trusted and a plain-HTTP one is reached by fallback', async (t) => {
  const tlsReg = await startRegistry(t, { tls: true });
  const insecure = await RegistryClient.open(tlsReg.host, 'x/y', { env: {}, tlsVerify: false });
  t.after(() => insecure.close());
  assert.equal(await insecure.statBlob(sha256Hex('a')), undefined);
  const strict = await RegistryClient.open(tlsReg.host, 'x/y', { env: {} });
  t.after(() => strict.close());
  await assert.rejects(strict.statBlob(sha256Hex('a')), (e: HtvendError) => e.message.includes(`cannot reach ${tlsReg.host}`));
  const plainReg = await startRegistry(t, {});
  const fallback = await RegistryClient.open(plainReg.host, 'x/y', { env: {}, tlsVerify: false });
  t.after(() => fallback.close());
  const r = await fallback.putBlob(Buffer.from('over http'));
  assert.deepEqual(await fallback.statBlob(r.digest), { size: 9 });
});

test('trusts the CA named by SSL_CERT_FILE in the given environment, and --cert-dir *.crt files', async (t) => {
  const { tempDir } = await import('../helpers/tmp.js');
  const { copyFile } = await import('node:fs/promises');
  const reg = await startRegistry(t, { tls: true });
  const viaEnv = await RegistryClient.open(reg.host, 'x/y', { env: { SSL_CERT_FILE: reg.caFile } });
  t.after(() => viaEnv.close());
  assert.equal(await viaEnv.statBlob(sha256Hex('a')), undefined);
  const certDir = await tempDir(t);
  await copyFile(reg.caFile!, join(certDir, 'ca.crt'));
  const viaDir = await RegistryClient.open(reg.host, 'x/y', { env: {}, certDir });
  t.after(() => viaDir.close());
  assert.equal(await viaDir.statBlob(sha256Hex('a')), undefined);
});
