/** `--min-age 24h`: Go-style durations (`90s`, `30m`, `1h30m`, `7d`, `0`) → milliseconds. */
import { HtvendError } from '../util/errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export function parseDuration(s: string, flag: string): number {
  if (s.trim() === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;
  let total = 0;
  let pos = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    pos = re.lastIndex;
  }
  if (pos === 0 || pos !== s.length) throw new HtvendError('USAGE', `${flag} ${JSON.stringify(s)}: want a duration like 24h, 30m, 7d or 1h30m`);
  return total;
}
