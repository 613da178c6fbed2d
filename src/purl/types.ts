/**
 * What a recorded URL is, as a package (SPEC §10). Types only; `packageOf()` in from-url.ts
 * makes these from an assets.json key.
 */
import type { PackageURL } from 'packageurl-js';

/** The ecosystems recognised from a URL's shape; everything else is `generic`. */
export type Ecosystem =
  | 'npm'
  | 'deb'
  | 'apk'
  | 'pypi'
  | 'maven'
  | 'cargo'
  | 'golang'
  | 'gem'
  | 'nuget'
  | 'github'
  | 'oci'
  | 'generic';

export interface PackageRef {
  /**
   * The package URL. For a package file, the ecosystem's purl (`pkg:npm/%40babel/core@7.24.0`).
   * For a mutable index or an unknown shape, `pkg:generic/<file name>` with `download_url`
   * (and `checksum` when the sha256 was given): it names the bytes, not a package.
   */
  purl: PackageURL;
  ecosystem: Ecosystem;
  /** Display name: `@babel/core`, `curl`, `org.slf4j:slf4j-api`, `github.com/pkg/errors`. */
  name: string;
  version?: string | undefined;
  /**
   * The URL is an index whose bytes change over time (npm packument, apt InRelease/Packages,
   * APKINDEX, Go `@v/list`, maven-metadata.xml, PyPI simple pages, OCI tag lists…). It is a
   * build input, but not a package: SBOMs list it as data, not as a library.
   */
  mutableIndex?: boolean | undefined;
}

export interface PackageOfOptions {
  /** The recorded sha256 (hex): becomes the `checksum` qualifier of generic purls. */
  sha256?: string | undefined;
}
