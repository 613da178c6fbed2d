/**
 * A passwordless PKCS#12 truststore (SPEC §4: `JKS_KEYSTORE_FILE`) that Java 17 reads with
 * no password (`-Djavax.net.ssl.trustStore=F -Djavax.net.ssl.trustStoreType=PKCS12`, no
 * `trustStorePassword`).
 *
 * Java's PKCS12KeyStore only treats a certBag as a trusted certificate entry when the bag
 * carries Oracle's "trusted key usage" attribute (OID 2.16.840.1.113894.746875.1.1) holding
 * the key purposes it is trusted for, here anyExtendedKeyUsage (2.5.29.37.0). And it only
 * loads without a password when there is no MAC and the SafeContents are not encrypted.
 * openssl-made stores lack the attribute (Java then lists 0 entries), so we build the DER
 * ourselves with asn1js: the structure is small and fixed (RFC 7292):
 *
 *   PFX { version 3, authSafe ContentInfo(data, OCTET STRING(
 *     AuthenticatedSafe SEQUENCE { ContentInfo(data, OCTET STRING(
 *       SafeContents SEQUENCE { SafeBag(certBag, CertBag(x509Certificate, cert DER),
 *         { friendlyName, trustedKeyUsage }) … })) })) }   -- no macData
 *
 * This is what the Go tool gets from `pkcs12.Passwordless.EncodeTrustStoreEntries`.
 */
import * as asn1js from 'asn1js';
import { writeFile } from 'node:fs/promises';
import { HtvendError } from '../util/errors.js';

const OID_DATA = '1.2.840.113549.1.7.1';
const OID_CERT_BAG = '1.2.840.113549.1.12.10.1.3';
const OID_X509_CERT = '1.2.840.113549.1.9.22.1';
const OID_FRIENDLY_NAME = '1.2.840.113549.1.9.20';
/** Oracle's trusted-key-usage attribute, read by Java's PKCS12KeyStore. */
const OID_ORACLE_TRUSTED_KEY_USAGE = '2.16.840.1.113894.746875.1.1';
const OID_ANY_EXTENDED_KEY_USAGE = '2.5.29.37.0';

/** DER bodies of every `CERTIFICATE` block in a PEM text, in order. */
export function pemCertificates(pem: string): Buffer[] {
  const out: Buffer[] = [];
  const re = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
  for (let m = re.exec(pem); m; m = re.exec(pem)) {
    out.push(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  }
  return out;
}

function contentInfoData(inner: ArrayBuffer): asn1js.Sequence {
  return new asn1js.Sequence({
    value: [
      new asn1js.ObjectIdentifier({ value: OID_DATA }),
      new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [new asn1js.OctetString({ valueHex: inner })] }),
    ],
  });
}

function certSafeBag(certDer: Buffer, alias: string): asn1js.Sequence {
  const certBag = new asn1js.Sequence({
    value: [
      new asn1js.ObjectIdentifier({ value: OID_X509_CERT }),
      new asn1js.Constructed({
        idBlock: { tagClass: 3, tagNumber: 0 },
        value: [new asn1js.OctetString({ valueHex: new Uint8Array(certDer).buffer })],
      }),
    ],
  });
  const attributes = new asn1js.Set({
    value: [
      new asn1js.Sequence({
        value: [new asn1js.ObjectIdentifier({ value: OID_FRIENDLY_NAME }), new asn1js.Set({ value: [new asn1js.BmpString({ value: alias })] })],
      }),
      new asn1js.Sequence({
        value: [
          new asn1js.ObjectIdentifier({ value: OID_ORACLE_TRUSTED_KEY_USAGE }),
          new asn1js.Set({ value: [new asn1js.ObjectIdentifier({ value: OID_ANY_EXTENDED_KEY_USAGE })] }),
        ],
      }),
    ],
  });
  return new asn1js.Sequence({
    value: [
      new asn1js.ObjectIdentifier({ value: OID_CERT_BAG }),
      new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [certBag] }),
      attributes,
    ],
  });
}

function checkCertificate(der: Buffer, index: number): void {
  const parsed = asn1js.fromBER(new Uint8Array(der));
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Sequence)) {
    throw new HtvendError('INPUT', `truststore: PEM certificate #${index + 1} is not valid DER`);
  }
}

/**
 * DER bytes of a passwordless PKCS#12 truststore holding every certificate in `caPem`
 * (aliases `cert0`, `cert1`, … like the Go tool). Throws INPUT when `caPem` has none.
 */
export function pkcs12TruststoreFromPem(caPem: string): Buffer {
  const certs = pemCertificates(caPem);
  if (certs.length === 0) throw new HtvendError('INPUT', 'truststore: no CERTIFICATE block in the CA PEM');
  certs.forEach(checkCertificate);
  const safeContents = new asn1js.Sequence({ value: certs.map((c, i) => certSafeBag(c, `cert${i}`)) });
  const authenticatedSafe = new asn1js.Sequence({ value: [contentInfoData(safeContents.toBER())] });
  const pfx = new asn1js.Sequence({
    value: [new asn1js.Integer({ value: 3 }), contentInfoData(authenticatedSafe.toBER())],
  });
  return Buffer.from(pfx.toBER());
}

/** Writes the truststore for `caPem` to `path` (read-only for everyone who can reach it). */
export async function writePkcs12Truststore(path: string, caPem: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  await writeFile(path, pkcs12TruststoreFromPem(caPem), { mode: 0o444, signal: opts.signal });
}
