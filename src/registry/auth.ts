/**
 * Registry authentication driven by the `WWW-Authenticate` challenge of a 401
 * (https://distribution.github.io/distribution/spec/auth/token/): `Basic` sends the
 * credentials; `Bearer` fetches a token from the realm (anonymously, or with the credentials
 * as Basic auth) for the scope the request needs, and caches it per scope until it expires.
 * Credentials come from the caller (URL userinfo) or from the Docker / containers auth files.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dispatcher } from 'undici';
import { request } from '../upstream/undici-lite.js';
import { HtvendError, describeError, isAbortError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { Env } from './transport.js';
import { DOCKER_HUB_HOST } from './reference.js';
import { parseChallenges, type Challenge } from '../util/www-authenticate.js';

export { parseChallenges, type Challenge } from '../util/www-authenticate.js';

export interface Credentials {
  username: string;
  password: string;
}


function authFileKeys(registry: string): string[] {
  if (registry === DOCKER_HUB_HOST) return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
}

async function readAuthFile(path: string): Promise<Record<string, { auth?: string; username?: string; password?: string }> | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as { auths?: Record<string, { auth?: string }> };
    return parsed.auths ?? {};
  } catch (e) {
    throw new HtvendError('INPUT', `${path}: not valid JSON (${describeError(e)})`);
  }
}

/**
 * Credentials for `registry` from, in order: `REGISTRY_AUTH_FILE`,
 * `$XDG_RUNTIME_DIR/containers/auth.json` (podman/buildah/skopeo), `$DOCKER_CONFIG/config.json`
 * or `~/.docker/config.json` (`auths` entries with base64 `user:password` in `auth`).
 * Credential helpers (`credsStore`) are not run.
 */
export async function credentialsFromAuthFiles(registry: string, env: Env): Promise<Credentials | undefined> {
  const files: string[] = [];
  if (env.REGISTRY_AUTH_FILE) files.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) files.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  if (env.DOCKER_CONFIG) files.push(join(env.DOCKER_CONFIG, 'config.json'));
  else if (env.HOME) files.push(join(env.HOME, '.docker', 'config.json'));
  for (const file of files) {
    const auths = await readAuthFile(file);
    if (!auths) continue;
    for (const key of authFileKeys(registry)) {
      const entry = auths[key];
      if (!entry) continue;
      if (entry.auth) {
        const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
      }
      if (entry.username && entry.password) return { username: entry.username, password: entry.password };
    }
  }
  return undefined;
}

function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

interface CachedToken {
  header: string;
  expiresAt: number;
}

/**
 * Per-client authentication state. `authorization(scope)` gives the header to send (if any is
 * known); `onChallenge()` learns from a 401 and returns true if a retry may now succeed.
 */
export class Authenticator {
  private basic: string | undefined;
  private bearerChallenge: Challenge | undefined;
  private readonly tokens = new Map<string, Promise<CachedToken>>();

  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly credentials: Credentials | undefined,
    private readonly where: string,
    private readonly log: Logger,
  ) {}

  /** Whether a challenge has told us how this registry authenticates (or that basic auth is in use). */
  get knowsScheme(): boolean {
    return this.bearerChallenge !== undefined || this.basic !== undefined;
  }

  /** The Authorization header for a request needing `scope`, if one is known. */
  async authorization(scope: string, signal?: AbortSignal): Promise<string | undefined> {
    if (this.bearerChallenge) return (await this.token(scope, signal)).header;
    return this.basic;
  }

  /** Handles a 401. Returns true if the request should be retried. */
  async onChallenge(header: string | undefined, scope: string, hadAuth: boolean, signal?: AbortSignal): Promise<boolean> {
    const challenges = parseChallenges(header ?? '');
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer?.params.realm) {
      if (hadAuth && this.bearerChallenge) {
        // A token we sent was refused (expired, or not enough access): fetch one fresh token.
        const cached = this.tokens.get(scope);
        this.tokens.delete(scope);
        return cached !== undefined;
      }
      this.bearerChallenge = bearer;
      return true;
    }
    if (basic && this.credentials && !hadAuth) {
      this.basic = basicHeader(this.credentials);
      return true;
    }
    return false;
  }

  private token(scope: string, signal?: AbortSignal): Promise<CachedToken> {
    // A push token also grants pull: reuse it rather than asking for a second token.
    const cached = this.tokens.get(scope) ?? (scope.endsWith(':pull') ? this.tokens.get(`${scope},push`) : undefined);
    if (cached) {
      // Reuse unless known to be expired (a rejected fetch is dropped from the cache below).
      return cached.then((t) => (t.expiresAt > Date.now() ? t : this.refresh(scope, signal)));
    }
    return this.refresh(scope, signal);
  }

  private refresh(scope: string, signal?: AbortSignal): Promise<CachedToken> {
    const p = this.fetchToken(scope, signal);
    this.tokens.set(scope, p);
    p.catch(() => this.tokens.get(scope) === p && this.tokens.delete(scope));
    return p;
  }

  private async fetchToken(scope: string, signal?: AbortSignal): Promise<CachedToken> {
    const ch = this.bearerChallenge!;
    const realm = new URL(ch.params.realm!);
    if (ch.params.service) realm.searchParams.set('service', ch.params.service);
    for (const s of scope.split(' ').filter(Boolean)) realm.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.credentials) headers.authorization = basicHeader(this.credentials);
    const tokenHost = realm.host;
    this.log.debug(`registry auth: fetching token from ${realm.origin}${realm.pathname} for ${scope}`);
    let res: Dispatcher.ResponseData;
    try {
      res = await request(realm, { method: 'GET', headers, dispatcher: this.dispatcher, signal });
    } catch (e) {
      if (isAbortError(e)) throw e;
      throw new HtvendError('UPSTREAM', `${this.where}: cannot reach token server ${tokenHost}: ${describeError(e)}`, { cause: e });
    }
    const text = await res.body.text();
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new HtvendError('UPSTREAM', `${this.where}: token server ${tokenHost} refused ${this.credentials ? `the credentials of user ${this.credentials.username}` : 'anonymous access'} (HTTP ${res.statusCode})`, {
        hint: this.credentials ? 'check the username and password' : 'give credentials in the URL or in ~/.docker/config.json',
      });
    }
    if (res.statusCode !== 200) throw new HtvendError('UPSTREAM', `${this.where}: token server ${tokenHost} answered HTTP ${res.statusCode}`);
    let body: { token?: string; access_token?: string; expires_in?: number };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new HtvendError('UPSTREAM', `${this.where}: token server ${tokenHost} answered with invalid JSON`);
    }
    const token = body.token ?? body.access_token;
    if (!token) throw new HtvendError('UPSTREAM', `${this.where}: token server ${tokenHost} returned no token`);
    // Spec default lifetime is 60 s; renew 10 s early so long uploads do not race expiry.
    const lifetime = Math.max(10, (body.expires_in ?? 60) - 10) * 1000;
    return { header: `Bearer ${token}`, expiresAt: Date.now() + lifetime };
  }
}
