/**
 * Raw PAX extended headers, for the one case tar-stream cannot write: binary values.
 * tar-stream encodes PAX records as UTF-8 strings, so an xattr such as `security.capability`
 * (arbitrary bytes) would come out mangled; here records are built from Buffers, byte exact,
 * as GNU tar, containerd and BuildKit read them (`SCHILY.xattr.<name>=<raw bytes>`).
 */

/** One `"<len> <key>=<value>\n"` record; `len` counts its own digits. */
function record(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = body.length + String(body.length).length;
  if (String(len).length !== String(body.length).length) len = body.length + String(len).length;
  return Buffer.concat([Buffer.from(String(len), 'ascii'), body]);
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/** A 512-byte ustar header block (ASCII name ≤ 100 bytes). */
export function ustarHeader(h: { name: string; size: number; mode: number; mtime: number; typeflag: string; uid?: number; gid?: number }): Buffer {
  const b = Buffer.alloc(512);
  b.write(h.name.slice(0, 100), 0, 'ascii');
  b.write(octal(h.mode & 0o7777, 8), 100, 'ascii');
  b.write(octal(h.uid ?? 0, 8), 108, 'ascii');
  b.write(octal(h.gid ?? 0, 8), 116, 'ascii');
  b.write(octal(h.size, 12), 124, 'ascii');
  b.write(octal(h.mtime, 12), 136, 'ascii');
  b.write('        ', 148, 'ascii'); // checksum field counts as spaces while summing
  b.write(h.typeflag, 156, 'ascii');
  b.write('ustar\0', 257, 'ascii');
  b.write('00', 263, 'ascii');
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return b;
}

/** A complete PAX extended header entry (typeflag `x`): header block, records, padding. */
export function paxEntry(records: [string, Buffer][], mtime: number): Buffer {
  const data = Buffer.concat(records.map(([k, v]) => record(k, v)));
  const pad = (512 - (data.length % 512)) % 512;
  return Buffer.concat([ustarHeader({ name: 'PaxHeader', size: data.length, mode: 0o644, mtime, typeflag: 'x' }), data, Buffer.alloc(pad)]);
}
