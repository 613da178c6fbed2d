/**
 * The session's control channel (docs/build-cache.md, "Protocol"): origin-form requests to the
 * proxy's own listener under `/.htvend/v1/`, authorised by `Authorization: Bearer <session
 * secret>`. Only a process given HTVEND_SESSION_SECRET (the child of this session) can use it;
 * RUN steps only ever see their derived step tokens.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { STEP_ID } from './identity.js';
import type { AttributionLedger } from './ledger.js';

export const CONTROL_PREFIX = '/.htvend/v1/';
/** How long a step query waits for that step's requests still in flight. */
const STEP_WAIT_MS = 120_000;

export interface ControlContext {
  secret: string;
  ledger: AttributionLedger;
  mode: 'build' | 'offline';
  forceRefresh: boolean;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' }).end(text);
}

function authorised(req: IncomingMessage, secret: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const got = Buffer.from(m[1]!);
  const want = Buffer.from(secret);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** True when `req` is a control request (it has then been answered). */
export function isControlRequest(req: IncomingMessage): boolean {
  return (req.url ?? '').startsWith(CONTROL_PREFIX);
}

export async function serveControl(ctx: ControlContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  req.resume();
  if (!authorised(req, ctx.secret)) {
    json(res, 401, { error: 'control requests need Authorization: Bearer <HTVEND_SESSION_SECRET>' });
    return;
  }
  const path = (req.url ?? '').slice(CONTROL_PREFIX.length).split('?')[0]!;
  const method = (req.method ?? 'GET').toUpperCase();
  if (path === 'session' && method === 'GET') {
    json(res, 200, { version: 1, mode: ctx.mode, forceRefresh: ctx.forceRefresh, unattributed: ctx.ledger.unattributed });
    return;
  }
  const m = /^steps\/([^/]+)$/.exec(path);
  if (m && STEP_ID.test(m[1]!)) {
    const id = m[1]!;
    if (method === 'GET') {
      const r = await ctx.ledger.report(id, STEP_WAIT_MS);
      json(res, 200, { id, ...r, unattributed: ctx.ledger.unattributed });
      return;
    }
    if (method === 'DELETE') {
      ctx.ledger.forget(id);
      json(res, 200, { id });
      return;
    }
  }
  json(res, 404, { error: `no control route ${method} ${CONTROL_PREFIX}${path}` });
}
