/**
 * The CA certificates htvend's own upstream connections trust (SPEC §3): Node's bundled
 * roots, the system bundle, and whatever htvend's *own* environment adds through
 * SSL_CERT_FILE, SSL_CERT_DIR and NODE_EXTRA_CA_CERTS (read from the startup snapshot, before
 * the child's environment replaces them with the interception CA).
 */
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { readdir } from 'node:fs/promises';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';

/** Where Debian/Ubuntu, Fedora/RHEL and Alpine keep the system bundle. */
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every PEM certificate block in `text`, normalised (CRLF -> LF). */
export function pemCertificates(text: string): string[] {
  return (text.replace(/\r\n/g, '\n').match(PEM_CERT) ?? []).map((c) => c.trim() + '\n');
}

/** Certificates by file, with the file's identity when read: reused while it is unchanged. */
const fileCerts = new Map<string, { stamp: string; certs: string[] }>();

/**
 * Read synchronously on purpose: these are small local files (an SSL_CERT_DIR holds ~300), and
 * 300 reads through libuv's thread pool take ~36 ms where plain reads take ~8 ms. A build makes
 * a transport per pull and per step identity, so each file is read once and then only stat'ed
 * (~2 ms for 300), and read again if it changed.
 */
function certsFromFile(path: string): string[] {
  try {
    const st = statSync(path);
    const stamp = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
    const known = fileCerts.get(path);
    if (known?.stamp === stamp) return known.certs;
    const certs = pemCertificates(readFileSync(path, 'latin1'));
    fileCerts.set(path, { stamp, certs });
    return certs;
  } catch {
    // A missing or unreadable file adds nothing, as for curl and OpenSSL.
    return [];
  }
}

export interface TrustedRootsOptions {
  /** htvend's own environment, snapshotted at startup. */
  env: Readonly<Record<string, string | undefined>>;
  /** Extra bundles to read as "the system bundle" (tests). Default: the usual OS locations. */
  systemBundles?: readonly string[];
  signal?: AbortSignal;
}

/** The deduplicated list of PEM roots to pass as `ca` to TLS connections. */
export async function loadTrustedRoots(opts: TrustedRootsOptions): Promise<string[]> {
  const { env, signal } = opts;
  const files = [...(opts.systemBundles ?? SYSTEM_BUNDLES)];
  if (env.SSL_CERT_FILE) files.push(env.SSL_CERT_FILE);
  if (env.NODE_EXTRA_CA_CERTS) files.push(env.NODE_EXTRA_CA_CERTS);
  // SSL_CERT_DIR is a colon-separated list of directories (OpenSSL's convention).
  for (const dir of (env.SSL_CERT_DIR ?? '').split(':').filter(Boolean)) {
    try {
      for (const name of (await readdir(dir)).sort()) files.push(join(dir, name));
    } catch {
      // as above: an unusable directory adds nothing
    }
  }
  signal?.throwIfAborted();
  const seen = new Set<string>(rootCertificates.map((c) => c.trim() + '\n'));
  for (const f of files) for (const c of certsFromFile(f)) seen.add(c);
  return [...seen];
}

/** The base64 body of a PEM certificate: equal for the same DER however the PEM is wrapped. */
function derBase64(pem: string): string {
  return pem.replace(/-----[^-]+-----|\s/g, '');
}

let bundledText: Set<string> | undefined;
let bundledDer: Set<string> | undefined;

/**
 * Whether Node's default root store is exactly its bundled roots plus certificates `ca`
 * holds: not so with --use-openssl-ca / --use-system-ca, or when NODE_EXTRA_CA_CERTS (read
 * by Node at startup) names certificates `ca` lacks.
 */
function defaultStoreWithin(caDer: Set<string>): boolean {
  const flags = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  if (/--use-(openssl|system)-ca/.test(flags)) return false;
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  if (!extra) return true;
  try {
    return pemCertificates(readFileSync(extra, 'latin1')).every((c) => caDer.has(derBase64(c)));
  } catch {
    return true; // Node could not read it either: its store has no extra certificates
  }
}

const contexts = new Map<string, SecureContext>();

/**
 * One TLS context per set of roots (and client pair) for the whole process, shared by the
 * upstream client and the registry transport. `ca` is a list from loadTrustedRoots (Node's
 * bundled roots and more). Given `ca`, Node parses every certificate into a new store
 * (~290 with the system bundle: 45-70 ms); instead the context starts from Node's default
 * store (its bundled roots, parsed once per process in C++) and gets only the certificates
 * that are not among them (~20 for a Debian bundle: ~5 ms). Same trust set; when the default
 * store is something else (see defaultStoreWithin) the context is built from `ca` as before.
 * A context is immutable once made, so sharing it is safe.
 */
export function trustedSecureContext(ca: readonly string[], cert?: string, key?: string): SecureContext {
  const h = createHash('sha256');
  for (const c of ca) h.update(c).update('\0');
  h.update('\x01').update(cert ?? '').update('\0').update(key ?? '');
  const k = h.digest('hex');
  let ctx = contexts.get(k);
  if (ctx) return ctx;
  bundledText ??= new Set(rootCertificates.map((c) => c.trim() + '\n'));
  bundledDer ??= new Set(rootCertificates.map(derBase64));
  const extra: string[] = [];
  const caDer = new Set<string>();
  for (const c of ca) {
    if (bundledText.has(c)) {
      caDer.add(derBase64(c));
      continue;
    }
    const d = derBase64(c);
    caDer.add(d);
    if (!bundledDer.has(d)) extra.push(c);
  }
  const pair = cert ? { cert, key } : {};
  if ([...bundledDer].every((d) => caDer.has(d)) && defaultStoreWithin(caDer)) {
    ctx = createSecureContext(pair);
    // The first addCACert copies the default store (Node's bundled roots) and adds to the copy.
    const native = (ctx as SecureContext & { context: { addCACert(pem: string): void } }).context;
    for (const c of extra) native.addCACert(c);
  } else {
    ctx = createSecureContext({ ca: [...ca], ...pair });
  }
  contexts.set(k, ctx);
  return ctx;
}
