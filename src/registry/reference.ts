/**
 * Image references (`alpine`, `ghcr.io/o/r:tag`, `host:5000/x/y@sha256:…`) parsed the way the
 * Docker CLI and containers/image do: a first path component containing `.` or `:`, or equal
 * to `localhost`, is a registry host; anything else lives on Docker Hub, where one-component
 * names are under `library/`. Docker Hub's API host is `registry-1.docker.io`.
 */
import { HtvendError } from '../util/errors.js';
import { parseDigest, type Digest } from '../util/digest.js';

export const DOCKER_HUB_HOST = 'registry-1.docker.io';
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

// distribution/reference grammar, path components and tags.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$/;

export interface ImageReference {
  /** API host (with port if any), e.g. `registry-1.docker.io`, `127.0.0.1:5000`. */
  registry: string;
  /** Repository path, e.g. `library/alpine`. */
  repository: string;
  /** Tag; `latest` when neither tag nor digest was given. */
  tag?: string | undefined;
  /** Manifest digest if pinned; takes precedence over the tag when fetching. */
  digest?: Digest | undefined;
}

/** A registry host as given by a client (`docker.io`, `index.docker.io`…) → its API host. */
export function normalizeRegistryHost(host: string): string {
  return DOCKER_HUB_ALIASES.has(host.toLowerCase()) ? DOCKER_HUB_HOST : host;
}

/** Whether `s` is a valid repository path (`library/alpine`, `a/b/c`). */
export function isRepositoryName(s: string): boolean {
  return s.split('/').every((p) => COMPONENT.test(p));
}

/** Whether `s` is a valid tag. */
export function isTag(s: string): boolean {
  return TAG.test(s);
}

/** Parses an image reference; a malformed one is an INPUT error naming it. */
export function parseImageReference(ref: string): ImageReference {
  const bad = (why: string) => new HtvendError('INPUT', `invalid image reference ${JSON.stringify(ref)}: ${why}`);
  let rest = ref.trim();
  if (!rest) throw bad('empty');
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    try {
      digest = parseDigest(rest.slice(at + 1), 'digest');
    } catch {
      throw bad('digest must be sha256:<64 hex>');
    }
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`tag ${JSON.stringify(tag)} is not valid`);
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB_HOST;
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!HOST.test(first)) throw bad(`registry host ${JSON.stringify(first)} is not valid`);
    registry = DOCKER_HUB_ALIASES.has(first.toLowerCase()) ? DOCKER_HUB_HOST : first;
    parts.shift();
  }
  if (registry === DOCKER_HUB_HOST && parts.length === 1) parts.unshift('library');
  for (const p of parts) {
    if (!COMPONENT.test(p)) throw bad(`repository component ${JSON.stringify(p)} must be lowercase letters, digits and separators`);
  }
  if (!tag && !digest) tag = 'latest';
  return { registry, repository: parts.join('/'), tag, digest };
}

/** The canonical string form: `host/repo[:tag][@sha256:…]`. */
export function formatImageReference(r: ImageReference): string {
  return `${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@sha256:${r.digest}` : ''}`;
}

/** What to ask the registry for: the digest when pinned, else the tag. */
export function manifestReference(r: ImageReference): string {
  return r.digest ? `sha256:${r.digest}` : (r.tag ?? 'latest');
}
