/**
 * The builder's side of the session's control channel (docs/build-cache.md, "Protocol"): finds
 * the channel in the environment (HTVEND_CONTROL_URL + HTVEND_SESSION_SECRET, set by htvend for
 * its child), gives each step its own proxy URL, and asks what a step fetched.
 */
import { request } from 'node:http';
import { HtvendError, describeError } from '../../util/errors.js';
import { stepProxyUrl, stepToken } from '../../proxy/attribution/identity.js';
import { CONTROL_URL_VAR, SESSION_SECRET_VAR } from '../../proxy/attribution/env.js';
import type { AttributedAsset, OtherRequest } from '../../proxy/attribution/ledger.js';
import type { Env } from '../../registry/index.js';

export type { AttributedAsset, OtherRequest };

/** Proxy variables rewritten with a step's credentials (the ones that point at the session's proxy). */
export const STEP_PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'ftp_proxy', 'all_proxy'];

export interface StepReport {
  assets: AttributedAsset[];
  other: OtherRequest[];
  unattributed: number;
}

/** Timeout of a control request (a step query waits for the step's recordings to commit). */
const CONTROL_TIMEOUT_MS = 180_000;

function get(url: URL, secret: string, method: string, signal?: AbortSignal): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { Authorization: `Bearer ${secret}` }, timeout: CONTROL_TIMEOUT_MS, signal, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) return reject(new Error(`${method} ${url.pathname}: HTTP ${res.statusCode} ${text.slice(0, 200)}`));
        try {
          resolve(JSON.parse(text));
        } catch (e) {
          reject(new Error(`${method} ${url.pathname}: not JSON (${describeError(e)})`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url.pathname}: no answer in ${CONTROL_TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}

export class SessionChannel {
  private constructor(
    private readonly base: URL,
    private readonly secret: string,
    readonly mode: 'build' | 'offline',
    readonly forceRefresh: boolean,
  ) {}

  /**
   * The channel of the environment's session, or why there is none (a plain proxy such as the
   * Go htvend, or no proxy at all): then nothing can be attributed.
   */
  static async fromEnv(env: Env, signal?: AbortSignal): Promise<SessionChannel | { reason: string }> {
    const url = env[CONTROL_URL_VAR];
    const secret = env[SESSION_SECRET_VAR];
    if (!url || !secret) return { reason: `${CONTROL_URL_VAR}/${SESSION_SECRET_VAR} are not set (not under our htvend, e.g. the Go tool or no proxy)` };
    let base: URL;
    try {
      base = new URL(url.endsWith('/') ? url : `${url}/`);
    } catch {
      return { reason: `${CONTROL_URL_VAR}=${url} is not a URL` };
    }
    try {
      const s = (await get(new URL('session', base), secret, 'GET', signal)) as { version?: number; mode?: string; forceRefresh?: boolean };
      if (s.version !== 1 || (s.mode !== 'build' && s.mode !== 'offline')) return { reason: `the control channel at ${base.host} speaks another version` };
      return new SessionChannel(base, secret, s.mode, !!s.forceRefresh);
    } catch (e) {
      return { reason: `the control channel at ${base.host} does not answer (${describeError(e)})` };
    }
  }

  /** `env` with every proxy variable that points at this session's proxy carrying step `id`'s credentials. */
  stepEnv(env: Env, id: string): Record<string, string | undefined> {
    const out: Record<string, string | undefined> = { ...env };
    for (const name of STEP_PROXY_VARS) {
      const v = env[name];
      if (v) out[name] = this.stepProxyValue(v, id);
    }
    return out;
  }

  /** A proxy URL value with step `id`'s credentials, if it points at this session's proxy. */
  stepProxyValue(value: string, id: string): string {
    let u: URL;
    try {
      u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`);
    } catch {
      return value;
    }
    if (u.host !== this.base.host || u.username) return value;
    return stepProxyUrl(`${u.protocol}//${u.host}`, this.secret, id);
  }

  /** The session's proxy (`http://host:port`): the control channel listens on the proxy's own port. */
  get proxyUrl(): string {
    return `http://${this.base.host}`;
  }

  /** Step `id`'s password (for the step forwarder; never logged). */
  stepToken(id: string): string {
    return stepToken(this.secret, id);
  }

  /** What step `id` fetched; waits for its requests in flight. */
  async stepReport(id: string, signal?: AbortSignal): Promise<StepReport> {
    try {
      const r = (await get(new URL(`steps/${id}`, this.base), this.secret, 'GET', signal)) as StepReport;
      return { assets: r.assets ?? [], other: r.other ?? [], unattributed: r.unattributed ?? 0 };
    } catch (e) {
      throw new HtvendError('UPSTREAM', `asking htvend what step ${id} fetched: ${describeError(e)}`, { cause: e });
    }
  }

  /** Requests so far that came without valid step credentials. */
  async unattributed(signal?: AbortSignal): Promise<number> {
    const s = (await get(new URL('session', this.base), this.secret, 'GET', signal)) as { unattributed?: number };
    return s.unattributed ?? 0;
  }

  async forget(id: string): Promise<void> {
    await get(new URL(`steps/${id}`, this.base), this.secret, 'DELETE').catch(() => undefined);
  }
}
