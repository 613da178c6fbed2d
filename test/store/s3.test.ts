import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { runConformance, patternStream } from './conformance.js';
import { startS3Server, s3Env, type S3Server } from '../helpers/s3-server.js';
import { openS3Store, type S3Store } from '../../src/store/s3/index.js';
import type { BlobStore } from '../../src/store/store.js';
import { sha256Hex, type Digest } from '../../src/util/digest.js';
import { HtvendError } from '../../src/util/errors.js';
import { putBytes } from '../helpers/store.js';

const servers = new WeakMap<BlobStore, S3Server>();

/** Where s3rver's filesystem store keeps an object's bytes. */
function objectPath(server: S3Server, bucket: string, key: string): string {
  const parts = key.split('/');
  const name = parts.pop()!;
  return join(server.dir, bucket, ...parts, `${name}._S3rver_object`);
}

/** Every key s3rver holds in `bucket` (walking its directory). */
async function keys(server: S3Server, bucket: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, prefix: string) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(dir, e.name), `${prefix}${e.name}/`);
      else if (e.name.endsWith('._S3rver_object')) out.push(prefix + e.name.slice(0, -'._S3rver_object'.length));
    }
  };
  await walk(join(server.dir, bucket), '').catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e; // s3rver creates the bucket directory on first write
  });
  return out.sort();
}

runConformance(
  's3',
  async (t) => {
    const server = await startS3Server(t, ['htvend-test']);
    const store = await openS3Store({ bucket: 'htvend-test', prefix: 'blobs/' }, { env: s3Env(server) });
    server.beforeStop(async () => {
      // After every test: only digest keys, no temporary upload left behind.
      for (const k of await keys(server, 'htvend-test')) assert.match(k, /^blobs\/[0-9a-f]{64}$/, `left-over key ${k}`);
      await store.close();
    });
    servers.set(store, server);
    return store;
  },
  { corrupt: async (store, digest, bytes) => writeFile(objectPath(servers.get(store)!, 'htvend-test', (store as S3Store).keyOf(digest)), bytes) },
);

test('keys are <prefix><sha256 hex>, the Go tool layout', async (t) => {
  const server = await startS3Server(t, ['b1']);
  const store = await openS3Store({ bucket: 'b1', prefix: 'team/cache/' }, { env: s3Env(server) });
  t.after(() => store.close());
  const small = await putBytes(store, Buffer.from('go compatible'));
  const big = await putBytes(store, patternStream(9 * 1024 * 1024 + 3, 2));
  assert.deepEqual(await keys(server, 'b1'), [`team/cache/${small}`, `team/cache/${big}`].sort());
  const noPrefix = await openS3Store({ bucket: 'b1' }, { env: s3Env(server) });
  t.after(() => noPrefix.close());
  assert.deepEqual(await noPrefix.stat(sha256Hex('go compatible')), undefined);
  const d = await putBytes(noPrefix, Buffer.from('at the root'));
  assert.ok((await keys(server, 'b1')).includes(d));
});

/** Records the SDK commands a store's client sends (s3rver cannot list multipart uploads). */
function recordCommands(store: S3Store): string[] {
  const names: string[] = [];
  store.client.middlewareStack.add(
    (next, context) => async (args) => {
      names.push(String(context.commandName));
      return next(args);
    },
    { step: 'initialize' },
  );
  return names;
}

test('a multipart upload whose digest does not match leaves no object and its temp key and upload are removed', async (t) => {
  const server = await startS3Server(t, ['b2']);
  const store = await openS3Store({ bucket: 'b2', prefix: 'p/' }, { env: s3Env(server) });
  t.after(() => store.close());
  const sent = recordCommands(store);
  const claimed = sha256Hex('something else');
  await assert.rejects(putBytes(store, patternStream(20 * 1024 * 1024, 4), { expected: claimed }), (e: HtvendError) => e.code === 'DIGEST_MISMATCH');
  assert.deepEqual(await keys(server, 'b2'), []);
  assert.ok(sent.includes('CompleteMultipartUploadCommand') && sent.includes('DeleteObjectCommand'), sent.join());
  assert.ok(!sent.includes('CopyObjectCommand'), 'nothing is copied to a digest key');
});

test('aborting a multipart upload midway aborts it on the server and leaves no key', async (t) => {
  const server = await startS3Server(t, ['b4']);
  const store = await openS3Store({ bucket: 'b4' }, { env: s3Env(server) });
  t.after(() => store.close());
  const sent = recordCommands(store);
  const w = await store.put();
  const src = patternStream(40 * 1024 * 1024, 9);
  src.pipe(w.stream);
  while (!sent.includes('UploadPartCommand')) await new Promise((r) => setTimeout(r, 20));
  src.unpipe(w.stream);
  src.destroy();
  await w.abort(new Error('interrupted'));
  assert.ok(sent.includes('AbortMultipartUploadCommand'), sent.join());
  assert.deepEqual(await keys(server, 'b4'), []);
});

/** The sha256 of a pattern stream, computed by reading it. */
async function patternDigest(size: number, seed: number): Promise<Digest> {
  const h = createHash('sha256');
  for await (const c of patternStream(size, seed)) h.update(c as Buffer);
  return h.digest('hex') as Digest;
}

async function putAnnounced(store: BlobStore, src: Readable, expected: Digest, size: number): Promise<Digest> {
  const w = await store.put({ expected, size });
  try {
    await pipeline(src, w.stream);
  } catch (e) {
    await w.abort(e);
    throw e;
  }
  return w.commit();
}

test('a big blob with announced digest and size goes up as one streamed PutObject (no multipart), then is copied into place', async (t) => {
  const server = await startS3Server(t, ['b5']);
  const store = await openS3Store({ bucket: 'b5', prefix: 'p/' }, { env: s3Env(server) });
  t.after(() => store.close());
  const sent = recordCommands(store);
  const size = 20 * 1024 * 1024 + 5;
  const d = await patternDigest(size, 11);
  assert.equal(await putAnnounced(store, patternStream(size, 11), d, size), d);
  assert.equal(sent[0], 'PutObjectCommand');
  assert.ok(sent.includes('CopyObjectCommand') && sent.includes('DeleteObjectCommand'), sent.join());
  assert.ok(!sent.includes('CreateMultipartUploadCommand') && !sent.includes('UploadPartCommand'), sent.join());
  assert.deepEqual(await keys(server, 'b5'), [`p/${d}`]);
  const h = createHash('sha256');
  let n = 0;
  for await (const c of await store.get(d)) (h.update(c as Buffer), (n += (c as Buffer).length));
  assert.equal(h.digest('hex'), d);
  assert.equal(n, size);
});

test('a big announced put with the wrong bytes or the wrong size is cut short and leaves no object', async (t) => {
  const server = await startS3Server(t, ['b6']);
  const store = await openS3Store({ bucket: 'b6' }, { env: s3Env(server) });
  t.after(() => store.close());
  const size = 20 * 1024 * 1024;
  const claimed = await patternDigest(size, 12);
  await assert.rejects(putAnnounced(store, patternStream(size, 13), claimed, size), (e: HtvendError) => e.code === 'DIGEST_MISMATCH');
  await assert.rejects(putAnnounced(store, patternStream(size - 1, 12), claimed, size), (e: HtvendError) => e.code === 'DIGEST_MISMATCH');
  await assert.rejects(putAnnounced(store, patternStream(size + 1, 12), claimed, size), (e: HtvendError) => e.code === 'DIGEST_MISMATCH');
  await new Promise((r) => setTimeout(r, 200)); // let s3rver notice the cut requests
  assert.deepEqual(await keys(server, 'b6'), []);
  assert.equal(await store.stat(claimed), undefined);
});

test('a missing bucket is a clear error naming the bucket, on stat, get and put', async (t) => {
  const server = await startS3Server(t, ['exists']);
  const store = await openS3Store({ bucket: 'no-such-bucket', prefix: 'x/' }, { env: s3Env(server) });
  t.after(() => store.close());
  const named = (e: HtvendError) => e.code === 'STORE' && /bucket "no-such-bucket" does not exist/.test(e.message);
  await assert.rejects(store.stat(sha256Hex('a')), named);
  await assert.rejects(store.get(sha256Hex('a')), named);
  await assert.rejects(putBytes(store, Buffer.from('a')), named);
});

test('an unknown access key is a clear access-denied error that does not show the secret', async (t) => {
  const server = await startS3Server(t, ['b3']);
  const env = { ...s3Env(server), AWS_ACCESS_KEY_ID: 'AKIAWRONG', AWS_SECRET_ACCESS_KEY: 'very-secret-value' };
  const store = await openS3Store({ bucket: 'b3' }, { env });
  t.after(() => store.close());
  await assert.rejects(putBytes(store, Buffer.from('a')), (e: HtvendError) => {
    assert.match(e.message, /access to bucket "b3" denied \(InvalidAccessKeyId\)/);
    assert.doesNotMatch(e.message + e.hint, /very-secret-value/);
    return true;
  });
});

test('an HTTPS endpoint is trusted through SSL_CERT_FILE of the given environment, and refused without it', async (t) => {
  const { makeCert } = await import('../helpers/registry-server.js');
  const { tempDir } = await import('../helpers/tmp.js');
  const certs = await makeCert(await tempDir(t), 's3');
  const server = await startS3Server(t, ['tls-bucket'], certs);
  assert.match(server.endpoint, /^https:/);
  const trusted = await openS3Store({ bucket: 'tls-bucket' }, { env: { ...s3Env(server), SSL_CERT_FILE: certs.cert } });
  t.after(() => trusted.close());
  const d = await putBytes(trusted, Buffer.from('over tls'));
  assert.deepEqual(await trusted.stat(d), { size: 8 });
  const untrusted = await openS3Store({ bucket: 'tls-bucket' }, { env: s3Env(server) });
  t.after(() => untrusted.close());
  await assert.rejects(untrusted.stat(d), (e: HtvendError) => e.code === 'STORE' && e.message.includes('s3://tls-bucket/') && /certificate/i.test(e.message));
});

test('an unreachable endpoint names the endpoint', async (t) => {
  const store = await openS3Store({ bucket: 'b' }, { env: { AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' } });
  t.after(() => store.close());
  await assert.rejects(store.stat(sha256Hex('a')), (e: HtvendError) => e.code === 'STORE' && e.message.includes('cannot reach http://127.0.0.1:9'));
});
