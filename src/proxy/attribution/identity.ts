/**
 * Step identities (docs/build-cache.md): a client of the proxy names the build step it works
 * for in the proxy URL's userinfo, `http://<step-id>:<step-token>@127.0.0.1:PORT`, which curl,
 * wget, apt, npm, pip and git send as `Proxy-Authorization: Basic …` on plain requests and on
 * CONNECT. The token is an HMAC of the step id under the session secret, so a RUN step that
 * reads its own proxy URL can neither speak for another step nor use the control channel
 * (which wants the secret itself).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Step ids are plain userinfo: no escaping needed anywhere. */
export const STEP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A new random session secret (hex, 256 bits). */
export function newSessionSecret(): string {
  return randomBytes(32).toString('hex');
}

/** The per-step password: HMAC-SHA256(secret, id), 128 bits in hex. */
export function stepToken(secret: string, id: string): string {
  return createHmac('sha256', secret).update(`htvend-step:${id}`).digest('hex').slice(0, 32);
}

/** `http://id:token@host:port` for `proxyUrl` = `http://host:port`. */
export function stepProxyUrl(proxyUrl: string, secret: string, id: string): string {
  const u = new URL(proxyUrl);
  u.username = id;
  u.password = stepToken(secret, id);
  return u.href.replace(/\/$/, '');
}

export type Credentials = { kind: 'none' } | { kind: 'step'; id: string } | { kind: 'invalid' };

/**
 * Who a request speaks for, from its Proxy-Authorization header. A header that does not carry a
 * valid step token is `invalid` (served like any request, never attributed).
 */
export function identify(header: string | string[] | undefined, secret: string): Credentials {
  const h = Array.isArray(header) ? header[0] : header;
  if (!h) return { kind: 'none' };
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(h);
  if (!m) return { kind: 'invalid' };
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = text.indexOf(':');
  if (i <= 0) return { kind: 'invalid' };
  const id = text.slice(0, i);
  const token = Buffer.from(text.slice(i + 1));
  const want = Buffer.from(stepToken(secret, id));
  if (!STEP_ID.test(id) || token.length !== want.length || !timingSafeEqual(token, want)) return { kind: 'invalid' };
  return { kind: 'step', id };
}
