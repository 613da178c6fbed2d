/**
 * Content-Encoding negotiation on replay (SPEC §3): the stored blob keeps the bytes as sent
 * on the wire; a client whose Accept-Encoding refuses the recorded coding gets it decoded on
 * the fly.
 */
import { createGunzip, createInflate, createBrotliDecompress } from 'node:zlib';
import type { Transform } from 'node:stream';

const DECODERS: Record<string, () => Transform> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

/**
 * Whether a client sending `acceptEncoding` accepts `coding`. Decision: a request *without*
 * Accept-Encoding accepts only identity. RFC 9110 would allow any coding, but clients that
 * omit the header (curl without --compressed, wget, simple scripts) save the body verbatim
 * and would store gzip bytes under an uncompressed name.
 */
export function acceptsCoding(acceptEncoding: string | undefined, coding: string): boolean {
  const want = coding.toLowerCase() === 'x-gzip' ? 'gzip' : coding.toLowerCase();
  if (want === 'identity' || want === '') return true;
  if (!acceptEncoding) return false;
  let star: number | undefined;
  for (const part of acceptEncoding.split(',')) {
    const [nameRaw, ...params] = part.trim().split(';');
    const name = (nameRaw ?? '').trim().toLowerCase();
    const qp = params.map((p) => p.trim()).find((p) => p.toLowerCase().startsWith('q='));
    const q = qp ? Number(qp.slice(2)) : 1;
    const n = name === 'x-gzip' ? 'gzip' : name;
    if (n === want) return q > 0;
    if (n === '*') star = q;
  }
  return star !== undefined && star > 0;
}

/** A decoder for `coding`, or undefined when we cannot decode it (then it is served as is). */
export function decoderFor(coding: string): Transform | undefined {
  return DECODERS[coding.toLowerCase()]?.();
}
