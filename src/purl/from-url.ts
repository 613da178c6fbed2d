/**
 * URL → package URL (https://github.com/package-url/purl-spec), from the URL's shape alone:
 * the capture holds URLs and bytes, not lockfiles, so this is what every SBOM, report and
 * diff uses to name an asset. Each ecosystem is a matcher in ecosystems.ts; the first that
 * recognises the URL wins, and anything unrecognised is `pkg:generic` with `download_url`
 * and `checksum`, so no asset is ever left out.
 */
import type { PackageOfOptions, PackageRef } from './types.js';
import { genericPackage, parseUrl } from './generic.js';
import { MATCHERS } from './ecosystems.js';

export type { Ecosystem, PackageRef, PackageOfOptions } from './types.js';

/** Names the package that `url` (an assets.json key) downloads. Never throws. */
export function packageOf(url: string, opts: PackageOfOptions = {}): PackageRef {
  const parsed = parseUrl(url);
  if (parsed) {
    for (const match of MATCHERS) {
      let found: PackageRef | undefined;
      try {
        found = match(parsed, opts);
      } catch {
        // packageurl-js validates names; an odd URL falls through to the next matcher.
      }
      if (found) return found;
    }
  }
  return genericPackage(url, opts);
}
