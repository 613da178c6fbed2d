/**
 * Layer entry and layer result types shared by the layer writer (`writeLayer`), COPY/ADD and
 * the RUN executor (src/builder/run/). Types only.
 *
 * Paths inside a layer are POSIX, relative to the image root, without a leading `/` or `./`
 * (e.g. `usr/bin/env`). Directories are listed explicitly when their metadata matters; the
 * writer does not invent parent directories.
 */
import type { Digest } from '../../util/digest.js';

interface EntryBase {
  /** Path in the image, relative to `/`, no leading slash, no trailing slash. */
  path: string;
  /** Numeric owner; names are never written (reproducibility). Default 0. */
  uid?: number;
  gid?: number;
  /** Seconds since the epoch; the writer clamps it to `epoch`. Default: `epoch`. */
  mtime?: number;
  /** Extended attributes written as `SCHILY.xattr.*` PAX records (e.g. `security.capability`). */
  xattrs?: Record<string, Buffer>;
}

/** A regular file whose bytes are streamed from `source` (a host path) when the tar is written. */
export interface FileEntry extends EntryBase {
  type: 'file';
  source: string;
  /** Permission bits incl. setuid/setgid/sticky (e.g. 0o755). */
  mode: number;
  /** Size of `source`; stat'ed by the writer when omitted. */
  size?: number;
}
export interface DirEntry extends EntryBase {
  type: 'dir';
  mode: number;
}
export interface SymlinkEntry extends EntryBase {
  type: 'symlink';
  /** Link target exactly as stored (relative or absolute). */
  target: string;
}
/** A hard link to another path of the same layer (`target` is a layer path, no leading `/`). */
export interface HardlinkEntry extends EntryBase {
  type: 'hardlink';
  target: string;
}
/** Deletes `path` from lower layers (written as `dir/.wh.name`). */
export interface WhiteoutEntry {
  type: 'whiteout';
  path: string;
}
/** Hides everything lower layers have under directory `path` (written as `path/.wh..wh..opq`). */
export interface OpaqueEntry {
  type: 'opaque';
  path: string;
}

export type LayerEntry = FileEntry | DirEntry | SymlinkEntry | HardlinkEntry | WhiteoutEntry | OpaqueEntry;

/** OCI media types of the layers we write and of the base layers we copy. */
export type LayerMediaType =
  | 'application/vnd.oci.image.layer.v1.tar+gzip'
  | 'application/vnd.oci.image.layer.v1.tar'
  | 'application/vnd.oci.image.layer.v1.tar+zstd'
  | 'application/vnd.docker.image.rootfs.diff.tar.gzip';

/** A layer blob on disk plus the digests an image config and manifest need. */
export interface LayerInfo {
  /** sha256 of the blob as stored (compressed): the manifest's layer digest. */
  digest: Digest;
  /** sha256 of the uncompressed tar: the config's `rootfs.diff_ids` entry. */
  diffId: Digest;
  /** Size in bytes of the blob as stored. */
  size: number;
  /** Host path of the blob. Lives in the build's private temp dir; removed at exit. */
  path: string;
  mediaType: LayerMediaType;
}
