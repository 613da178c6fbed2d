/**
 * A strict HTTP/1.1 response parser (RFC 9112) for the direct upstream path (agent.ts): status
 * line, header fields, and the body framed by Content-Length, chunked Transfer-Encoding or the
 * connection's close. It is a push parser: `feed()` takes whatever a socket read delivered, split
 * anywhere, and hands body bytes to the sink as sub-arrays of the input (never copied, so the
 * caller's read buffer can be reused once `feed()` returns). Malformed input throws an
 * {@link Http1Error} naming what is wrong; nothing is guessed.
 *
 * Not supported, on purpose: pipelining (bytes after the response end are an error) and
 * responses to methods other than GET/HEAD (CONNECT's 2xx has no body framing).
 */
import type { HeaderMap } from '../client.js';

export class Http1Error extends Error {
  override name = 'Http1Error';
}

export interface ResponseHead {
  status: number;
  /** `1.0` or `1.1`. */
  version: string;
  headers: HeaderMap;
  /** The connection may carry another request once this response's body has ended. */
  keepAlive: boolean;
}

export interface ParserSink {
  head(h: ResponseHead): void;
  /** Body bytes: a view of the buffer given to feed(), valid only during this call. */
  body(chunk: Buffer): void;
  end(): void;
}

/** Response heads and trailers larger than this are refused (Node's own limit is 16 KiB). */
const MAX_HEAD_BYTES = 64 * 1024;
/** A chunk-size line with extensions longer than this is refused. */
const MAX_CHUNK_LINE = 4096;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible characters, SP, HTAB and obs-text; never CR, LF or NUL.
const BAD_VALUE = /[\0-\x08\x0a-\x1f\x7f]/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: [^\0-\x08\x0a-\x1f\x7f]*)?$/;

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' | 'close' | 'done';

function hasToken(v: string | string[] | undefined, token: string): boolean {
  const all = Array.isArray(v) ? v.join(',') : (v ?? '');
  return all.split(',').some((t) => t.trim().toLowerCase() === token);
}

export class ResponseParser {
  private state: State = 'head';
  /** Head or trailer bytes gathered so far (copied: they may span reads). */
  private headBytes: Buffer[] = [];
  private headLen = 0;
  /** Bytes of the body still to come (length) or of the current chunk (chunk-data). */
  private remaining = 0;
  private chunkLine = '';
  private crlfSeen = 0;
  /** Non-CR/LF bytes and CRs of the head line being gathered (an empty line ends the head). */
  private lineBytes = 0;
  private lineCrs = 0;

  /** @param method the request's method: a HEAD response has no body whatever it announces. */
  constructor(
    private readonly sink: ParserSink,
    private readonly method: string,
  ) {}

  get done(): boolean {
    return this.state === 'done';
  }

  /** True once the head has been parsed. */
  get headDone(): boolean {
    return this.state !== 'head';
  }

  /** Bytes the connection delivered; throws Http1Error on malformed input. */
  feed(buf: Buffer): void {
    let off = 0;
    while (off < buf.length) {
      switch (this.state) {
        case 'head':
        case 'trailers':
          off = this.feedHead(buf, off);
          break;
        case 'length':
          off = this.takeBody(buf, off);
          if (this.remaining === 0) this.finishBody();
          break;
        case 'close':
          this.sink.body(off === 0 ? buf : buf.subarray(off));
          off = buf.length;
          break;
        case 'chunk-size':
          off = this.feedChunkLine(buf, off);
          break;
        case 'chunk-data':
          off = this.takeBody(buf, off);
          if (this.remaining === 0) {
            this.state = 'chunk-crlf';
            this.crlfSeen = 0;
          }
          break;
        case 'chunk-crlf': {
          const c = buf[off++]!;
          if (this.crlfSeen === 0 && c === 0x0d) this.crlfSeen = 1;
          else if (c === 0x0a) this.state = 'chunk-size';
          else throw new Http1Error('chunked body: chunk data not followed by CRLF');
          break;
        }
        case 'done':
          throw new Http1Error(`${buf.length - off} unexpected bytes after the end of the response`);
      }
    }
  }

  /** Hands up to `remaining` body bytes of `buf` from `off` to the sink; returns the new offset. */
  private takeBody(buf: Buffer, off: number): number {
    const n = Math.min(this.remaining, buf.length - off);
    this.sink.body(buf.subarray(off, off + n));
    this.remaining -= n;
    return off + n;
  }

  /** The connection ended (EOF). Ends a close-delimited body; anything else unfinished is an error. */
  finish(): void {
    if (this.state === 'close') {
      this.state = 'done';
      this.sink.end();
      return;
    }
    if (this.state === 'done') return;
    if (this.state === 'head') throw new Http1Error(this.headLen === 0 ? 'connection closed before any response byte' : 'connection closed inside the response head');
    if (this.state === 'length') throw new Http1Error(`connection closed with ${this.remaining} body bytes still to come (Content-Length)`);
    throw new Http1Error('connection closed inside a chunked body');
  }

  private finishBody(): void {
    this.state = 'done';
    this.sink.end();
  }

  /** Gathers head (or trailer) bytes until the empty line; returns the new offset. */
  private feedHead(buf: Buffer, off: number): number {
    // The end is an empty line: CRLF, or a bare LF (RFC 9112 §2.2 lets a recipient accept it).
    let end = -1;
    for (let i = off; i < buf.length; i++) {
      const c = buf[i]!;
      if (c === 0x0a) {
        if (this.lineBytes === 0 && this.lineCrs <= 1) {
          end = i + 1;
          break;
        }
        this.lineBytes = 0;
        this.lineCrs = 0;
      } else if (c === 0x0d) {
        this.lineCrs++;
      } else {
        this.lineBytes++;
      }
    }
    const take = end === -1 ? buf.length - off : end - off;
    if (this.headLen + take > MAX_HEAD_BYTES) throw new Http1Error(`response ${this.state === 'head' ? 'head' : 'trailers'} larger than ${MAX_HEAD_BYTES} bytes`);
    this.headBytes.push(Buffer.from(buf.subarray(off, off + take)));
    this.headLen += take;
    if (end === -1) return buf.length;
    const text = Buffer.concat(this.headBytes, this.headLen).toString('latin1');
    this.headBytes = [];
    this.headLen = 0;
    this.lineBytes = 0;
    this.lineCrs = 0;
    const lines = text.split('\n').slice(0, -2); // drop the empty line and the '' after its LF
    if (this.state === 'trailers') {
      parseFields(lines, 'trailer');
      this.finishBody();
    } else {
      this.startResponse(lines);
    }
    return end;
  }

  private startResponse(lines: string[]): void {
    const statusLine = (lines.shift() ?? '').replace(/\r$/, '');
    const m = STATUS_LINE.exec(statusLine);
    if (!m) throw new Http1Error(`malformed status line ${JSON.stringify(statusLine.slice(0, 80))}`);
    const version = `1.${m[1]}`;
    const status = Number(m[2]);
    const headers = parseFields(lines, 'header');
    if (status < 200) {
      // 1xx (100 Continue, 103 Early Hints): informational, the final response follows. 101 is
      // an upgrade this client never asks for.
      if (status === 101) throw new Http1Error('unexpected 101 Switching Protocols');
      return;
    }
    const te = headers['transfer-encoding'];
    const cl = headers['content-length'];
    let keepAlive = version === '1.1' && !hasToken(headers.connection, 'close');
    const noBody = this.method === 'HEAD' || status === 204 || status === 304;
    if (noBody) {
      this.state = 'done';
    } else if (te !== undefined) {
      const codings = (Array.isArray(te) ? te.join(',') : te).split(',').map((s) => s.trim().toLowerCase());
      if (version === '1.0') throw new Http1Error('Transfer-Encoding in an HTTP/1.0 response');
      if (codings.at(-1) === 'chunked') {
        if (codings.indexOf('chunked') !== codings.length - 1) throw new Http1Error(`Transfer-Encoding ${JSON.stringify(codings.join(', '))} applies chunked twice`);
        this.state = 'chunk-size';
        this.chunkLine = '';
      } else {
        this.state = 'close';
      }
      // RFC 9112 §6.3: with both, Transfer-Encoding wins and the connection must not be reused.
      if (cl !== undefined) keepAlive = false;
    } else if (cl !== undefined) {
      const values = (Array.isArray(cl) ? cl.join(',') : cl).split(',').map((s) => s.trim());
      if (!values.every((v) => /^\d{1,15}$/.test(v)) || new Set(values).size !== 1) throw new Http1Error(`invalid Content-Length ${JSON.stringify(values.join(', '))}`);
      this.remaining = Number(values[0]);
      this.state = this.remaining === 0 ? 'done' : 'length';
    } else {
      this.state = 'close';
    }
    if (this.state === 'close') keepAlive = false;
    this.sink.head({ status, version, headers, keepAlive });
    if (this.state === 'done') this.sink.end();
  }

  /** Parses `HEX[;ext]CRLF`; a 0 size starts the trailers. */
  private feedChunkLine(buf: Buffer, off: number): number {
    const lf = buf.indexOf(0x0a, off);
    const end = lf === -1 ? buf.length : lf;
    this.chunkLine += buf.toString('latin1', off, end);
    if (this.chunkLine.length > MAX_CHUNK_LINE) throw new Http1Error(`chunk-size line longer than ${MAX_CHUNK_LINE} bytes`);
    if (lf === -1) return buf.length;
    const line = this.chunkLine.replace(/\r$/, '');
    this.chunkLine = '';
    const m = /^([0-9a-fA-F]{1,13})[ \t]*(;.*)?$/.exec(line);
    if (!m || BAD_VALUE.test(line.replace(/\t/g, ' '))) throw new Http1Error(`malformed chunk-size line ${JSON.stringify(line.slice(0, 80))}`);
    const size = parseInt(m[1]!, 16);
    if (size === 0) {
      this.state = 'trailers';
    } else {
      this.remaining = size;
      this.state = 'chunk-data';
    }
    return lf + 1;
  }
}

/** `name: value` lines (CR already allowed at the end) into lowercase names; repeats become arrays. */
function parseFields(lines: string[], what: string): HeaderMap {
  const out: HeaderMap = {};
  let last: string | undefined;
  for (const raw of lines) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.includes('\r')) throw new Http1Error(`bare CR in a ${what} line`);
    if (line[0] === ' ' || line[0] === '\t') {
      // obs-fold (RFC 9112 §5.2): a user agent replaces it with a space.
      if (last === undefined) throw new Http1Error(`${what} continuation line before any field`);
      const v = out[last]!;
      const more = line.trim();
      if (Array.isArray(v)) v[v.length - 1] += ' ' + more;
      else out[last] = `${v} ${more}`;
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    // Whitespace between the name and the colon must be rejected (RFC 9112 §5.1).
    if (!TOKEN.test(name)) throw new Http1Error(`malformed ${what} line ${JSON.stringify(line.slice(0, 80))}`);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (BAD_VALUE.test(value)) throw new Http1Error(`invalid character in the value of ${what} ${name}`);
    const key = name.toLowerCase();
    const prev = out[key];
    out[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
    last = key;
  }
  return out;
}
