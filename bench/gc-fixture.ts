/** Fixture for bench/gc-bench.sh: DIR/blobs with N small blobs, DIR/locks with L lockfiles referencing ~90% of them. */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const [dir, nText, lText] = process.argv.slice(2);
const n = Number(nText);
const l = Number(lText);
const blobs = join(dir!, 'blobs');
const locks = join(dir!, 'locks');
await mkdir(blobs, { recursive: true });
await mkdir(locks, { recursive: true });
const digests: string[] = [];
const pending: Promise<void>[] = [];
for (let i = 0; i < n; i++) {
  const b = randomBytes(64 + (i % 200));
  const d = createHash('sha256').update(b).digest('hex');
  digests.push(d);
  pending.push(writeFile(join(blobs, d), b));
  if (pending.length >= 256) await Promise.all(pending.splice(0));
}
await Promise.all(pending);
const referenced = Math.floor(n * 0.9);
const per = Math.ceil((referenced / l) * 1.2); // 20% overlap between neighbours
for (let j = 0; j < l; j++) {
  const start = Math.floor((j * referenced) / l);
  const obj: Record<string, { Sha256: string; Headers: Record<string, string> }> = {};
  for (let k = start; k < Math.min(start + per, referenced); k++) obj[`https://bench.example/${j}/${k}`] = { Sha256: digests[k]!, Headers: { 'Content-Length': String(64 + (k % 200)) } };
  await writeFile(join(locks, `lock-${String(j).padStart(2, '0')}.json`), JSON.stringify(obj, null, 2));
}
console.log(`fixture: ${n} blobs, ${l} lockfiles referencing ${referenced}`);
