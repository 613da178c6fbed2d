/**
 * What makes the supply-chain outputs reproducible: time comes from SOURCE_DATE_EPOCH
 * (https://reproducible-builds.org/specs/source-date-epoch/), never the clock, and
 * identifiers are derived from the content they name.
 */
import { createHash } from 'node:crypto';
import { HtvendError } from '../util/errors.js';

/**
 * SOURCE_DATE_EPOCH as a Date, or undefined when it is unset (outputs then leave optional
 * timestamps out, and SPDX's required one is the epoch: the same inputs still give the same
 * bytes). A malformed value is a USAGE error rather than a silent clock fallback.
 */
export function sourceDate(env: Readonly<Record<string, string | undefined>>): Date | undefined {
  const v = env['SOURCE_DATE_EPOCH'];
  if (v === undefined || v === '') return undefined;
  if (!/^\d{1,12}$/.test(v)) throw new HtvendError('USAGE', `SOURCE_DATE_EPOCH=${JSON.stringify(v)}: want a whole number of seconds since 1970`);
  return new Date(Number(v) * 1000);
}

/** ISO 8601 to the second, UTC (`2024-01-02T03:04:05Z`), the form both SBOM schemas accept. */
export function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A name-based UUID (RFC 9562 version 5: SHA-1 of namespace + name) for content-derived serials. */
export function uuidV5(name: string, namespace = HTVEND_NAMESPACE): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const h = createHash('sha1').update(ns).update(name).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** uuidV5('htvend', URL namespace): a fixed namespace of our own. */
const HTVEND_NAMESPACE = '1f0c1a9e-6b1e-5d3b-9c3a-6a1e7d2f4b10';

export function sha256Of(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
