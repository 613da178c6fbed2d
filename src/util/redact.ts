/** Credential redaction for anything that may be printed or written to assets.json. */

/**
 * Replaces the password of a URL's userinfo with `xxxxx` (Go's url.Redacted form, `user:xxxxx@`).
 * Leaves anything that does not parse as a URL unchanged.
 */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (!u.password) return raw;
    // Rebuild textually so the rest of the URL keeps its original encoding.
    const at = raw.indexOf('@', raw.indexOf('//') + 2);
    const schemeEnd = raw.indexOf('//') + 2;
    const userinfo = raw.slice(schemeEnd, at);
    const colon = userinfo.indexOf(':');
    return raw.slice(0, schemeEnd) + userinfo.slice(0, colon) + ':xxxxx' + raw.slice(at);
  } catch {
    return raw;
  }
}

/** Header names whose values are never logged or recorded. */
export const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);

/** Redacts URLs with credentials embedded anywhere in a free-form message. */
export function redactText(s: string): string {
  return s.replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s/:@]+):[^\s/@]+@/gi, '$1:xxxxx@');
}
