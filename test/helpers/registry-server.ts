/**
 * A real registry for tests: Debian's `docker-registry serve` (distribution 2.8) on a free
 * 127.0.0.1 port with a temp storage dir, optionally with TLS (a cert made by openssl at test
 * time), htpasswd basic auth (bcrypt hashes from libcrypt via perl's crypt(), so no extra
 * dependency), or token auth backed by a small in-process token server of our own
 * (RS256 JWTs whose signing cert is the registry's rootcertbundle). Stopped by `t.after`.
 */
import { spawn, execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { createSign, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { once } from 'node:events';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestContext } from 'node:test';

const exec = promisify(execFile);

export interface RegistryServerOptions {
  tls?: boolean;
  /** Extra DNS names in the TLS certificate (reached through a name-mapping proxy, test/helpers/name-proxy.ts). */
  tlsNames?: string[];
  auth?: 'none' | 'basic' | 'token';
  /** Accounts for basic/token auth. Default `{ alice: 'wonderland-secret' }`. */
  users?: Record<string, string>;
  /** Token auth: anonymous clients get pull access (as on Docker Hub). Default true. */
  anonymousPull?: boolean;
}

export interface RegistryServer {
  /** `127.0.0.1:PORT` */
  host: string;
  /** `http(s)://127.0.0.1:PORT` */
  url: string;
  /** PEM of the TLS certificate (self-signed, so also its CA) when `tls`. */
  caPem?: string | undefined;
  caFile?: string | undefined;
  /** Storage root, to inspect what the registry holds. */
  dir: string;
  /** The config.yml: start a second instance with it, e.g. inside a network namespace. */
  configFile: string;
  users: Record<string, string>;
  /** Token requests served so far (token auth). */
  tokenRequests: () => number;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (released before returning: tiny race, retried by callers). */
export async function freePort(): Promise<number> {
  const srv = createNetServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as AddressInfo).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

/** A self-signed certificate for 127.0.0.1/localhost (RSA for the token signer, EC for TLS). */
export async function makeCert(dir: string, name: string, kind: 'rsa' | 'ec' = 'ec', dnsNames: readonly string[] = []): Promise<{ cert: string; key: string; certPem: string; keyPem: string }> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const keyArgs = kind === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  await exec('openssl', ['req', '-x509', ...keyArgs, '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`, '-addext', `subjectAltName=IP:127.0.0.1,DNS:localhost${dnsNames.map((n) => `,DNS:${n}`).join('')}`]);
  return { cert, key, certPem: await readFile(cert, 'utf8'), keyPem: await readFile(key, 'utf8') };
}

/** A bcrypt (`$2b$`) htpasswd line; libcrypt does the hashing through perl's crypt(). */
async function htpasswdLine(user: string, password: string): Promise<string> {
  const alphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(22);
  // The 22nd salt character only carries 2 bits: pick one of the canonical four.
  const salt = [...bytes.subarray(0, 21)].map((b) => alphabet[b % 64]).join('') + '.Oeu'[bytes[21]! % 4];
  const { stdout } = await exec('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, `$2b$05$${salt}`]);
  if (!stdout.startsWith('$2b$')) throw new Error(`perl crypt() did not produce bcrypt: ${stdout}`);
  return `${user}:${stdout}`;
}

interface TokenServer {
  url: string;
  count: () => number;
  close(): Promise<void>;
}

async function startTokenServer(signer: { keyPem: string; certPem: string }, service: string, issuer: string, users: Record<string, string>, anonymousPull: boolean): Promise<TokenServer> {
  const x5c = signer.certPem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  let count = 0;
  const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');
  const server: Server = createServer((req, res) => {
    count++;
    const url = new URL(req.url ?? '/', 'http://x');
    let user: string | undefined;
    const auth = req.headers.authorization;
    if (auth) {
      const [u, ...rest] = Buffer.from(auth.replace(/^Basic /i, ''), 'base64').toString('utf8').split(':');
      if (!u || users[u] === undefined || users[u] !== rest.join(':')) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"invalid credentials"}');
        return;
      }
      user = u;
    }
    const access = url.searchParams.getAll('scope').flatMap((s) => {
      const [type, name, actions] = s.split(':');
      const granted = (actions ?? '').split(',').filter((a) => (user ? true : anonymousPull && a === 'pull'));
      return granted.length ? [{ type, name, actions: granted }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [x5c] };
    const claims = { iss: issuer, sub: user ?? '', aud: url.searchParams.get('service') ?? service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign('RSA-SHA256').update(signingInput).sign(signer.keyPem);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `${signingInput}.${b64url(sig)}`, expires_in: 300 }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
    count: () => count,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

function probe(url: string, caPem: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(`${url}/v2/`, { ca: caPem, timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** Starts a registry; it is stopped (and its storage removed) when the test ends. */
export async function startRegistry(t: Pick<TestContext, 'after'>, opts: RegistryServerOptions = {}): Promise<RegistryServer> {
  // Not tempDir(): the directory must outlive the registry process, so one hook stops the
  // registry and then removes it (after-hooks run in registration order).
  const dir = await mkdtemp(join(tmpdir(), 'htvend-registry-'));
  const cleanups: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c();
    await rm(dir, { recursive: true, force: true });
  });
  const users = opts.users ?? { alice: 'wonderland-secret' };
  const storage = join(dir, 'storage');
  let tlsCert: Awaited<ReturnType<typeof makeCert>> | undefined;
  if (opts.tls) tlsCert = await makeCert(dir, 'registry', 'ec', opts.tlsNames);
  let token: TokenServer | undefined;
  const authLines: string[] = [];
  if (opts.auth === 'basic') {
    const htpasswd = join(dir, 'htpasswd');
    await writeFile(htpasswd, (await Promise.all(Object.entries(users).map(([u, p]) => htpasswdLine(u, p)))).join('\n') + '\n');
    authLines.push('auth:', '  htpasswd:', '    realm: htvend-test', `    path: ${htpasswd}`);
  } else if (opts.auth === 'token') {
    const signer = await makeCert(dir, 'token-signer', 'rsa');
    token = await startTokenServer(signer, 'htvend-test-registry', 'htvend-test-issuer', users, opts.anonymousPull ?? true);
    cleanups.push(() => token!.close());
    authLines.push('auth:', '  token:', `    realm: ${token.url}`, '    service: htvend-test-registry', '    issuer: htvend-test-issuer', `    rootcertbundle: ${signer.cert}`);
  }

  for (let tries = 0; ; tries++) {
    const port = await freePort();
    const config = [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${storage}`,
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '  secret: htvend-test-secret',
      ...(tlsCert ? ['  tls:', `    certificate: ${tlsCert.cert}`, `    key: ${tlsCert.key}`] : []),
      ...authLines,
    ].join('\n');
    const configFile = join(dir, 'config.yml');
    await writeFile(configFile, config + '\n');
    const child = spawn('docker-registry', ['serve', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
    const exited = once(child, 'exit');
    const url = `${tlsCert ? 'https' : 'http'}://127.0.0.1:${port}`;
    let up = false;
    for (let i = 0; i < 100 && child.exitCode === null; i++) {
      if (await probe(url, tlsCert?.certPem)) {
        up = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!up) {
      child.kill('SIGKILL');
      await exited;
      if (tries < 3) continue;
      throw new Error(`docker-registry did not start on ${url}: ${stderr}`);
    }
    const stop = async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    };
    cleanups.push(stop);
    return {
      host: `127.0.0.1:${port}`,
      url,
      caPem: tlsCert?.certPem,
      caFile: tlsCert?.cert,
      dir: storage,
      configFile,
      users,
      tokenRequests: () => token?.count() ?? 0,
      stop,
    };
  }
}

export interface FaultRule {
  method?: string;
  /** Matched against the request path (with query). */
  path: RegExp;
  /** Answer with this status (and an OCI-style error body) instead of forwarding. */
  status?: number;
  /** Extra headers of that answer (e.g. Retry-After); a function is called per answer. */
  headers?: Record<string, string> | (() => Record<string, string>) | undefined;
  /** Forward, but cut both connections after this many request-body bytes. */
  dropAfterBytes?: number;
  /** How many requests this rule hits (default: all). */
  times?: number;
}

export interface FaultProxy {
  /** `127.0.0.1:PORT` */
  host: string;
  /** Requests seen, as `METHOD path`. */
  requests: string[];
  add(rule: FaultRule): void;
}

/**
 * A tiny plain-HTTP reverse proxy in front of `target` (`http://127.0.0.1:PORT`) that can
 * answer chosen requests with an error status or drop the connection mid-body: the way to
 * show a registry or S3 server misbehaving without touching the real server.
 */
export async function startFaultProxy(t: Pick<TestContext, 'after'>, target: string): Promise<FaultProxy> {
  const rules: (FaultRule & { hits: number })[] = [];
  const requests: string[] = [];
  const up = new URL(target);
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    requests.push(`${req.method} ${path}`);
    const rule = rules.find((r) => (!r.method || r.method === req.method) && r.path.test(path) && (r.times === undefined || r.hits < r.times));
    if (rule) rule.hits++;
    if (rule?.status !== undefined) {
      req.resume();
      const extra = typeof rule.headers === 'function' ? rule.headers() : (rule.headers ?? {});
      req.on('end', () => res.writeHead(rule.status!, { 'content-type': 'application/json', ...extra }).end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'injected fault' }] })));
      return;
    }
    // The Host header is kept: the registry builds upload Locations from it, so they point back here.
    const fwd = httpRequest({ host: up.hostname, port: up.port, method: req.method, path, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    fwd.on('error', () => res.destroy());
    if (rule?.dropAfterBytes !== undefined) {
      let n = 0;
      req.on('data', (c: Buffer) => {
        n += c.length;
        if (n >= rule.dropAfterBytes!) {
          fwd.destroy();
          req.socket.destroy();
        } else fwd.write(c);
      });
      req.on('end', () => fwd.end());
    } else {
      req.pipe(fwd);
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(
    () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections(); // keep-alive client connections would hold close() open
      }),
  );
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    add: (rule) => void rules.push({ ...rule, hits: 0 }),
  };
}

/**
 * Upload sessions of `repo` that still hold data. (distribution 2.8 leaves an empty
 * `hashstates/` directory behind when a session is DELETEd; the `data` file is what goes.)
 */
export async function openUploads(reg: RegistryServer, repo: string): Promise<string[]> {
  const dir = join(reg.dir, 'docker/registry/v2/repositories', repo, '_uploads');
  const open: string[] = [];
  for (const id of await readdir(dir).catch((): string[] => [])) {
    if ((await readdir(join(dir, id)).catch((): string[] => [])).includes('data')) open.push(id);
  }
  return open;
}

