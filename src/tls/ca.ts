/**
 * The interception CA (SPEC §3): generated per run, or loaded from / saved to the Go flags
 * `--tls-cert-pem` / `--tls-key-pem` / `--tls-generate-if-missing`. It signs one leaf
 * certificate per SNI name or IP, cached per host; the cache stores the *promise*, so
 * concurrent first requests for a host share one generation.
 *
 * Keys are ECDSA P-256 (node:crypto): generating and signing take about a millisecond, where
 * RSA-2048 key generation takes ~50-200 ms per host. All leaves share one key pair made with
 * the CA (as mockttp does): per-host keys buy nothing when the CA key signs them all anyway.
 * Certificates have random serials, backdated notBefore (clock skew between htvend and a
 * container or VM) and short validity (a leaked leaf is useless soon).
 */
import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFile, mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier, AttributeTypeAndValue, AttributeValue, AuthorityKeyIdentifier, BasicConstraints, Certificate,
  ExtendedKeyUsage, Extension, Extensions, GeneralName, KeyIdentifier, KeyUsage, KeyUsageFlags, Name,
  RelativeDistinguishedName, SubjectAlternativeName, SubjectKeyIdentifier, SubjectPublicKeyInfo, TBSCertificate,
  Validity, Version, id_ce_authorityKeyIdentifier, id_ce_basicConstraints, id_ce_extKeyUsage, id_ce_keyUsage,
  id_ce_subjectAltName, id_ce_subjectKeyIdentifier, id_kp_serverAuth,
} from '@peculiar/asn1-x509';
import { HtvendError, describeError } from '../util/errors.js';

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

// --- X.509 structures (RFC 5280) from the typed ASN.1 schemas of @peculiar/asn1-x509, signed
// with node:crypto. The schemas alone, not @peculiar/x509: its WebCrypto layer pulls in
// tsyringe and reflect-metadata (~19 MiB of RSS at load) for nothing we need.

/** A Name of CN (and O) in UTF8String. */
function nameOf(cn: string, o?: string): Name {
  const rdn = (type: string, value: string) =>
    new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value: new AttributeValue({ utf8String: value }) })]);
  return new Name([rdn('2.5.4.3', cn), ...(o ? [rdn('2.5.4.10', o)] : [])]);
}

function extension(extnID: string, critical: boolean, value: object): Extension {
  return new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

/**
 * The subject Name and subjectKeyIdentifier (if any) of a certificate. The parsed Name keeps
 * each value's string type, so it re-encodes to the same bytes as the leaves' issuer (what
 * chain building by byte comparison, as in Go, needs).
 */
function subjectAndKeyId(certDer: Buffer): { subject: Name; keyId?: ArrayBuffer | undefined } {
  const tbs = AsnConvert.parse(certDer, Certificate).tbsCertificate;
  const ski = tbs.extensions?.find((e) => e.extnID === id_ce_subjectKeyIdentifier);
  const keyId = ski ? AsnConvert.parse(ski.extnValue, SubjectKeyIdentifier).buffer : undefined;
  return { subject: tbs.subject, keyId };
}

/** How a CA key signs: the AlgorithmIdentifier to write and the digest to sign with. */
interface Signer {
  key: KeyObject;
  hash: 'sha256' | 'sha384';
  algorithm: AlgorithmIdentifier;
}

function signerFor(key: KeyObject, where: string): Signer {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    // ECDSA AlgorithmIdentifiers have no parameters (RFC 5758 §3.2); RSA ones a NULL.
    if (curve === 'prime256v1' || curve === 'P-256') return { key, hash: 'sha256', algorithm: new AlgorithmIdentifier({ algorithm: '1.2.840.10045.4.3.2' }) };
    if (curve === 'secp384r1' || curve === 'P-384') return { key, hash: 'sha384', algorithm: new AlgorithmIdentifier({ algorithm: '1.2.840.10045.4.3.3' }) };
    throw new HtvendError('INPUT', `${where}: unsupported EC curve ${curve ?? '?'} (use P-256 or P-384)`);
  }
  if (key.asymmetricKeyType === 'rsa') return { key, hash: 'sha256', algorithm: new AlgorithmIdentifier({ algorithm: '1.2.840.113549.1.1.11', parameters: null }) };
  throw new HtvendError('INPUT', `${where}: unsupported key type ${key.asymmetricKeyType ?? '?'} (use ECDSA or RSA)`);
}

function randomSerial(): Buffer {
  // 16 random bytes, top bit clear (a positive INTEGER, as RFC 5280 wants) and the next one
  // set so the encoding is minimal whatever the draw (strict DER parsers such as Go's check).
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x40;
  return b;
}

interface CertFields {
  issuer: Name;
  subject: Name;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  extensions: Extension[];
  signer: Signer;
}

/** A signed certificate (DER). */
function makeCertificate(f: CertFields): Buffer {
  const tbsCertificate = new TBSCertificate({
    version: Version.v3,
    serialNumber: toArrayBuffer(randomSerial()),
    signature: f.signer.algorithm,
    issuer: f.issuer,
    validity: new Validity({ notBefore: f.notBefore, notAfter: f.notAfter }),
    subject: f.subject,
    subjectPublicKeyInfo: AsnConvert.parse(f.publicKey.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo),
    extensions: new Extensions(f.extensions),
  });
  const signature = sign(f.signer.hash, Buffer.from(AsnConvert.serialize(tbsCertificate)), f.signer.key);
  const cert = new Certificate({ tbsCertificate, signatureAlgorithm: f.signer.algorithm, signatureValue: toArrayBuffer(signature) });
  return Buffer.from(AsnConvert.serialize(cert));
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
function keyIdOf(publicKey: KeyObject): ArrayBuffer {
  const spki = AsnConvert.parse(publicKey.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo);
  return toArrayBuffer(createHash('sha1').update(Buffer.from(spki.subjectPublicKey)).digest());
}

/** A Buffer's bytes as an ArrayBuffer of their own (a Buffer may be a view into a pool). */
function toArrayBuffer(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

function toPem(der: Buffer, label: string): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

const newEcKeys = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

/** Generates a new CA (ECDSA P-256, random serial, backdated a day). */
export async function createCa(opts: CreateCaOptions = {}): Promise<CertificateAuthority & CaMaterial> {
  const keys = newEcKeys();
  const now = Date.now();
  const name = nameOf(opts.commonName ?? 'htvend interception CA', 'htvend');
  const keyId = keyIdOf(keys.publicKey);
  const notAfter = new Date(now + (opts.validityDays ?? 30) * DAY);
  const der = makeCertificate({
    issuer: name,
    subject: name,
    notBefore: new Date(now - DAY),
    notAfter,
    publicKey: keys.publicKey,
    signer: signerFor(keys.privateKey, 'CA'),
    extensions: [
      extension(id_ce_basicConstraints, true, new BasicConstraints({ cA: true, pathLenConstraint: 0 })),
      extension(id_ce_keyUsage, true, new KeyUsage(KeyUsageFlags.digitalSignature | KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign)),
      extension(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(keyId)),
    ],
  });
  const keyPem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const ca = caFromParts(toPem(der, 'CERTIFICATE'), { subject: name, keyId, notAfter }, signerFor(keys.privateKey, 'CA'));
  return Object.assign(ca, { keyPem });
}

function caFromParts(certPem: string, caCert: { subject: Name; keyId?: ArrayBuffer | undefined; notAfter: Date }, signer: Signer): CertificateAuthority & { certPem: string } {
  // One leaf key pair for every host (see file comment).
  const leafKeys = newEcKeys();
  const leafKeyPem = leafKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const aki = caCert.keyId ? [extension(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(caCert.keyId) }))] : [];
  const cache = new Map<string, Promise<tls.SecureContext>>();

  async function mint(host: string): Promise<tls.SecureContext> {
    const now = Date.now();
    const ip = isIP(host) !== 0;
    const san = ip ? new GeneralName({ iPAddress: canonicalIp(host) }) : new GeneralName({ dNSName: host });
    const der = makeCertificate({
      issuer: caCert.subject,
      subject: nameOf(ip || host.length > 64 ? 'htvend' : host),
      notBefore: new Date(now - LEAF_BACKDATE_MS),
      notAfter: new Date(Math.min(now + LEAF_VALIDITY_MS, caCert.notAfter.getTime())),
      publicKey: leafKeys.publicKey,
      signer,
      extensions: [
        extension(id_ce_basicConstraints, true, new BasicConstraints()),
        extension(id_ce_keyUsage, true, new KeyUsage(KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment)),
        extension(id_ce_extKeyUsage, false, new ExtendedKeyUsage([id_kp_serverAuth])),
        extension(id_ce_subjectAltName, false, new SubjectAlternativeName([san])),
        ...aki,
      ],
    });
    return tls.createSecureContext({ key: leafKeyPem, cert: toPem(der, 'CERTIFICATE') + certPem });
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

/**
 * `ip` as the converter of GeneralName.iPAddress reads it: IPv6 written out in hex groups
 * (its parser knows `::` but not an embedded IPv4 such as `::ffff:1.2.3.4`; the URL parser
 * rewrites that to `::ffff:102:304`).
 */
function canonicalIp(ip: string): string {
  return isIP(ip) === 6 ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}

/** Builds a CA from existing PEM material (certificate + private key). */
export async function caFromPem(m: CaMaterial, where = 'CA'): Promise<CertificateAuthority> {
  let cert: X509Certificate;
  let parts: { subject: Name; keyId?: ArrayBuffer | undefined };
  try {
    cert = new X509Certificate(m.certPem);
    parts = subjectAndKeyId(cert.raw);
  } catch (e) {
    throw new HtvendError('INPUT', `${where}: not a readable PEM certificate (${describeError(e)})`, { cause: e });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(m.keyPem);
  } catch (e) {
    throw new HtvendError('INPUT', `${where}: not a readable PEM private key (${describeError(e)})`, { cause: e });
  }
  const certPem = toPem(cert.raw, 'CERTIFICATE');
  return caFromParts(certPem, { ...parts, notAfter: new Date(cert.validTo) }, signerFor(key, where));
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
