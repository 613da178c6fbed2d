/**
 * The contract between the image builder (src/builder/**) and the RUN executor
 * (src/builder/run/execute.ts, owned by the RUN engineer). Types only.
 *
 * ## Rootfs model
 * The builder keeps ONE materialised working rootfs directory per stage (all layers so far,
 * applied in order, whiteouts resolved, owned by the real uids). For a RUN step it passes that
 * directory as `rootfsLayers[0]`; the executor must treat it as READ-ONLY: mount an overlay
 * with `lowerdir=<rootfsLayers joined by ':'>` and a private upperdir/workdir of its own, run
 * the container on the merged dir, then turn the upperdir into a layer with `writeLayer()`
 * (src/builder/fs/layer-writer.ts; run/upper.ts maps overlay whiteouts — char dev 0:0 →
 * whiteout, `trusted.overlay.opaque=y` → opaque — and drops the mountpoints the runtime
 * created). The builder then applies the returned layer to the
 * working rootfs itself (the same code that applies base layers), unless it passed
 * `{applyTo}` and the executor answered `appliedTo`: then the executor moved the step's files
 * into that directory after writing the layer (far cheaper than extracting the layer again)
 * and the builder marks the layer as applied. `rootfsLayers` is ordered like overlay
 * lowerdirs: topmost first; today it always has exactly one element.
 *
 * Nothing the executor injects (CA file, proxy env, JKS/Maven files, secrets, mount targets,
 * /etc/resolv.conf, /etc/hosts …) may appear in the returned layer (SPEC §7).
 */
import type { LayerListing } from '../fs/listing.js';
import type { LayerInfo } from '../fs/types.js';

/** `--mount=type=bind` (RUN flag or global `--mount`). */
export interface BindMount {
  type: 'bind';
  /** Absolute path in the container. */
  target: string;
  /** Path inside `from` (a stage rootfs, see `stageRootfs`) or inside the build context. Relative, default ''. */
  source: string;
  /** Stage name/index or image reference; undefined = the build context directory (`contextDir`). */
  from?: string;
  /** Docker default for RUN bind mounts is read-only; `rw` makes writes visible but discarded. */
  readonly: boolean;
  /**
   * A file the builder made on the host (a RUN heredoc with a shebang, run as a script like
   * BuildKit does from /dev/pipes/): bound as is; `source` and `from` are then ignored.
   */
  hostSource?: string;
}

/** `--mount=type=cache`: a directory kept for the duration of this build (not across builds). */
export interface CacheMount {
  type: 'cache';
  target: string;
  /** Cache key; defaults to the target path. */
  id: string;
  sharing: 'shared' | 'private' | 'locked';
  readonly: boolean;
  /** Initial content source (stage/image + path), like BuildKit; rarely used. */
  from?: string;
  source?: string;
  mode: number;
  uid: number;
  gid: number;
}

export interface TmpfsMount {
  type: 'tmpfs';
  target: string;
  /** Bytes; undefined = runtime default. */
  size?: number;
}

/** Where a secret's bytes come from, already resolved by the builder from `--secret`. */
export type SecretSource = { kind: 'file'; path: string } | { kind: 'value'; value: string };

/**
 * `--mount=type=secret`. With `env` set the value is exported as that env var (buildah
 * extension the original wrapper relies on); otherwise mounted as a file at `target`
 * (default `/run/secrets/<id>`).
 */
export interface SecretMount {
  type: 'secret';
  id: string;
  target?: string;
  env?: string;
  required: boolean;
  mode: number;
  uid: number;
  gid: number;
  /** undefined when no `--secret` of that id was given and `required` is false: skip the mount. */
  source?: SecretSource;
}

export type RunMount = BindMount | CacheMount | TmpfsMount | SecretMount;

/**
 * What the builder injects into every RUN so the child reaches the htvend proxy and trusts its
 * CA (SPEC §7 and the original cli/scripts/build-img-with-proxy).
 */
export interface ProxyInjection {
  /** Host path of the CA PEM (`SSL_CERT_FILE` of the builder's env); undefined = none. */
  caFile?: string;
  /**
   * Container path where the CA is mounted: `/run/htvend/<name>` (proxy-env.ts). Not the host
   * path as the original did: that is under /tmp, and `rm -rf /tmp/*` in a RUN failed on it.
   */
  caTarget?: string;
  /** Names of env vars set to `caTarget` inside the container (`CERT_FILE_VARS`, default `SSL_CERT_FILE`). */
  certFileVars: string[];
  /** Proxy variables to set in the container (HTTP_PROXY, HTTPS_PROXY, http_proxy, https_proxy, NO_PROXY…). */
  env: Record<string, string>;
  /**
   * apt's CA: apt's https method reads `Acquire::https::CaInfo`, never `SSL_CERT_FILE`. A config
   * file holding only that line (pointing at `caTarget`), made by the builder (host `hostFile`),
   * mounted read-only at `target`; the step gets `APT_CONFIG=target` unless its own ENV/ARG sets
   * APT_CONFIG (`aptConfigFor`). apt reads APT_CONFIG in addition to /etc/apt/apt.conf.d and
   * /etc/apt/apt.conf (read after it, so the image's own settings win).
   */
  aptConfig?: { hostFile: string; target: string };
  /** Passwordless PKCS#12 truststore (host `JKS_KEYSTORE_FILE`) mounted at each of `targets` (`JKS_KEYSTORE_PATH`). */
  jks?: { hostFile: string; targets: string[] };
  /** Maven settings.xml pointing at the proxy, made by the builder, mounted at each of `targets` (`MVN_SETTINGS_PATH`). */
  mvnSettings?: { hostFile: string; targets: string[] };
  /**
   * Java's proxy, appended to the step's `JAVA_TOOL_OPTIONS` as `-Dhttp(s).proxyHost/Port`
   * (when the builder's own JAVA_TOOL_OPTIONS proxies Java, as htvend's child env does). With
   * attribution this is the step's own forwarder (cache/step-forwarder.ts), not the proxy.
   * `trustStore`: container path of the PKCS#12 truststore Java is pointed at, if any.
   */
  java?: { host: string; port: number; trustStore?: string };
}

export interface OciPlatform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface RunStepRequest {
  /** Read-only lowerdirs, topmost first (see "Rootfs model" above). Always one today. */
  rootfsLayers: string[];
  /** Final argv: shell form is already wrapped as `[...SHELL, cmdline]` by the builder. */
  argv: string[];
  /** Image config env (`KEY=value`) plus ARGs in scope for this step, in Docker's order. */
  env: string[];
  /** Config `User` ('' = root); `name`, `uid`, `name:group`, `uid:gid`. Resolve against the rootfs /etc/passwd. */
  user: string;
  /** Absolute working directory ('/' when unset); the builder already created it in the rootfs. */
  workdir: string;
  /** Parsed `RUN --mount=…` followed by the global `--mount`s. */
  mounts: RunMount[];
  network: 'host' | 'none';
  /** RUN --security=insecure (allowed by --allow security.insecure): every capability, nothing masked, all devices. */
  privileged: boolean;
  platform: OciPlatform;
  /** SOURCE_DATE_EPOCH: exported to the child and used as the layer's mtime clamp. */
  epoch: number;
  proxyEnv: ProxyInjection;
  /** The build context directory (for `--mount=type=bind` without `from`). */
  contextDir: string;
  /** Per-build directory for `type=cache` mounts (`<cacheRoot>/<id>`); private, removed at exit. */
  cacheRoot: string;
  /** Private temp dir (0700) the executor may use for upper/work dirs and bundles. */
  tmpDir: string;
  /** Materialised rootfs of another stage (name or index) or of an image reference, for `from=`. */
  stageRootfs(stageOrImage: string): Promise<string>;
  signal: AbortSignal;
  /** e.g. `Dockerfile:7`, to prefix error messages. */
  dockerfileLine: string;
  /** stdout/stderr of the step go here (the builder passes process.stderr). */
  output?: NodeJS.WritableStream;
}

export interface RunStepResult {
  /** The step's changes as a layer (from `writeLayer`), or null if nothing changed. */
  layer: LayerInfo | null;
  /** Set to `opts.applyTo` when the executor applied the step's changes there itself. */
  appliedTo?: string;
  /** The layer's paths (fs/listing.ts), kept with a cache entry so a hit needs no extraction to be looked into. */
  listing?: LayerListing;
}

/** What the builder asks of the executor beyond the step itself. */
export interface RunExecutorOptions {
  /**
   * Also apply the step's changes to this directory (the working rootfs, `rootfsLayers[0]`);
   * an executor that does so answers `appliedTo`, one that ignores it leaves the builder to
   * extract the layer.
   */
  applyTo?: string;
}

/** Runs one RUN step; rejects with an HtvendError (code CHILD, citing `dockerfileLine`) on a non-zero exit. */
export type RunExecutor = (req: RunStepRequest, opts?: RunExecutorOptions) => Promise<RunStepResult>;
