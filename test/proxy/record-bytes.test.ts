/**
 * Recorded bytes are the upstream's bytes, for every store backend the tests can start: the
 * direct upstream path hands the recorder views of one shared read buffer, which it copies into
 * 1 MiB batches that are reused only when the store has released them (`releasesChunks`). A
 * reused buffer refilled too early corrupts what is stored while the client's copy looks fine,
 * so each case compares the client's bytes AND the stored blob with the upstream's.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { startBench, type Bench } from './harness.js';
import { DirStore } from '../../src/store/dir/index.js';
import { openS3Store } from '../../src/store/s3/index.js';
import type { BlobStore } from '../../src/store/store.js';
import { parseDigest } from '../../src/util/digest.js';
import { startS3Server, s3Env } from '../helpers/s3-server.js';
import { readAll } from '../helpers/store.js';
import { tempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
/** Odd sizes around and across the 1 MiB batch size, several MiB in all. */
const SIZES = [5 * MiB + 12_345, MiB, MiB - 1, 2 * MiB + 1, 777];

/** Writes `body` in pieces of odd sizes (so chunked framing and TLS records fall anywhere). */
function sendInPieces(res: ServerResponse, body: Buffer): void {
  let off = 0;
  let i = 0;
  const next = () => {
    while (off < body.length) {
      const n = Math.min(body.length - off, [1, 7_919, 65_537, 300_001][i++ % 4]!);
      const more = res.write(body.subarray(off, off + n));
      off += n;
      if (!more) return void res.once('drain', next);
    }
    res.end();
  };
  next();
}

async function checkBackend(t: TestContext, store: BlobStore): Promise<void> {
  const b: Bench = await startBench(t);
  await b.restart({ store });
  const bodies = new Map<string, Buffer>();
  for (const [i, size] of SIZES.entries()) {
    const body = randomBytes(size);
    bodies.set(`/cl/${i}`, body);
    b.up.route(`/cl/${i}`, (_q, r) => {
      r.setHeader('content-length', body.length);
      sendInPieces(r, body);
    });
    const chunkedBody = randomBytes(size + 3);
    bodies.set(`/chunked/${i}`, chunkedBody);
    b.up.route(`/chunked/${i}`, (_q, r) => sendInPieces(r, chunkedBody)); // no length: chunked
  }
  // All at once over both schemes: the shared read buffer serves every connection.
  const urls = [...bodies.keys()].flatMap((p, i) => [`${i % 2 ? b.up.https : b.up.http}${p}`]);
  const replies = await Promise.all(urls.map((u) => b.get(u)));
  for (const [i, url] of urls.entries()) {
    const want = bodies.get(new URL(url).pathname)!;
    const got = replies[i]!;
    assert.equal(got.status, 200, url);
    assert.ok(got.body.equals(want), `client bytes of ${url} are the upstream's`);
    const entry = await b.entry(url);
    assert.equal(entry.Sha256, createHash('sha256').update(want).digest('hex'), `digest of ${url}`);
    const stored = await readAll(await store.get(parseDigest(entry.Sha256)));
    assert.ok(stored.equals(want), `stored bytes of ${url} are the upstream's`);
  }
}

test('the filesystem store (reused batches) stores exactly the upstream bytes', async (t) => {
  const store = await DirStore.open(await tempDir(t));
  await checkBackend(t, store);
});

test('the S3 store (fresh batches: it keeps part buffers) stores exactly the upstream bytes', async (t) => {
  const server = await startS3Server(t, ['htvend-test']);
  const store = await openS3Store({ bucket: 'htvend-test', prefix: 'blobs/' }, { env: s3Env(server) });
  t.after(() => store.close());
  await checkBackend(t, store);
});

test('the in-memory test store (keeps every chunk) stores exactly the upstream bytes', async (t) => {
  const b = await startBench(t);
  await checkBackend(t, b.store);
});
