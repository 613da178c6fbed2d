/**
 * The HTTP transport of the registry client: an undici dispatcher that honours the proxy
 * variables of a *given* environment snapshot (not process.env: under htvend the builder's
 * HTTPS_PROXY is htvend's proxy, and its CA is in SSL_CERT_FILE), trusts Node's roots + the
 * system bundle + SSL_CERT_FILE / SSL_CERT_DIR / NODE_EXTRA_CA_CERTS, and implements buildah's
 * `--tls-verify=false` and `--cert-dir` (`*.crt` extra CAs, `*.cert` + `*.key` client pair).
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dispatcher } from 'undici';
import { newEnvHttpProxyAgent } from '../upstream/undici-lite.js';
import { HtvendError, describeError } from '../util/errors.js';
import { loadTrustedRoots, pemCertificates, trustedSecureContext } from '../upstream/roots.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface TransportOptions {
  /** Environment snapshot to read proxy and CA variables from. */
  env: Env;
  /** `false` skips certificate verification (buildah `--tls-verify=false`). Default true. */
  tlsVerify?: boolean | undefined;
  /** buildah `--cert-dir`: `*.crt` CA certificates, `*.cert`/`*.key` client certificate pairs. */
  certDir?: string | undefined;
  /** Extra trusted roots (PEM). */
  extraRoots?: readonly string[] | undefined;
  signal?: AbortSignal | undefined;
}

function envVar(env: Env, name: string): string {
  return env[name.toLowerCase()] ?? env[name.toUpperCase()] ?? '';
}

interface CertDirContents {
  cas: string[];
  cert?: string | undefined;
  key?: string | undefined;
}

async function readCertDir(dir: string, signal?: AbortSignal): Promise<CertDirContents> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (e) {
    throw new HtvendError('USAGE', `--cert-dir ${dir}: ${describeError(e)}`, { cause: e });
  }
  const out: CertDirContents = { cas: [] };
  for (const name of names) {
    const path = join(dir, name);
    if (name.endsWith('.crt')) out.cas.push(...pemCertificates(await readFile(path, { encoding: 'latin1', signal })));
    if (name.endsWith('.cert') && !out.cert) {
      const keyPath = path.slice(0, -'.cert'.length) + '.key';
      if (!names.includes(keyPath.slice(dir.length + 1))) {
        throw new HtvendError('USAGE', `--cert-dir ${dir}: client certificate ${name} has no matching ${name.slice(0, -5)}.key`);
      }
      out.cert = await readFile(path, { encoding: 'latin1', signal });
      out.key = await readFile(keyPath, { encoding: 'latin1', signal });
    }
  }
  return out;
}

/**
 * Builds the dispatcher. Connections are kept alive per origin (undici pools), so the many
 * small requests of an export reuse a handful of TLS sessions.
 */
export async function createTransport(opts: TransportOptions): Promise<Dispatcher> {
  const roots = await loadTrustedRoots({ env: opts.env, signal: opts.signal });
  const certDir = opts.certDir ? await readCertDir(opts.certDir, opts.signal) : { cas: [] };
  const ca = [...roots, ...certDir.cas, ...(opts.extraRoots ?? [])];
  const tls = {
    secureContext: trustedSecureContext(ca, certDir.cert, certDir.key),
    rejectUnauthorized: opts.tlsVerify !== false,
  };
  return newEnvHttpProxyAgent({
    // Empty strings (not undefined) so undici never falls back to process.env.
    httpProxy: envVar(opts.env, 'http_proxy'),
    httpsProxy: envVar(opts.env, 'https_proxy'),
    noProxy: envVar(opts.env, 'no_proxy'),
    // http:// targets go to the proxy as absolute-form requests (as curl sends them), not
    // through a CONNECT tunnel: htvend only intercepts TLS inside CONNECT.
    proxyTunnel: false,
    connect: tls,
    requestTls: tls,
    proxyTls: { secureContext: trustedSecureContext(ca), rejectUnauthorized: true },
    // Large uploads run for minutes; idle sockets are closed quickly enough.
    headersTimeout: 300_000,
    bodyTimeout: 300_000,
  });
}
