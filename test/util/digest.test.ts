import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EMPTY_DIGEST, HashingStream, OffThreadHash, VerifyingStream, hashWorkerCount, parseDigest, sha256Hex } from '../../src/util/digest.js';
import { availableParallelism } from 'node:os';
import { redactUrl, redactText } from '../../src/util/redact.js';

test('parseDigest accepts bare and sha256: forms and rejects anything else', () => {
  const hex = sha256Hex('x');
  assert.equal(parseDigest(hex), hex);
  assert.equal(parseDigest(`sha256:${hex}`), hex);
  assert.throws(() => parseDigest(hex.toUpperCase(), 'assets.json "u"'), /assets.json "u": invalid sha256/);
  assert.throws(() => parseDigest('abc'), /invalid sha256/);
  assert.equal(EMPTY_DIGEST, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('HashingStream hashes and counts what passes through', async () => {
  const h = new HashingStream();
  const chunks: Buffer[] = [];
  await pipeline(Readable.from([Buffer.from('ab'), Buffer.from('c')]), h, new Writable({ write(c, _e, cb) { chunks.push(c); cb(); } }));
  assert.equal(h.digest(), sha256Hex('abc'));
  assert.equal(h.size, 3);
  assert.equal(Buffer.concat(chunks).toString(), 'abc');
});

test('VerifyingStream fails before emitting the last chunk on a mismatch', async () => {
  const seen: string[] = [];
  const sink = new Writable({ write(c, _e, cb) { seen.push(String(c)); cb(); } });
  await assert.rejects(
    pipeline(Readable.from([Buffer.from('a'), Buffer.from('b'), Buffer.from('X')]), new VerifyingStream(sha256Hex('abc'), 'blob t'), sink),
    /blob t: content does not match sha256/,
  );
  assert.equal(seen.join(''), 'ab'); // the final chunk was never delivered
  const ok: string[] = [];
  await pipeline(Readable.from([Buffer.from('ab'), Buffer.from('c')]), new VerifyingStream(sha256Hex('abc'), 'b', 3), new Writable({ write(c, _e, cb) { ok.push(String(c)); cb(); } }));
  assert.equal(ok.join(''), 'abc');
});

test('redactUrl hides userinfo passwords in the Go form and keeps the encoding', () => {
  assert.equal(redactUrl('https://bob:s3cr%2Ft@h.example/a%2Fb?x=1'), 'https://bob:xxxxx@h.example/a%2Fb?x=1');
  assert.equal(redactUrl('https://h.example/a%2Fb'), 'https://h.example/a%2Fb');
  assert.equal(redactText('fetch https://u:p@h/x failed'), 'fetch https://u:xxxxx@h/x failed');
});

test('VerifyingStream hashing on the worker thread passes a good blob and cuts a bad one before its last chunk', async () => {
  const chunk = Buffer.alloc(1024 * 1024, 7);
  const chunks = Array.from({ length: 20 }, () => chunk); // more than the worker may have in flight
  const good = sha256Hex(Buffer.concat(chunks));
  let n = 0;
  await pipeline(Readable.from(chunks), new VerifyingStream(good, 'big', 20 * chunk.length, { offThread: true }), new Writable({ write(c, _e, cb) { n += c.length; cb(); } }));
  assert.equal(n, 20 * chunk.length);

  let seen = 0;
  await assert.rejects(
    pipeline(Readable.from([...chunks.slice(0, 19), Buffer.alloc(chunk.length, 8)]), new VerifyingStream(good, 'blob w', undefined, { offThread: true }), new Writable({ write(c, _e, cb) { seen += c.length; cb(); } })),
    /blob w: content does not match sha256/,
  );
  assert.equal(seen, 19 * chunk.length, 'the final chunk was never delivered');
});

test('concurrent off-thread hashes spread over up to one worker per core and each gets its own digest', async () => {
  const MiB = 1024 * 1024;
  const inputs = Array.from({ length: 6 }, (_, i) => Buffer.alloc(3 * MiB + i * 1000, i + 1));
  const before = hashWorkerCount();
  // Interleaved updates from six jobs at once, in 64 KiB pieces.
  const jobs = inputs.map(() => new OffThreadHash());
  for (let off = 0; off < 4 * MiB; off += 64 * 1024) {
    await Promise.all(jobs.map((h, i) => (off < inputs[i]!.length ? h.update(inputs[i]!.subarray(off, off + 64 * 1024)) : undefined)));
  }
  const during = hashWorkerCount();
  assert.deepEqual(await Promise.all(jobs.map((h) => h.digest())), inputs.map((b) => sha256Hex(b)));
  assert.equal(during, Math.max(before, Math.min(availableParallelism(), 4)), 'one worker per core (at most 4) for concurrent jobs');
  // A single job afterwards finds an idle worker: no new one.
  const one = new OffThreadHash();
  await one.update(inputs[0]!);
  assert.equal(await one.digest(), sha256Hex(inputs[0]!));
  assert.equal(hashWorkerCount(), during);
});
