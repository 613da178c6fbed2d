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

// --- DER, just enough for X.509 certificates (RFC 5280). Written here rather than loading an
// ASN.1 library: @peculiar/x509 (with tsyringe and reflect-metadata) cost ~20 MiB of RSS in
// every htvend process, for a few fixed structures.

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const seq = (...items: Buffer[]) => tlv(0x30, ...items);
const derNull = Buffer.from([0x05, 0x00]);

/** A non-negative INTEGER from big-endian bytes, minimally encoded. */
function derUint(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const b = bytes.subarray(i);
  return tlv(0x02, b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [40 * a! + b!];
  for (const n of rest) {
    const groups = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) groups.unshift(0x80 | (v & 0x7f));
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
function derTime(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '') + 'Z';
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(digits.slice(2), 'ascii')) : tlv(0x18, Buffer.from(digits, 'ascii'));
}

/** A Name of CN (and O) in UTF8String. */
function derName(cn: string, o?: string): Buffer {
  const rdn = (type: string, value: string) => tlv(0x31, seq(oid(type), tlv(0x0c, Buffer.from(value, 'utf8'))));
  return seq(rdn('2.5.4.3', cn), ...(o ? [rdn('2.5.4.10', o)] : []));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [Buffer.from([0x01, 0x01, 0xff])] : []), tlv(0x04, value));
}

/** One TLV of `der` at `offset`: its tag, where its content starts and where it ends. */
function readTlv(der: Buffer, offset: number): { tag: number; start: number; end: number } {
  const tag = der[offset]!;
  let len = der[offset + 1]!;
  let start = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  if (start + len > der.length) throw new Error('truncated DER');
  return { tag, start, end: start + len };
}

/** The subject Name (as encoded) and subjectKeyIdentifier (if any) of a certificate. */
function subjectAndKeyId(certDer: Buffer): { subject: Buffer; keyId?: Buffer | undefined } {
  const cert = readTlv(certDer, 0);
  const tbs = readTlv(certDer, cert.start);
  const fields: { tag: number; start: number; end: number; from: number }[] = [];
  for (let off = tbs.start; off < tbs.end; ) {
    const f = readTlv(certDer, off);
    fields.push({ ...f, from: off });
    off = f.end;
  }
  const i = fields[0]!.tag === 0xa0 ? 1 : 0; // [0] version is optional
  const subjectField = fields[i + 4]!; // serial, signature, issuer, validity, subject
  const subject = certDer.subarray(subjectField.from, subjectField.end);
  const exts = fields.find((f) => f.tag === 0xa3);
  if (!exts) return { subject };
  const list = readTlv(certDer, exts.start);
  for (let off = list.start; off < list.end; ) {
    const ext = readTlv(certDer, off);
    const id = readTlv(certDer, ext.start);
    if (certDer.subarray(ext.start, id.end).equals(oid('2.5.29.14'))) {
      let v = readTlv(certDer, id.end);
      if (v.tag === 0x01) v = readTlv(certDer, v.end); // critical flag
      const inner = readTlv(certDer, v.start); // OCTET STRING inside the extension's OCTET STRING
      return { subject, keyId: Buffer.from(certDer.subarray(inner.start, inner.end)) };
    }
    off = ext.end;
  }
  return { subject };
}

/** How a CA key signs: the AlgorithmIdentifier to write and the digest to sign with. */
interface Signer {
  key: KeyObject;
  hash: 'sha256' | 'sha384';
  algorithm: Buffer;
}

function signerFor(key: KeyObject, where: string): Signer {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1' || curve === 'P-256') return { key, hash: 'sha256', algorithm: seq(oid('1.2.840.10045.4.3.2')) };
    if (curve === 'secp384r1' || curve === 'P-384') return { key, hash: 'sha384', algorithm: seq(oid('1.2.840.10045.4.3.3')) };
    throw new HtvendError('INPUT', `${where}: unsupported EC curve ${curve ?? '?'} (use P-256 or P-384)`);
  }
  if (key.asymmetricKeyType === 'rsa') return { key, hash: 'sha256', algorithm: seq(oid('1.2.840.113549.1.1.11'), derNull) };
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
  issuer: Buffer;
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  extensions: Buffer[];
  signer: Signer;
}

/** A signed certificate (DER). */
function makeCertificate(f: CertFields): Buffer {
  const tbs = seq(
    tlv(0xa0, derUint(Buffer.from([2]))), // v3
    derUint(randomSerial()),
    f.signer.algorithm,
    f.issuer,
    seq(derTime(f.notBefore), derTime(f.notAfter)),
    f.subject,
    f.publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, seq(...f.extensions)),
  );
  const signature = sign(f.signer.hash, tbs, f.signer.key);
  return seq(tbs, f.signer.algorithm, tlv(0x03, Buffer.from([0]), signature));
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
function keyIdOf(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const outer = readTlv(spki, 0);
  const algo = readTlv(spki, outer.start);
  const bits = readTlv(spki, algo.end);
  return createHash('sha1').update(spki.subarray(bits.start + 1, bits.end)).digest();
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
  const name = derName(opts.commonName ?? 'htvend interception CA', 'htvend');
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
      extension('2.5.29.19', true, seq(Buffer.from([0x01, 0x01, 0xff]), derUint(Buffer.from([0])))), // CA, pathLen 0
      extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x01, 0x86]))), // digitalSignature, keyCertSign, cRLSign
      extension('2.5.29.14', false, tlv(0x04, keyId)),
    ],
  });
  const keyPem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const ca = caFromParts(toPem(der, 'CERTIFICATE'), { subject: name, keyId, notAfter }, signerFor(keys.privateKey, 'CA'));
  return Object.assign(ca, { keyPem });
}

function caFromParts(certPem: string, caCert: { subject: Buffer; keyId?: Buffer | undefined; notAfter: Date }, signer: Signer): CertificateAuthority & { certPem: string } {
  // One leaf key pair for every host (see file comment).
  const leafKeys = newEcKeys();
  const leafKeyPem = leafKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const aki = caCert.keyId ? [extension('2.5.29.35', false, seq(tlv(0x80, caCert.keyId)))] : [];
  const cache = new Map<string, Promise<tls.SecureContext>>();

  async function mint(host: string): Promise<tls.SecureContext> {
    const now = Date.now();
    const ip = isIP(host) !== 0;
    const san = ip ? tlv(0x87, ipBytes(host)) : tlv(0x82, Buffer.from(host, 'ascii'));
    const der = makeCertificate({
      issuer: caCert.subject,
      subject: derName(ip || host.length > 64 ? 'htvend' : host),
      notBefore: new Date(now - LEAF_BACKDATE_MS),
      notAfter: new Date(Math.min(now + LEAF_VALIDITY_MS, caCert.notAfter.getTime())),
      publicKey: leafKeys.publicKey,
      signer,
      extensions: [
        extension('2.5.29.19', true, seq()),
        extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x05, 0xa0]))), // digitalSignature, keyEncipherment
        extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))), // serverAuth
        extension('2.5.29.17', false, seq(san)),
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

/** The 4 or 16 bytes of an IP address (IPv6 `::` shorthand and embedded IPv4 allowed). */
function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    text = text.slice(0, -v4[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const hs = head ? head.split(':') : [];
  const ts = tail ? tail.split(':') : [];
  const groups = tail === undefined ? hs : [...hs, ...Array<string>(8 - hs.length - ts.length).fill('0'), ...ts];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** Builds a CA from existing PEM material (certificate + private key). */
export async function caFromPem(m: CaMaterial, where = 'CA'): Promise<CertificateAuthority> {
  let cert: X509Certificate;
  let parts: { subject: Buffer; keyId?: Buffer | undefined };
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
