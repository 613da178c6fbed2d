/**
 * The assets.json key for a request URL (SPEC §2): the URL the client asked for, userinfo
 * password redacted (`user:xxxxx@`), fragment dropped, path/query encoding preserved exactly
 * as sent (`%2F` stays `%2F`). Built textually, never via WHATWG URL serialisation, which
 * would re-encode.
 */
import { redactUrl } from '../util/redact.js';

export function assetKey(requestedUrl: string): string {
  const hash = requestedUrl.indexOf('#');
  return redactUrl(hash >= 0 ? requestedUrl.slice(0, hash) : requestedUrl);
}
