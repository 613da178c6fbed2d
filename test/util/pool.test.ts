import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { PassThrough } from 'node:stream';
import { mapPool, withRetry, isTransient } from '../../src/util/pool.js';
import { createProgress } from '../../src/util/progress.js';
import { HtvendError } from '../../src/util/errors.js';

test('mapPool never runs more than `jobs` calls at once and keeps result order', async () => {
  let running = 0;
  let peak = 0;
  const out = await mapPool([5, 1, 4, 2, 3, 0], 2, async (n) => {
    peak = Math.max(peak, ++running);
    await sleep(n * 3);
    running--;
    return n * 10;
  });
  assert.deepEqual(out, [50, 10, 40, 20, 30, 0]);
  assert.equal(peak, 2);
});

test('mapPool stops taking new items after a failure, aborts the others and rethrows', async () => {
  const started: number[] = [];
  let sawAbort = false;
  await assert.rejects(
    mapPool([0, 1, 2, 3, 4, 5], 2, async (n, _i, signal) => {
      started.push(n);
      if (n === 1) throw new Error('boom');
      await sleep(50, undefined, { signal }).catch(() => (sawAbort = true));
    }),
    /boom/,
  );
  assert.deepEqual(started, [0, 1]);
  assert.equal(sawAbort, true);
  await assert.rejects(mapPool([1], 0, async () => 1), (e: unknown) => e instanceof HtvendError && e.code === 'USAGE');
});

test('withRetry retries transient errors with growing delays and gives up on permanent ones', async () => {
  const delays: number[] = [];
  let calls = 0;
  const v = await withRetry(
    async () => {
      if (++calls < 3) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
      return 'ok';
    },
    { baseDelayMs: 4, onRetry: (_e, _n, ms) => delays.push(ms) },
  );
  assert.equal(v, 'ok');
  assert.equal(calls, 3);
  assert.ok(delays[0]! >= 2 && delays[0]! <= 6 && delays[1]! >= 4 && delays[1]! <= 12, `delays ${delays}`);

  let permanent = 0;
  await assert.rejects(withRetry(async () => {
    permanent++;
    throw new HtvendError('DIGEST_MISMATCH', 'bad bytes');
  }, { baseDelayMs: 1 }), /bad bytes/);
  assert.equal(permanent, 1);

  let always = 0;
  await assert.rejects(withRetry(async () => {
    always++;
    throw new HtvendError('STORE', 'HTTP 503');
  }, { attempts: 3, baseDelayMs: 1 }), /503/);
  assert.equal(always, 3);
});

test('isTransient: network errno anywhere in the cause chain yes; abort, NOT_FOUND and local IO no', () => {
  assert.equal(isTransient(new HtvendError('IO', 'x', { cause: Object.assign(new Error('t'), { code: 'ETIMEDOUT' }) })), true);
  assert.equal(isTransient(new HtvendError('UPSTREAM', 'x')), true);
  assert.equal(isTransient(new HtvendError('NOT_FOUND', 'x')), false);
  assert.equal(isTransient(new HtvendError('IO', 'disk full')), false);
  assert.equal(isTransient(Object.assign(new Error('a'), { name: 'AbortError' })), false);
});

test('the progress bar draws only on a terminal', async () => {
  const capture = () => {
    const s = new PassThrough() as unknown as NodeJS.WriteStream & PassThrough;
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString()));
    return { s, out: () => out };
  };
  const plain = capture();
  const p1 = createProgress({ label: 'verify', total: 3, stream: plain.s, env: {} });
  p1.itemDone();
  p1.stop();
  assert.equal(plain.out(), '');

  const tty = capture();
  Object.assign(tty.s, { isTTY: true, columns: 120, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
  const p2 = createProgress({ label: 'verify', total: 3, stream: tty.s, env: {} });
  p2.addBytes(3 * 1024 * 1024);
  p2.itemDone();
  p2.stop();
  assert.match(tty.out(), /verify/);
  assert.match(tty.out(), /1\/3 blobs/);
});
