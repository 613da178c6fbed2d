/**
 * `WWW-Authenticate` parsing, shared by the registry client (src/registry/auth.ts) and the
 * proxy's recording fetch (src/upstream/record-fetch.ts), so both read a challenge the same way.
 */

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses a `WWW-Authenticate` header value into its challenges (RFC 9110 §11.6.1). */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let current: Challenge | undefined;
  let i = 0;
  const n = header.length;
  const at = (k: number) => header[k] ?? '';
  while (i < n) {
    while (i < n && /[\s,]/.test(at(i))) i++;
    const start = i;
    while (i < n && /[^\s,=]/.test(at(i))) i++;
    const token = header.slice(start, i);
    let j = i;
    while (j < n && at(j) === ' ') j++;
    if (token && current && at(j) === '=') {
      i = j + 1;
      while (i < n && at(i) === ' ') i++;
      let value = '';
      if (at(i) === '"') {
        for (i++; i < n && at(i) !== '"'; i++) value += at(i) === '\\' ? at(++i) : at(i);
        i++;
      } else {
        const s = i;
        while (i < n && /[^\s,]/.test(at(i))) i++;
        value = header.slice(s, i);
      }
      current.params[token.toLowerCase()] = value;
    } else if (token) {
      current = { scheme: token.toLowerCase(), params: {} };
      out.push(current);
    } else if (i < n) {
      i++; // a stray '=' (token68 padding): skip it
    }
  }
  return out;
}

/** The params of the first `Bearer` challenge that names a realm, as registries send it. */
export function bearerChallenge(header: string | string[] | undefined): Record<string, string> | undefined {
  for (const v of Array.isArray(header) ? header : header ? [header] : []) {
    const c = parseChallenges(v).find((ch) => ch.scheme === 'bearer' && ch.params.realm);
    if (c) return c.params;
  }
  return undefined;
}
