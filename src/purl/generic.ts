/**
 * URL parsing shared by the matchers, and the `pkg:generic` form used for unknown URL shapes
 * and for mutable indexes (which are files, not packages).
 */
import { PackageURL } from 'packageurl-js';
import type { Ecosystem, PackageOfOptions, PackageRef } from './types.js';

export interface ParsedUrl {
  /** The URL as given (the assets.json key). */
  url: string;
  /** Lowercased host name, no port. */
  host: string;
  /** Lowercased host with `:port` when the URL names one. */
  hostPort: string;
  /** Path segments after the leading `/`, each percent-decoded on its own. */
  segments: string[];
  search: URLSearchParams;
}

export function parseUrl(url: string): ParsedUrl | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  // Segments decoded one by one, so `%2F` inside a segment (npm's `@scope%2fname`) stays
  // inside it, as the registry meant.
  const segments = u.pathname.split('/').slice(1).map(decodeSegment);
  return { url, host: u.hostname.toLowerCase(), hostPort: u.host.toLowerCase(), segments, search: u.searchParams };
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** `pkg:generic/<last path segment>?checksum=sha256:…&download_url=…`. */
export function genericPackage(
  url: string,
  opts: PackageOfOptions,
  ecosystem: Ecosystem = 'generic',
  extra: { name?: string; mutableIndex?: boolean } = {},
): PackageRef {
  const parsed = parseUrl(url);
  const file = parsed ? lastSegment(parsed) : '';
  const qualifiers: Record<string, string> = { download_url: url };
  if (opts.sha256) qualifiers['checksum'] = `sha256:${opts.sha256}`;
  const purl = new PackageURL('generic', undefined, file || parsed?.host || 'unknown', undefined, qualifiers, undefined);
  const ref: PackageRef = { purl, ecosystem, name: extra.name ?? purl.name };
  if (extra.mutableIndex) ref.mutableIndex = true;
  return ref;
}

export function lastSegment(u: ParsedUrl): string {
  for (let i = u.segments.length - 1; i >= 0; i--) if (u.segments[i]) return u.segments[i]!;
  return '';
}
