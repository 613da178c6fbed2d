/**
 * The CA certificates htvend's own upstream connections trust (SPEC §3): Node's bundled
 * roots, the system bundle, and whatever htvend's *own* environment adds through
 * SSL_CERT_FILE, SSL_CERT_DIR and NODE_EXTRA_CA_CERTS (read from the startup snapshot, before
 * the child's environment replaces them with the interception CA).
 */
import { rootCertificates } from 'node:tls';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Where Debian/Ubuntu, Fedora/RHEL and Alpine keep the system bundle. */
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every PEM certificate block in `text`, normalised (CRLF -> LF). */
export function pemCertificates(text: string): string[] {
  return (text.replace(/\r\n/g, '\n').match(PEM_CERT) ?? []).map((c) => c.trim() + '\n');
}

async function certsFromFile(path: string, signal?: AbortSignal): Promise<string[]> {
  try {
    return pemCertificates(await readFile(path, { encoding: 'latin1', signal }));
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
  const seen = new Set<string>(rootCertificates.map((c) => c.trim() + '\n'));
  for (const certs of await Promise.all(files.map((f) => certsFromFile(f, signal)))) {
    for (const c of certs) seen.add(c);
  }
  return [...seen];
}
