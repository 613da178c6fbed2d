/**
 * One conformance case: a small Dockerfile and build context, declared as data, adapted from
 * an upstream test (moby/buildkit frontend/dockerfile/*_test.go or containers/buildah
 * tests/bud.bats) named in `source`. Types only, plus the image view handed to checks.
 */
import type { Listing } from './rootfs-listing.js';

/**
 * A context file: text content, or a file with a mode, a symlink, a hard link, a directory, or
 * a tar archive (made by GNU tar, numeric owner 0, optionally gzip) of the given text files.
 */
export type ContextFile =
  | string
  | { content: string; mode?: number }
  | { archive: Record<string, string>; gzip?: boolean }
  | { symlink: string }
  | { hardlink: string }
  | { dir: true; mode?: number };

/** The config fields the suite compares (Docker names), normalised: empty values are absent. */
export interface ComparedConfig {
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: Record<string, object>;
  Volumes?: Record<string, object>;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Healthcheck?: Record<string, unknown>;
  OnBuild?: string[];
  Shell?: string[];
}

/** An image as the cases see it. */
export interface BuiltImage {
  listing: Listing;
  config: ComparedConfig;
  /** Text of a (small) regular file of the final rootfs; throws if absent. */
  text(path: string): string;
}

export interface ConformanceCase {
  /** Unique, short; also the test name. */
  name: string;
  /** Upstream test adapted, e.g. `buildkit: testCopyWildcards` or `buildah: bud.bats "bud-chmod"`. */
  source: string;
  /** `{{base}}` is replaced by the local busybox image reference. */
  dockerfile: string;
  files?: Record<string, ContextFile>;
  buildArgs?: Record<string, string>;
  target?: string;
  /**
   * `buildah` (default): our image must equal buildah 1.28's. `assertion`: buildah 1.28 cannot
   * build it or disagrees with BuildKit's own test, so `check` (the upstream assertion) rules.
   */
  reference?: 'buildah' | 'assertion';
  /** The upstream test's assertion on our image; required for `assertion`, a sanity check otherwise. */
  check?: (img: BuiltImage) => void;
  /** Both builders must refuse the Dockerfile; our stderr must match. */
  fails?: RegExp;
  /** A known bug being fixed on another branch (issue 9's list): a node:test `todo` until then. */
  pending?: string;
}
