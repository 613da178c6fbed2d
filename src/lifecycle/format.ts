/** Byte counts for people: `4.1 kB`, `540 kB`, `1.2 GB` (SI units, as `du --si`). */
export function formatBytes(n: number | undefined): string {
  if (n === undefined) return 'size unknown';
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
