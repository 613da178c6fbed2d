/**
 * The lean upstream path for plain GET/HEAD requests when htvend itself has no proxy to go
 * through (docs/proxy.md, "Recording, third round"). It speaks HTTP/1.1 over node:net /
 * node:tls with the sockets' `onread` option: every read lands in one fixed buffer owned by
 * this agent, so receiving a GiB allocates nothing per TLS record (undici's path hands over
 * ~60,000 fresh 16 KiB buffers per GiB, and collecting them cost ~1 CPU-s). The body is given
 * to the caller as views of that buffer, which it must copy before returning (see RawBody).
 *
 * Connections are kept alive per origin (idle ones closed after KEEP_ALIVE_MS and never keeping
 * the process alive); connecting, the wait for the head and every gap in the body are bounded
 * by timeouts; an AbortSignal destroys the connection. A reused connection that turns out dead
 * before any byte of the response arrived is retried once on a fresh one (GET/HEAD are
 * idempotent; the server closing an idle connection just as we reuse it is a normal race).
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type SecureContext } from 'node:tls';
import { Readable } from 'node:stream';
import type { HeaderMap } from '../client.js';
import { Http1Error, ResponseParser, type ResponseHead } from './http1.js';

/** One read buffer for every connection: onread callbacks run one at a time and copy out. */
const READ_BUFFER_BYTES = 256 * 1024;
const KEEP_ALIVE_MS = 30_000;
const MAX_IDLE_PER_ORIGIN = 8;

export interface DirectAgentOptions {
  secureContext: SecureContext;
  connectTimeoutMs: number;
  /** Waiting for the head, and any gap between two body reads. */
  idleTimeoutMs: number;
}

export interface DirectTarget {
  protocol: 'http:' | 'https:';
  /** Host name or IP, without IPv6 brackets. */
  host: string;
  port: number;
  /** The Host header: the URL's authority without userinfo. */
  authority: string;
  /** Path and query exactly as in the URL. */
  path: string;
}

/**
 * Receives body bytes. `data` gets a view of the agent's read buffer, valid only during the
 * call: copy what you keep. Returning false asks for a pause (call RawBody.resume() later);
 * bytes already decrypted may still arrive after it, so `data` must accept them.
 */
export interface BodySink {
  data(chunk: Buffer): boolean;
  end(): void;
  error(e: Error): void;
}

export interface RawBody {
  /** Starts delivering the body to `sink`; call once. */
  pipe(sink: BodySink): void;
  pause(): void;
  resume(): void;
  /** Stops the transfer; the connection is closed, not reused. */
  destroy(e?: Error): void;
}

export interface DirectResponse {
  status: number;
  headers: HeaderMap;
  raw: RawBody;
  /** The same body as a Readable (copies each read): for callers other than the recorder. */
  readonly body: Readable;
}

/** Errors of this path name what happened; agent users wrap them with the method and URL. */
export class DirectError extends Error {
  override name = 'DirectError';
}

interface Conn {
  socket: Socket;
  key: string;
  /** Handler of the request currently on this connection. */
  onData?: ((b: Buffer) => void) | undefined;
  onGone?: ((e: Error) => void) | undefined;
  idleTimer?: NodeJS.Timeout | undefined;
  used: boolean;
}

export class DirectAgent {
  private readonly idle = new Map<string, Conn[]>();
  private readonly all = new Set<Conn>();
  private readonly readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  private closed = false;

  constructor(private readonly opts: DirectAgentOptions) {}

  async request(t: DirectTarget, method: 'GET' | 'HEAD', headers: Record<string, string | string[]>, signal?: AbortSignal): Promise<DirectResponse> {
    signal?.throwIfAborted();
    const head = requestHead(t, method, headers);
    const reused = this.takeIdle(t);
    if (reused) {
      try {
        return await this.exchange(reused, head, method, signal);
      } catch (e) {
        if (!(e instanceof DeadBeforeResponse)) throw e;
        // The server had closed the idle connection: one more try on a fresh one.
      }
    }
    const conn = await this.open(t, signal);
    try {
      return await this.exchange(conn, head, method, signal);
    } catch (e) {
      if (e instanceof DeadBeforeResponse) throw new DirectError(e.message);
      throw e;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.all) c.socket.destroy();
    this.all.clear();
    this.idle.clear();
  }

  private keyOf(t: DirectTarget): string {
    return `${t.protocol}//${t.host}:${t.port}`;
  }

  private takeIdle(t: DirectTarget): Conn | undefined {
    const list = this.idle.get(this.keyOf(t));
    for (let c = list?.pop(); c; c = list?.pop()) {
      clearTimeout(c.idleTimer);
      if (!c.socket.destroyed && c.socket.readyState === 'open') return c;
    }
    return undefined;
  }

  private open(t: DirectTarget, signal?: AbortSignal): Promise<Conn> {
    if (this.closed) return Promise.reject(new DirectError('upstream client closed'));
    const conn: Conn = { socket: undefined as unknown as Socket, key: this.keyOf(t), used: false };
    const onread = {
      buffer: this.readBuffer,
      callback: (n: number, buf: Buffer): boolean => {
        conn.onData?.(buf.subarray(0, n));
        return true;
      },
    };
    const base = { host: t.host, port: t.port, onread };
    const socket =
      t.protocol === 'https:'
        ? tlsConnect({ ...base, secureContext: this.opts.secureContext, servername: isIP(t.host) ? undefined : t.host, ALPNProtocols: ['http/1.1'] })
        : netConnect(base);
    conn.socket = socket;
    socket.setNoDelay(true);
    this.all.add(conn);
    socket.on('error', (e) => conn.onGone?.(e));
    socket.on('end', () => conn.onGone?.(new DirectError('connection closed by the server')));
    socket.on('close', () => {
      this.all.delete(conn);
      clearTimeout(conn.idleTimer);
      const list = this.idle.get(conn.key);
      if (list?.includes(conn)) list.splice(list.indexOf(conn), 1);
      conn.onGone?.(new DirectError('connection closed'));
    });
    return new Promise<Conn>((resolve, reject) => {
      const fail = (e: unknown) => {
        cleanup();
        socket.destroy();
        reject(e);
      };
      const timer = setTimeout(() => fail(new DirectError(`connecting to ${t.authority} timed out after ${this.opts.connectTimeoutMs} ms`)), this.opts.connectTimeoutMs);
      const onAbort = () => fail(signal!.reason);
      const onError = (e: Error) => fail(new DirectError(`connecting to ${t.authority}: ${e.message}`));
      const onClose = () => fail(new DirectError(`connecting to ${t.authority}: connection closed`));
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        socket.off('error', onError).off('close', onClose);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.once('error', onError).once('close', onClose);
      socket.once(t.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
        cleanup();
        resolve(conn);
      });
    });
  }

  /** Sends the request on `conn` and resolves with the response head; the body follows via `raw`. */
  private exchange(conn: Conn, head: string, method: 'GET' | 'HEAD', signal?: AbortSignal): Promise<DirectResponse> {
    const { socket } = conn;
    const wasUsed = conn.used;
    conn.used = true;
    socket.ref();
    let got = 0;
    let sink: BodySink | undefined;
    /** Body bytes that arrived before a sink was attached (copied). */
    let early: Buffer[] = [];
    let ended = false;
    let failed: Error | undefined;
    let settled = false;
    let resolveHead!: (r: DirectResponse) => void;
    let rejectHead!: (e: unknown) => void;
    const headPromise = new Promise<DirectResponse>((res, rej) => ((resolveHead = res), (rejectHead = rej)));
    let keepAlive = false;

    const detach = () => {
      conn.onData = undefined;
      conn.onGone = undefined;
      signal?.removeEventListener('abort', onAbort);
      socket.setTimeout(0);
      socket.off('timeout', onTimeout);
    };
    const fail = (e: Error) => {
      if (failed || ended) return;
      failed = e;
      detach();
      socket.destroy();
      if (!settled) {
        settled = true;
        rejectHead(e);
      } else {
        sink?.error(e);
      }
    };
    const finish = () => {
      ended = true;
      detach();
      if (keepAlive && !this.closed) this.release(conn);
      else socket.destroy();
      sink?.end();
    };
    const parser = new ResponseParser(
      {
        head: (h: ResponseHead) => {
          keepAlive = h.keepAlive;
          settled = true;
          resolveHead(makeResponse(h));
        },
        body: (b) => {
          if (sink) {
            if (!sink.data(b) && !failed) socket.pause();
          } else {
            early.push(Buffer.from(b));
            socket.pause();
          }
        },
        end: () => {
          // The end is reported from inside feed(); finish after it returns (see onData).
        },
      },
      method,
    );
    const onAbort = () => fail(signal!.reason instanceof Error ? signal!.reason : new DirectError('aborted'));
    const onTimeout = () => fail(new DirectError(settled ? `no body data for ${this.opts.idleTimeoutMs} ms` : `no response within ${this.opts.idleTimeoutMs} ms`));
    conn.onData = (b) => {
      got += b.length;
      try {
        parser.feed(b);
      } catch (e) {
        fail(e instanceof Http1Error ? new DirectError(`malformed response: ${e.message}`) : (e as Error));
        return;
      }
      if (parser.done && !ended && !failed) finish();
    };
    conn.onGone = (e) => {
      if (ended || failed) return;
      if (got === 0 && wasUsed) return fail(new DeadBeforeResponse(`reused connection was closed: ${e.message}`));
      if (e instanceof DirectError && /closed/.test(e.message)) {
        // EOF: ends a close-delimited body, anything else unfinished is an error.
        try {
          parser.finish();
        } catch (pe) {
          return fail(new DirectError((pe as Error).message));
        }
        if (parser.done) {
          keepAlive = false;
          finish();
        }
        return;
      }
      fail(e);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.setTimeout(this.opts.idleTimeoutMs);
    socket.on('timeout', onTimeout);
    socket.resume();
    socket.write(head);

    const raw: RawBody = {
      pipe: (s) => {
        if (sink) throw new Error('RawBody.pipe() called twice');
        sink = s;
        const pending = early;
        early = [];
        for (const b of pending) if (!failed) s.data(b);
        if (failed) return s.error(failed);
        // The connection may already be back in the pool: every byte is in `pending` then.
        if (ended) return s.end();
        socket.resume();
      },
      pause: () => socket.pause(),
      resume: () => {
        if (!ended && !failed) socket.resume();
      },
      destroy: (e) => {
        if (ended) return;
        fail(e ?? new DirectError('body discarded'));
      },
    };
    const makeResponse = (h: ResponseHead): DirectResponse => {
      let readable: Readable | undefined;
      return {
        status: h.status,
        headers: h.headers,
        raw,
        get body() {
          return (readable ??= toReadable(raw));
        },
      };
    };
    return headPromise;
  }

  private release(conn: Conn): void {
    const list = this.idle.get(conn.key) ?? [];
    if (list.length >= MAX_IDLE_PER_ORIGIN) {
      conn.socket.destroy();
      return;
    }
    list.push(conn);
    this.idle.set(conn.key, list);
    conn.socket.unref(); // an idle connection never keeps the process alive
    conn.socket.resume(); // to see the server's close
    conn.onGone = () => conn.socket.destroy();
    conn.onData = () => conn.socket.destroy(); // a server speaking unasked is not to be trusted
    conn.idleTimer = setTimeout(() => conn.socket.destroy(), KEEP_ALIVE_MS);
    conn.idleTimer.unref();
  }
}

/** A reused connection died before answering: the request may be retried on a new one. */
class DeadBeforeResponse extends DirectError {}

function requestHead(t: DirectTarget, method: string, headers: Record<string, string | string[]>): string {
  let s = `${method} ${t.path} HTTP/1.1\r\nhost: ${t.authority}\r\n`;
  if (/[\0-\x20\x7f]/.test(t.path)) throw new DirectError(`invalid character in request path ${JSON.stringify(t.path.slice(0, 80))}`);
  for (const [k, v] of Object.entries(headers)) {
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(k)) throw new DirectError(`invalid request header name ${JSON.stringify(k)}`);
    for (const one of Array.isArray(v) ? v : [v]) {
      if (/[\0\r\n]/.test(one)) throw new DirectError(`invalid character in request header ${k}`);
      s += `${k}: ${one}\r\n`;
    }
  }
  return s + '\r\n';
}

/** The body as a Readable, each read copied out of the shared buffer. */
function toReadable(raw: RawBody): Readable {
  let started = false;
  const r = new Readable({
    highWaterMark: 1024 * 1024,
    read() {
      if (!started) {
        started = true;
        raw.pipe({
          data: (b) => r.push(Buffer.from(b)),
          end: () => r.push(null),
          error: (e) => r.destroy(e),
        });
      } else {
        raw.resume();
      }
    },
    destroy(e, cb) {
      raw.destroy(e ?? undefined);
      cb(e);
    },
  });
  return r;
}
