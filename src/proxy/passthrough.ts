/** Forwarding a request upstream unrecorded (non-GET in build mode, --no-cache-response URLs). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { UpstreamClient, UpstreamResponse } from '../upstream/client.js';
import type { Logger } from '../util/log.js';
import { describeError, isAbortError } from '../util/errors.js';
import { redactUrl } from '../util/redact.js';
import { responseHeadersForClient } from './headers.js';

export interface PassContext {
  upstream: UpstreamClient;
  log: Logger;
  signal?: AbortSignal | undefined;
}

/** 502 with a one-line reason, unless the response already started (then cut it). */
export function badGateway(res: ServerResponse, reason: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(502, { 'Content-Type': 'text/plain' }).end(`htvend: ${reason}\n`);
}

/** Streams an upstream response to the client as is (status, headers minus hop-by-hop, body). */
export async function relayResponse(ctx: { log: Logger }, req: IncomingMessage, res: ServerResponse, up: UpstreamResponse): Promise<void> {
  res.writeHead(up.status, responseHeadersForClient(up.headers));
  if (req.method === 'HEAD') {
    up.body.resume();
    res.end();
    return;
  }
  try {
    await pipeline(up.body, res);
  } catch (e) {
    ctx.log.debug(`relay of ${redactUrl(up.url)} ended early: ${describeError(e)}`);
    res.destroy();
  }
}

export async function passThrough(ctx: PassContext, req: IncomingMessage, res: ServerResponse, url: string): Promise<void> {
  const hasBody = (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') || req.headers['transfer-encoding'] !== undefined;
  let up: UpstreamResponse;
  try {
    up = await ctx.upstream.request(url, {
      method: req.method ?? 'GET',
      headers: req.headers,
      body: hasBody ? req : undefined,
      signal: ctx.signal,
      followRedirects: false,
    });
  } catch (e) {
    if (!isAbortError(e)) ctx.log.warn(`${req.method} ${redactUrl(url)}: ${describeError(e)}`);
    badGateway(res, describeError(e));
    return;
  }
  await relayResponse(ctx, req, res, up);
}
