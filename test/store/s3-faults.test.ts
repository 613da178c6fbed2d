/**
 * The S3 store when the server misbehaves: the fault proxy (test/helpers/registry-server.ts)
 * in front of s3rver cuts uploads mid-part or answers 5xx. Failures name the store and bucket,
 * no object appears under a digest key, the multipart upload is aborted and the temp key gone.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startFaultProxy } from '../helpers/registry-server.js';
import { startS3Server, s3Env, type S3Server } from '../helpers/s3-server.js';
import { openS3Store, type S3Store } from '../../src/store/s3/index.js';
import { sha256Hex, type Digest } from '../../src/util/digest.js';
import { HtvendError } from '../../src/util/errors.js';
import { bigBody } from './registry-cli-helpers.js';
import { putBytes } from '../helpers/store.js';

/** Object files s3rver holds for `bucket` (multipart parts live elsewhere). */
async function objects(server: S3Server, bucket: string): Promise<string[]> {
  const names = await readdir(join(server.dir, bucket), { recursive: true }).catch((): string[] => []);
  return names.filter((n) => n.endsWith('._S3rver_object'));
}

async function setup(t: TestContext) {
  const s3 = await startS3Server(t, ['faulty']);
  const proxy = await startFaultProxy(t, s3.endpoint);
  const store = await openS3Store({ bucket: 'faulty', prefix: 'b/' }, { env: { ...s3Env(s3), AWS_ENDPOINT_URL: `http://${proxy.host}` } });
  t.after(() => store.close());
  const commands: string[] = [];
  store.client.middlewareStack.add(
    (next, context) => async (args) => {
      commands.push(String(context.commandName));
      return next(args);
    },
    { step: 'initialize' },
  );
  return { s3, proxy, store, commands };
}

test('a connection cut during every part upload fails the put, aborts the multipart upload and leaves no object', async (t) => {
  const { s3, proxy, store, commands } = await setup(t);
  const data = bigBody(18 * 1024 * 1024);
  proxy.add({ method: 'PUT', path: /partNumber=/, dropAfterBytes: 1024 * 1024 });
  await assert.rejects(putBytes(store, data, { expected: sha256Hex(data) }), (e: HtvendError) => {
    assert.equal(e.code, 'STORE', String(e) + (e as Error).stack);
    assert.match(e.message, /s3 store s3:\/\/faulty\/b\//);
    return true;
  });
  assert.ok(commands.includes('AbortMultipartUploadCommand'), commands.join());
  assert.ok(!commands.includes('CopyObjectCommand'));
  assert.deepEqual(await objects(s3, 'faulty'), []);
});

test('persistent 500s on a small put are a STORE error naming the bucket and blob; one 503 is retried', async (t) => {
  const { s3, proxy, store } = await setup(t);
  const data = Buffer.from('small blob');
  proxy.add({ method: 'PUT', path: /\/faulty\/b\//, status: 500 });
  await assert.rejects(putBytes(store, data), (e: HtvendError) => e.code === 'STORE' && e.message.includes('s3://faulty/b/') && e.message.includes(`put blob ${sha256Hex(data)}`));
  assert.deepEqual(await objects(s3, 'faulty'), []);
  proxy.add({ method: 'HEAD', path: /./, status: 503, times: 1 });
  assert.equal(await store.stat(sha256Hex(data)), undefined, 'the SDK retried the 503');
});
