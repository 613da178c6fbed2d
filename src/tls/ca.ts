/**
 * The interception CA (SPEC §3): generated per run, or loaded from / saved to the Go flags
 * `--tls-cert-pem` / `--tls-key-pem` / `--tls-generate-if-missing`. It signs one leaf
 * certificate per SNI name or IP, cached per host; the cache stores the *promise*, so
 * concurrent first requests for a host share one generation.
 *
 * Keys are ECDSA P-256 (webcrypto): generating and signing take about a millisecond, where
 * RSA-2048 key generation takes ~50-200 ms per host. All leaves share one key pair made with
 * the CA (as mockttp does): per-host keys buy nothing when the CA key signs them all anyway.
 * Certificates have random serials, backdated notBefore (clock skew between htvend and a
 * container or VM) and short validity (a leaked leaf is useless soon).
 */
// @peculiar/x509 resolves its ASN.1 schemas through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import { webcrypto, createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { readFile, mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import * as x509 from '@peculiar/x509';
import { HtvendError, describeError } from '../util/errors.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
// The project compiles without the DOM lib: name webcrypto's types through node:crypto.
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type Algorithm = webcrypto.Algorithm;
type EcdsaParams = webcrypto.EcdsaParams;
const subtle = webcrypto.subtle;

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const HOUR = 3600_000;
const DAY = 24 * HOUR;
/** Leaves are valid from a day ago for a week: enough for any build, short if leaked. */
const LEAF_BACKDATE_MS = DAY;
const LEAF_VALIDITY_MS = 7 * DAY;

/** A CA able to mint TLS server contexts for any host it is asked about. */
export interface CertificateAuthority {
  /** The CA certificate (PEM), to give clients as a trust anchor. */
  readonly certPem: string;
  /** A secure context presenting a leaf for `hostOrIp` (IP SAN for IPs, DNS SAN otherwise). */
  secureContextFor(hostOrIp: string): Promise<tls.SecureContext>;
}

export interface CreateCaOptions {
  /** Subject common name of the CA. */
  commonName?: string;
  /** CA validity; default 30 days (a fresh CA per run is the norm). */
  validityDays?: number;
}

export interface CaMaterial {
  certPem: string;
  keyPem: string;
}

type SigningKeys = { privateKey: CryptoKey; publicKey: CryptoKey; algorithm: Algorithm | EcdsaParams };

function randomSerial(): string {
  // 16 random bytes with the top bit cleared: a positive ASN.1 INTEGER, as RFC 5280 wants.
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

function toPem(der: ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** Generates a new CA (ECDSA P-256, random serial, backdated a day). */
export async function createCa(opts: CreateCaOptions = {}): Promise<CertificateAuthority & CaMaterial> {
  const keys = (await subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${opts.commonName ?? 'htvend interception CA'}, O=htvend`,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + (opts.validityDays ?? 30) * DAY),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const keyPem = toPem(await subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  const ca = await caFromParts(cert, { ...keys, algorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams });
  return Object.assign(ca, { keyPem });
}

/** Imports any PEM private key Node reads (PKCS#8, SEC1 EC, PKCS#1 RSA) as a webcrypto signing key. */
async function importSigningKey(keyPem: string, where: string): Promise<SigningKeys> {
  let ko: KeyObject;
  try {
    ko = createPrivateKey(keyPem);
  } catch (e) {
    throw new HtvendError('INPUT', `${where}: not a readable PEM private key (${describeError(e)})`, { cause: e });
  }
  const pkcs8 = ko.export({ type: 'pkcs8', format: 'der' });
  if (ko.asymmetricKeyType === 'ec') {
    const curve = ko.asymmetricKeyDetails?.namedCurve;
    const namedCurve = curve === 'prime256v1' || curve === 'P-256' ? 'P-256' : curve === 'secp384r1' || curve === 'P-384' ? 'P-384' : undefined;
    if (!namedCurve) throw new HtvendError('INPUT', `${where}: unsupported EC curve ${curve ?? '?'} (use P-256 or P-384)`);
    const alg = { name: 'ECDSA', namedCurve };
    const privateKey = await subtle.importKey('pkcs8', pkcs8, alg, true, ['sign']);
    const jwk = await subtle.exportKey('jwk', privateKey);
    const publicKey = await subtle.importKey('jwk', { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, alg, true, ['verify']);
    return { privateKey, publicKey, algorithm: { name: 'ECDSA', hash: namedCurve === 'P-384' ? 'SHA-384' : 'SHA-256' } as EcdsaParams };
  }
  if (ko.asymmetricKeyType === 'rsa') {
    const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    const privateKey = await subtle.importKey('pkcs8', pkcs8, alg, true, ['sign']);
    const jwk = await subtle.exportKey('jwk', privateKey);
    const publicKey = await subtle.importKey('jwk', { kty: 'RSA', n: jwk.n, e: jwk.e }, alg, true, ['verify']);
    return { privateKey, publicKey, algorithm: alg };
  }
  throw new HtvendError('INPUT', `${where}: unsupported key type ${ko.asymmetricKeyType ?? '?'} (use ECDSA or RSA)`);
}

async function caFromParts(caCert: x509.X509Certificate, caKeys: SigningKeys): Promise<CertificateAuthority & { certPem: string }> {
  const certPem = caCert.toString('pem') + '\n';
  // One leaf key pair for every host (see file comment).
  const leafKeys = (await subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
  const leafKeyPem = toPem(await subtle.exportKey('pkcs8', leafKeys.privateKey), 'PRIVATE KEY');
  const aki = await x509.AuthorityKeyIdentifierExtension.create(caCert, false);
  const cache = new Map<string, Promise<tls.SecureContext>>();

  async function mint(host: string): Promise<tls.SecureContext> {
    const now = Date.now();
    const ip = isIP(host) !== 0;
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: ip ? 'CN=htvend' : `CN=${host.length <= 64 ? host : 'htvend'}`,
      issuer: caCert.subject,
      notBefore: new Date(now - LEAF_BACKDATE_MS),
      notAfter: new Date(Math.min(now + LEAF_VALIDITY_MS, caCert.notAfter.getTime())),
      signingAlgorithm: caKeys.algorithm,
      publicKey: leafKeys.publicKey,
      signingKey: caKeys.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension([{ type: ip ? 'ip' : 'dns', value: host }], false),
        aki,
      ],
    });
    return tls.createSecureContext({ key: leafKeyPem, cert: leaf.toString('pem') + '\n' + certPem });
  }

  return {
    certPem,
    secureContextFor(hostOrIp: string): Promise<tls.SecureContext> {
      const host = hostOrIp.replace(/^\[(.*)\]$/, '$1').toLowerCase();
      let p = cache.get(host);
      if (!p) {
        p = mint(host);
        cache.set(host, p);
        // A failed generation must not poison the cache for later requests.
        p.catch(() => cache.delete(host));
      }
      return p;
    },
  };
}

/** Builds a CA from existing PEM material (certificate + private key). */
export async function caFromPem(m: CaMaterial, where = 'CA'): Promise<CertificateAuthority> {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(m.certPem);
  } catch (e) {
    throw new HtvendError('INPUT', `${where}: not a readable PEM certificate (${describeError(e)})`, { cause: e });
  }
  const keys = await importSigningKey(m.keyPem, where);
  return caFromParts(cert, keys);
}

export interface LoadOrCreateCaOptions {
  /** --tls-cert-pem */
  certPemPath?: string | undefined;
  /** --tls-key-pem */
  keyPemPath?: string | undefined;
  /** --tls-generate-if-missing: create and save the pair when the files do not exist. */
  generateIfMissing?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

async function readIfExists(path: string, signal?: AbortSignal): Promise<string | undefined> {
  try {
    return await readFile(path, { encoding: 'utf8', signal });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new HtvendError('IO', `cannot read ${path}: ${describeError(e)}`, { cause: e });
  }
}

/** Writes a new file exclusively (never replaces one), with `mode`. */
async function writeNew(path: string, data: string, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const fh = await open(path, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode);
  } finally {
    await fh.close();
  }
}

/**
 * The CA for a run: a fresh in-memory one when no paths are given; otherwise the pair read
 * from the files, or (with `generateIfMissing`) a new pair saved there, the key mode 0600.
 */
export async function loadOrCreateCa(opts: LoadOrCreateCaOptions = {}): Promise<CertificateAuthority & { certPem: string }> {
  const { certPemPath, keyPemPath, signal } = opts;
  if (!certPemPath && !keyPemPath) return createCa();
  if (!certPemPath || !keyPemPath) {
    throw new HtvendError('USAGE', '--tls-cert-pem and --tls-key-pem must be given together');
  }
  signal?.throwIfAborted();
  const [certPem, keyPem] = await Promise.all([readIfExists(certPemPath, signal), readIfExists(keyPemPath, signal)]);
  if (certPem !== undefined && keyPem !== undefined) {
    const ca = await caFromPem({ certPem, keyPem }, `${certPemPath} / ${keyPemPath}`);
    return ca as CertificateAuthority & { certPem: string };
  }
  if (certPem !== undefined || keyPem !== undefined) {
    throw new HtvendError('INPUT', `only one of ${certPemPath} and ${keyPemPath} exists; both or neither must`, {
      hint: 'remove the lone file to let --tls-generate-if-missing create a new pair',
    });
  }
  if (!opts.generateIfMissing) {
    throw new HtvendError('NOT_FOUND', `${certPemPath} and ${keyPemPath} do not exist`, { hint: 'pass --tls-generate-if-missing to create them' });
  }
  const ca = await createCa();
  try {
    await writeNew(keyPemPath, ca.keyPem, 0o600);
    await writeNew(certPemPath, ca.certPem, 0o644);
  } catch (e) {
    throw new HtvendError('IO', `cannot write the CA to ${certPemPath} / ${keyPemPath}: ${describeError(e)}`, { cause: e });
  }
  return ca;
}
