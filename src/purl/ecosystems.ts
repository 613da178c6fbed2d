/**
 * One matcher per ecosystem: a recorded URL's shape → its package URL, or undefined when the
 * shape is not this ecosystem's. Shapes are the registries' documented download layouts, so
 * mirrors and proxies (Artifactory, Nexus, Verdaccio, Athens, apt mirrors) match too; only
 * shapes that are too generic to recognise anywhere are tied to the public hosts.
 */
import { PackageURL } from 'packageurl-js';
import type { PackageOfOptions, PackageRef } from './types.js';
import { genericPackage, lastSegment, type ParsedUrl } from './generic.js';

export type Matcher = (u: ParsedUrl, opts: PackageOfOptions) => PackageRef | undefined;

type Qualifiers = Record<string, string> | undefined;

function pkg(
  type: PackageRef['ecosystem'],
  namespace: string | undefined,
  name: string,
  version: string | undefined,
  qualifiers?: Qualifiers,
  subpath?: string,
): PackageRef {
  const purl = new PackageURL(type, namespace, name, version, qualifiers, subpath);
  const display = type === 'npm' || type === 'golang' || type === 'github' ? (namespace ? `${namespace}/${name}` : name) : name;
  return { purl, ecosystem: type, name: display, version };
}

function index(u: ParsedUrl, opts: PackageOfOptions, ecosystem: PackageRef['ecosystem'], name: string): PackageRef {
  return genericPackage(u.url, opts, ecosystem, { name, mutableIndex: true });
}

// ---- npm: <registry>/<name>/-/<name>-<version>.tgz, <registry>/@scope/name/-/name-<version>.tgz
const NPM_HOSTS = new Set(['registry.npmjs.org', 'registry.yarnpkg.com', 'registry.npmmirror.com']);

const npm: Matcher = (u, opts) => {
  const s = u.segments;
  const dash = s.lastIndexOf('-');
  if (dash >= 1 && dash === s.length - 2 && s[dash + 1]!.endsWith('.tgz')) {
    const file = s[dash + 1]!;
    const name = s[dash - 1]!;
    const scope = s[dash - 2]?.startsWith('@') ? s[dash - 2] : undefined;
    const base = file.startsWith('@') ? file.slice(file.indexOf('/') + 1) : file; // some mirrors repeat the scope
    if (!base.startsWith(`${name}-`)) return undefined;
    const version = base.slice(name.length + 1, -'.tgz'.length);
    if (!/^\d/.test(version)) return undefined;
    return pkg('npm', scope, name, version);
  }
  // Packuments: /<name>, /@scope%2fname, /@scope/name (and /<name>/<version> manifests).
  if (!NPM_HOSTS.has(u.host) || !s[0] || s[0] === '-') return undefined;
  const name = s[0].startsWith('@') ? (s[0].includes('/') ? s[0] : `${s[0]}/${s[1] ?? ''}`) : s[0];
  return index(u, opts, 'npm', name);
};

// ---- Debian/Ubuntu: .../pool/<component>/<p>/<source>/<name>_<version>_<arch>.deb
function debNamespace(u: ParsedUrl): string {
  if (u.host.includes('ubuntu') || u.segments.includes('ubuntu') || u.segments.includes('ubuntu-ports')) return 'ubuntu';
  return 'debian';
}

const deb: Matcher = (u, opts) => {
  const s = u.segments;
  const file = lastSegment(u);
  if (s.includes('pool')) {
    const bin = /^([a-z0-9][a-z0-9+.-]*)_([^_]+)_([a-z0-9-]+)\.u?deb$/.exec(file);
    if (bin) return pkg('deb', debNamespace(u), bin[1]!, bin[2], { arch: bin[3]! });
    const src = /^([a-z0-9][a-z0-9+.-]*)_([^_]+?)(?:\.dsc|\.debian\.tar\.\w+|\.diff\.gz|\.orig(?:-[\w-]+)?\.tar\.\w+|\.tar\.\w+)$/.exec(file);
    if (src) return pkg('deb', debNamespace(u), src[1]!, src[2], { arch: 'source' });
    return undefined;
  }
  const dists = s.indexOf('dists');
  if (dists >= 0 && dists < s.length - 2) {
    // InRelease, Release(.gpg), <comp>/binary-<arch>/Packages(.xz), Sources, Contents-*, i18n, by-hash.
    return index(u, opts, 'deb', s.slice(dists + 1).join('/'));
  }
  return undefined;
};

// ---- Alpine: .../<branch>/<repo>/<arch>/<name>-<pkgver>-r<N>.apk, APKINDEX.tar.gz
const APK_ARCHES = new Set(['x86_64', 'x86', 'aarch64', 'armhf', 'armv7', 'ppc64le', 's390x', 'riscv64', 'loongarch64']);

const apk: Matcher = (u, opts) => {
  const s = u.segments;
  const arch = s[s.length - 2];
  if (!arch || !APK_ARCHES.has(arch)) return undefined;
  const file = lastSegment(u);
  if (file === 'APKINDEX.tar.gz') return index(u, opts, 'apk', s.slice(-4).join('/'));
  const m = /^(.+)-(\d[^-]*-r\d+)\.apk$/.exec(file);
  if (!m) return undefined;
  return pkg('apk', 'alpine', m[1]!, m[2], { arch });
};

// ---- PyPI: wheels anywhere, sdists on PyPI's file host, simple/JSON API pages as indexes.
const PYPI_FILE_HOSTS = new Set(['files.pythonhosted.org', 'pypi.python.org']);

const pypi: Matcher = (u, opts) => {
  const file = lastSegment(u);
  const whl = /^([^-]+)-([^-]+)(?:-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$/.exec(file);
  if (whl) return pkg('pypi', undefined, whl[1]!, whl[2], { file_name: file });
  const onPypi = PYPI_FILE_HOSTS.has(u.host) || (u.segments.includes('packages') && u.host.includes('pypi'));
  if (onPypi) {
    const sdist = /^(.+?)-(\d[^-]*)\.(tar\.gz|tar\.bz2|tgz|zip)$/.exec(file);
    if (sdist) return pkg('pypi', undefined, sdist[1]!, sdist[2], { file_name: file });
  }
  if (u.host === 'pypi.org' || u.host.includes('pypi')) {
    const s = u.segments;
    const simple = s.indexOf('simple');
    if (simple >= 0) return index(u, opts, 'pypi', s[simple + 1] || 'simple');
    if (s[0] === 'pypi' && s[1]) return index(u, opts, 'pypi', s[1]);
  }
  return undefined;
};

// ---- Maven: <root>/<group/path>/<artifactId>/<version>/<artifactId>-<version>[-classifier].<ext>
const MAVEN_ROOT_HOSTS = new Set(['maven.google.com', 'dl.google.com', 'jitpack.io', 'repo.spring.io']);

function mavenGroupStart(u: ParsedUrl): number | undefined {
  const s = u.segments;
  for (const root of ['maven2', 'm2', 'maven']) {
    const i = s.indexOf(root);
    if (i >= 0) return i + 1;
  }
  const repo = s.indexOf('repository'); // Nexus: /repository/<repo>/...
  if (repo >= 0 && s.length > repo + 2) return repo + 2;
  const art = s.indexOf('artifactory'); // Artifactory: /artifactory/<repo>/...
  if (art >= 0 && s.length > art + 2) return art + 2;
  if (MAVEN_ROOT_HOSTS.has(u.host)) return u.host === 'dl.google.com' ? 2 : 0; // dl.google.com/dl/android/maven2 has 'maven2'
  return undefined;
}

const maven: Matcher = (u, opts) => {
  const start = mavenGroupStart(u);
  if (start === undefined) return undefined;
  const s = u.segments;
  const file = lastSegment(u);
  if (file.startsWith('maven-metadata.xml')) {
    // <group>/<artifact>/maven-metadata.xml, or <group>/<artifact>/<version>/… for snapshots
    const dir = s.slice(start, -1);
    const at = dir.length >= 3 && /^\d/.test(dir[dir.length - 1]!) ? dir.length - 2 : dir.length - 1;
    return index(u, opts, 'maven', `${dir.slice(0, at).join('.')}:${dir.slice(at).join(':')}`);
  }
  if (s.length - start < 4) return undefined; // at least one group segment, artifact, version, file
  const version = s[s.length - 2]!;
  const artifact = s[s.length - 3]!;
  const group = s.slice(start, s.length - 3).join('.');
  const snapshotBase = version.endsWith('-SNAPSHOT') ? version.slice(0, -'SNAPSHOT'.length) : undefined;
  const prefix = `${artifact}-${version}`;
  let rest: string;
  if (file.startsWith(prefix)) rest = file.slice(prefix.length);
  else if (snapshotBase && file.startsWith(`${artifact}-${snapshotBase}`)) rest = file.slice(artifact.length + 1 + snapshotBase.length).replace(/^\d{8}\.\d{6}-\d+/, '');
  else return undefined;
  const m = /^(?:-([^.]+))?\.(.+)$/.exec(rest);
  if (!m) return undefined;
  const qualifiers: Record<string, string> = {};
  if (m[1]) qualifiers['classifier'] = m[1];
  if (m[2] !== 'jar') qualifiers['type'] = m[2]!;
  const ref = pkg('maven', group, artifact, version, Object.keys(qualifiers).length ? qualifiers : undefined);
  ref.name = `${group}:${artifact}`;
  return ref;
};

// ---- crates.io: /api/v1/crates/<name>/<version>/download, static.crates.io/crates/<name>/<name>-<version>.crate
const cargo: Matcher = (u, opts) => {
  const s = u.segments;
  if (u.host === 'crates.io' && s[0] === 'api' && s[2] === 'crates' && s[5] === 'download' && s[3] && s[4]) {
    return pkg('cargo', undefined, s[3], s[4]);
  }
  const file = lastSegment(u);
  if (file.endsWith('.crate') && s.length >= 2) {
    const name = s[s.length - 2]!;
    if (file.startsWith(`${name}-`)) return pkg('cargo', undefined, name, file.slice(name.length + 1, -'.crate'.length));
  }
  if (u.host === 'index.crates.io') return index(u, opts, 'cargo', file || 'index');
  return undefined;
};

// ---- Go module proxy: <proxy>/<escaped module>/@v/<version>.(zip|mod|info), @v/list, @latest
function unescapeModule(p: string): string {
  return p.replace(/!([a-z])/g, (_, c: string) => c.toUpperCase()); // golang.org/x/mod/module: !x = X
}

const golang: Matcher = (u, opts) => {
  const s = u.segments;
  const at = s.indexOf('@v');
  if (at >= 1 && at === s.length - 2) {
    const module = unescapeModule(s.slice(0, at).join('/'));
    const file = s[at + 1]!;
    if (file === 'list') return index(u, opts, 'golang', module);
    const m = /^(.+)\.(zip|mod|info)$/.exec(file);
    if (!m) return undefined;
    const slash = module.lastIndexOf('/');
    return pkg('golang', slash > 0 ? module.slice(0, slash) : undefined, slash > 0 ? module.slice(slash + 1) : module, unescapeModule(m[1]!));
  }
  if (s[s.length - 1] === '@latest' && s.length >= 2) return index(u, opts, 'golang', unescapeModule(s.slice(0, -1).join('/')));
  if (u.host === 'sum.golang.org') return index(u, opts, 'golang', 'sum.golang.org');
  return undefined;
};

// ---- RubyGems: /gems/<name>-<version>[-<platform>].gem; /info, /versions, /specs.* are indexes.
const GEM_HOSTS = new Set(['rubygems.org', 'index.rubygems.org', 'api.rubygems.org']);

const gem: Matcher = (u, opts) => {
  const s = u.segments;
  const file = lastSegment(u);
  const m = /^(.+?)-(\d[^-]*)(?:-(.+))?\.gem$/.exec(file);
  if (m && (s[s.length - 2] === 'gems' || s[s.length - 2] === 'downloads')) {
    return pkg('gem', undefined, m[1]!, m[2], m[3] ? { platform: m[3] } : undefined);
  }
  if (!GEM_HOSTS.has(u.host)) return undefined;
  if (s[0] === 'info' || s[0] === 'versions' || s[0] === 'api' || /^(latest_|prerelease_)?specs\./.test(file)) {
    return index(u, opts, 'gem', s[0] === 'info' && s[1] ? s[1] : file);
  }
  return undefined;
};

// ---- NuGet: /v3-flatcontainer/<id>/<version>/<id>.<version>.nupkg, /api/v2/package/<id>/<version>
const nuget: Matcher = (u, opts) => {
  const s = u.segments;
  const flat = s.indexOf('v3-flatcontainer');
  if (flat >= 0) {
    const id = s[flat + 1];
    const version = s[flat + 2];
    const file = s[flat + 3];
    if (id && version && file && /\.(nupkg|nuspec)$/.test(file)) return pkg('nuget', undefined, id, version);
    if (id && version === 'index.json') return index(u, opts, 'nuget', id);
    return undefined;
  }
  const v2 = s.indexOf('package');
  if (v2 >= 2 && s[v2 - 1] === 'v2' && s[v2 - 2] === 'api' && s[v2 + 1] && s[v2 + 2]) return pkg('nuget', undefined, s[v2 + 1]!, s[v2 + 2]);
  if (u.host === 'api.nuget.org' || u.host.endsWith('.nuget.org')) return index(u, opts, 'nuget', lastSegment(u) || 'index');
  return undefined;
};

// ---- GitHub: releases/download/<tag>/<file>, archive/<ref>.tar.gz, codeload tar.gz/<ref>, raw files
function stripArchive(ref: string): string | undefined {
  const m = /^(.+?)\.(tar\.gz|tgz|zip|tar\.bz2|tar\.xz)$/.exec(ref);
  return m?.[1];
}

const github: Matcher = (u) => {
  const s = u.segments;
  const [owner, repo] = s;
  if (!owner || !repo) return undefined;
  if (u.host === 'github.com') {
    if (s[2] === 'releases' && s[3] === 'download' && s[4] && s[5]) return pkg('github', owner, repo, s[4], { file_name: s.slice(5).join('/') });
    if (s[2] === 'archive') {
      const rest = s.slice(3);
      const refs = rest[0] === 'refs' && (rest[1] === 'tags' || rest[1] === 'heads') ? rest.slice(2) : rest;
      const ref = stripArchive(refs.join('/'));
      return ref ? pkg('github', owner, repo, ref) : undefined;
    }
    return undefined;
  }
  if (u.host === 'codeload.github.com' && s[3]) {
    const refs = s[3] === 'refs' && (s[4] === 'tags' || s[4] === 'heads') ? s.slice(5) : s.slice(3);
    return refs.length ? pkg('github', owner, repo, refs.join('/')) : undefined;
  }
  if (u.host === 'raw.githubusercontent.com' && s[2] && s.length > 3) return pkg('github', owner, repo, s[2], undefined, s.slice(3).join('/'));
  if (u.host === 'api.github.com' && owner === 'repos' && s[3] && (s[4] === 'tarball' || s[4] === 'zipball') && s[5]) {
    return pkg('github', repo, s[3], s.slice(5).join('/'));
  }
  return undefined;
};

// ---- OCI distribution: /v2/<name>/manifests/<ref>, /v2/<name>/blobs/<digest>, tags/list
function registryName(u: ParsedUrl): string {
  return u.host === 'registry-1.docker.io' || u.host === 'index.docker.io' ? 'docker.io' : u.hostPort;
}

const oci: Matcher = (u, opts) => {
  const s = u.segments;
  if (s[0] !== 'v2') return undefined;
  const kind = s.length - 2;
  const what = s[kind];
  if (s.length >= 4 && (what === 'manifests' || what === 'blobs')) {
    const name = s.slice(1, kind).join('/');
    const ref = s[kind + 1]!;
    const repositoryUrl = `${registryName(u)}/${name}`;
    const qualifiers: Record<string, string> = { repository_url: repositoryUrl };
    let digest: string | undefined;
    if (ref.startsWith('sha256:')) digest = ref;
    else {
      qualifiers['tag'] = ref;
      // A manifest's digest is the sha256 of its bytes, which is what assets.json recorded.
      if (opts.sha256) digest = `sha256:${opts.sha256}`;
    }
    const short = name.slice(name.lastIndexOf('/') + 1);
    const ref2 = pkg('oci', undefined, short, digest, qualifiers);
    ref2.name = repositoryUrl;
    return ref2;
  }
  if (s.length >= 4 && s[s.length - 2] === 'tags' && s[s.length - 1] === 'list') return index(u, opts, 'oci', s.slice(1, -2).join('/'));
  return undefined;
};

/** Order matters where shapes overlap: OCI and Go paths are specific, Maven's is broad. */
export const MATCHERS: readonly Matcher[] = [oci, golang, npm, deb, apk, pypi, cargo, gem, nuget, github, maven];
