import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Http1Error, ResponseParser, type ResponseHead } from '../../src/upstream/direct/http1.js';

interface Parsed {
  head?: ResponseHead;
  body: Buffer;
  ended: boolean;
}

/** Feeds `input` in the given pieces (and EOF if `eof`); body views are copied as they come. */
function parse(pieces: Buffer[], opts: { method?: string; eof?: boolean } = {}): Parsed {
  const out: Parsed = { body: Buffer.alloc(0), ended: false };
  const parts: Buffer[] = [];
  const p = new ResponseParser(
    {
      head: (h) => {
        assert.equal(out.head, undefined, 'one head');
        out.head = h;
      },
      body: (b) => {
        assert.ok(out.head, 'body after head');
        assert.ok(!out.ended, 'no body after the end');
        parts.push(Buffer.from(b));
      },
      end: () => {
        assert.ok(!out.ended, 'one end');
        out.ended = true;
      },
    },
    opts.method ?? 'GET',
  );
  for (const piece of pieces) p.feed(piece);
  if (opts.eof) p.finish();
  out.body = Buffer.concat(parts);
  return out;
}

/** Every way of cutting `input` in two, plus one byte at a time. */
function splits(input: Buffer): Buffer[][] {
  const all: Buffer[][] = [[input]];
  for (let i = 1; i < input.length; i++) all.push([input.subarray(0, i), input.subarray(i)]);
  all.push([...input].map((b) => Buffer.from([b])));
  return all;
}

function chunked(body: Buffer, sizes: number[], ext = ''): Buffer {
  const parts: Buffer[] = [];
  let off = 0;
  for (const n of sizes) {
    parts.push(Buffer.from(`${n.toString(16)}${ext}\r\n`), body.subarray(off, off + n), Buffer.from('\r\n'));
    off += n;
  }
  parts.push(Buffer.from('0\r\nX-Trailer: t\r\n\r\n'));
  return Buffer.concat(parts);
}

test('parses a Content-Length response split at every byte', () => {
  const body = randomBytes(300);
  const input = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 300\r\nSet-Cookie: a\r\nSet-Cookie: b\r\nX-Folded: one\r\n two\r\n\r\n'), body]);
  for (const pieces of splits(input)) {
    const r = parse(pieces);
    assert.equal(r.head?.status, 200);
    assert.equal(r.head?.keepAlive, true);
    assert.equal(r.head?.headers['content-length'], '300');
    assert.deepEqual(r.head?.headers['set-cookie'], ['a', 'b']);
    assert.equal(r.head?.headers['x-folded'], 'one two');
    assert.ok(r.ended);
    assert.deepEqual(r.body, body);
  }
});

test('parses a chunked response with extensions and trailers split at every byte', () => {
  const body = randomBytes(200);
  const input = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), chunked(body, [1, 100, 99], ';name=val')]);
  for (const pieces of splits(input)) {
    const r = parse(pieces);
    assert.equal(r.head?.keepAlive, true);
    assert.ok(r.ended, 'ends at the last chunk');
    assert.deepEqual(r.body, body);
  }
});

test('a close-delimited body ends only at EOF and keeps no connection', () => {
  const body = randomBytes(50);
  const input = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\nContent-Type: x\n\n'), body]); // bare LFs are accepted
  for (const pieces of splits(input)) {
    const open = parse(pieces);
    assert.equal(open.ended, false);
    const r = parse(pieces, { eof: true });
    assert.equal(r.head?.keepAlive, false);
    assert.ok(r.ended);
    assert.deepEqual(r.body, body);
  }
});

test('HEAD, 204 and 304 responses have no body whatever they announce; 1xx heads are skipped', () => {
  const head = parse([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n')], { method: 'HEAD' });
  assert.ok(head.ended);
  assert.equal(head.head?.headers['content-length'], '1000');
  assert.ok(parse([Buffer.from('HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n')]).ended);
  const early = parse([Buffer.from('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')]);
  assert.equal(early.head?.status, 200);
  assert.equal(early.body.toString(), 'ok');
  const closing = parse([Buffer.from('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')]);
  assert.equal(closing.head?.keepAlive, false);
  assert.equal(parse([Buffer.from('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n')]).head?.keepAlive, false);
});

test('Transfer-Encoding wins over Content-Length and then the connection is not reused', () => {
  const r = parse([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n')]);
  assert.equal(r.body.toString(), 'hi');
  assert.ok(r.ended);
  assert.equal(r.head?.keepAlive, false);
});

test('rejects malformed input with an error naming it', () => {
  const bad: [string, RegExp][] = [
    ['HTTP/2 200 OK\r\n\r\n', /malformed status line/],
    ['HTTP/1.1 20 OK\r\n\r\n', /malformed status line/],
    ['ICY 200 OK\r\n\r\n', /malformed status line/],
    ['HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n', /malformed header line/],
    ['HTTP/1.1 200 OK\r\nName : x\r\n\r\n', /malformed header line/],
    ['HTTP/1.1 200 OK\r\nNo-Colon\r\n\r\n', /malformed header line/],
    ['HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n', /bare CR/],
    ['HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n', /invalid character/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n', /invalid Content-Length/],
    ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /invalid Content-Length/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabc', /unexpected bytes after the end/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /malformed chunk-size line/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc', /not followed by CRLF/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', /chunked twice/],
    ['HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', /HTTP\/1.0/],
    [' HTTP/1.1 200 OK\r\n\r\n', /malformed status line/],
    ['HTTP/1.1 101 Switching Protocols\r\n\r\n', /101/],
  ];
  for (const [input, re] of bad) {
    assert.throws(() => parse([Buffer.from(input)]), (e: unknown) => e instanceof Http1Error && re.test(e.message), input);
  }
  assert.throws(() => parse([Buffer.from('HTTP/1.1 200 OK\r\nX: ' + 'a'.repeat(70_000))]), /larger than/);
});

test('a connection closed early is an error, not a short body', () => {
  assert.throws(() => parse([], { eof: true }), /before any response byte/);
  assert.throws(() => parse([Buffer.from('HTTP/1.1 200 OK\r\n')], { eof: true }), /inside the response head/);
  assert.throws(() => parse([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc')], { eof: true }), /7 body bytes still to come/);
  assert.throws(() => parse([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab')], { eof: true }), /inside a chunked body/);
});
