/**
 * The child's environment (SPEC §4), as a pure function of the parent environment and the
 * session's facts (proxy address, files written to the private temp dir, CLI lists).
 *
 * Like the Go tool (environment_*.go), the result is a list of overrides applied on top of
 * the parent environment, in a fixed order: proxy vars, blank no-proxy vars, CA PEM vars,
 * `-t` temp dirs, truststore vars, then our additions (extra CA vars, JAVA_TOOL_OPTIONS).
 * `--daemon` prints exactly these overrides.
 *
 * Decision — the PEM given to the child holds **our CA only**, not our CA plus the system
 * bundle. NO_PROXY is blank, so every connection a well-behaved client makes goes through
 * the proxy and only ever presents a leaf signed by our CA. The only connections a system
 * bundle would rescue are ones that escape the proxy, and those are exactly the fetches
 * that would be missing from assets.json and break the offline replay: failing them loudly
 * at build time is the useful outcome. (Node's NODE_EXTRA_CA_CERTS *adds* to Node's bundled
 * roots, so Node clients still trust public CAs for direct connections; that is Node's
 * semantics, not ours.) The Go tool does the same.
 */

import { clientEnvOverrides, type ToolConfigPaths } from './client-configs/index.js';
export type { ToolConfigPaths } from './client-configs/index.js';

/** CA variables always pointed at our PEM (besides `--set-env-var-ssl-cert-file`). */
export const COMMON_CA_VARS = [
  'NODE_EXTRA_CA_CERTS',
  'REQUESTS_CA_BUNDLE',
  'CURL_CA_BUNDLE',
  'PIP_CERT',
  'GIT_SSL_CAINFO',
  'AWS_CA_BUNDLE',
  'CARGO_HTTP_CAINFO',
] as const;

/** CA variables recognised by name when already set in the parent environment. */
const KNOWN_IF_SET = new Set([
  'NIX_SSL_CERT_FILE',
  'HTTPLIB2_CA_CERTS',
  'GRPC_DEFAULT_SSL_ROOTS_FILE_PATH',
  'CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE',
  'DENO_CERT',
  'BUNDLE_SSL_CA_CERT',
  'HEX_CACERTS_PATH',
  'WEBSOCKET_CLIENT_CA_BUNDLE',
  'NPM_CONFIG_CAFILE',
  'YARN_CAFILE',
  'UV_CERT',
]);
/** Name shapes of CA-bundle variables (`…_CA_BUNDLE`, `…_CAINFO`, `…_CA_CERTS…`, `…SSL_CERT_FILE`). */
const CA_NAME = /(^|_)(CA|CACERTS?|CAINFO|CAFILE|CABUNDLE)(_|$)|SSL_CERT_FILE$/i;
/** A value that names a file (not a flag like `CA_VERIFY=0`). */
const PATH_LIKE = /\/|\.(pem|crt|cer)$/i;

/** True if the parent's `name=value` looks like a variable a client reads a CA bundle file from. */
export function isCaFileVar(name: string, value: string | undefined): boolean {
  if (!value) return false;
  if (/^SSL_CERT_DIR$/i.test(name)) return false; // a directory, not a file
  return (KNOWN_IF_SET.has(name.toUpperCase()) || CA_NAME.test(name)) && PATH_LIKE.test(value);
}

export interface ChildEnvInput {
  /** Host and port the child reaches the proxy at (loopback). */
  proxyHost: string;
  proxyPort: number;
  /** Our CA certificate, PEM, in the private temp dir. */
  caPemPath: string;
  /** The passwordless PKCS#12 truststore, if one was written (needed by jks vars / Java options). */
  truststorePath?: string | undefined;
  /** Config files for clients whose rc file beats every variable (curl, GNU wget, apt); set with the extra CA vars. */
  toolConfigs?: ToolConfigPaths | undefined;
  /** `--set-env-var-http-proxy` (default HTTP_PROXY HTTPS_PROXY http_proxy https_proxy). */
  httpProxyVars: readonly string[];
  /** `--set-env-var-no-proxy` (default NO_PROXY no_proxy): set blank. */
  noProxyVars: readonly string[];
  /** `--set-env-var-ssl-cert-file` (default SSL_CERT_FILE). */
  certFileVars: readonly string[];
  /** `--set-env-var-jks-keystore` (default JKS_KEYSTORE_FILE). */
  jksKeystoreVars: readonly string[];
  /** `-t/--with-temp-dir` NAME → directory made for it. */
  tempDirs: ReadonlyArray<readonly [name: string, dir: string]>;
  /** Point every other CA variable at the PEM too (our addition; default on). */
  extraCaVars: boolean;
  /** Append proxy + truststore properties to JAVA_TOOL_OPTIONS (our addition; default on). */
  javaToolOptions: boolean;
}

/** `http://host:port/`-style proxy URL (IPv6 literals bracketed). */
export function proxyUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The JVM system properties that send Java's HTTP(S) through the proxy and trust our CA. */
export function javaProperties(host: string, port: number, truststorePath: string): string[] {
  return [
    `-Dhttp.proxyHost=${host}`,
    `-Dhttp.proxyPort=${port}`,
    `-Dhttps.proxyHost=${host}`,
    `-Dhttps.proxyPort=${port}`,
    // Empty (not unset): Java's default bypasses localhost|127.*; blank NO_PROXY means "proxy all".
    '-Dhttp.nonProxyHosts=',
    `-Djavax.net.ssl.trustStore=${truststorePath}`,
    '-Djavax.net.ssl.trustStoreType=PKCS12',
  ];
}

/**
 * The overrides for the child, in order (later entries win when a name repeats). Names
 * listed in `--set-env-var-*` always get their value; extra CA vars never override a name
 * an explicit list already set.
 */
export function childEnvOverrides(parent: Readonly<Record<string, string | undefined>>, o: ChildEnvInput): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const set = new Set<string>();
  const add = (name: string, value: string) => {
    out.push([name, value]);
    set.add(name);
  };
  const url = proxyUrl(o.proxyHost, o.proxyPort);
  for (const n of o.httpProxyVars) add(n, url);
  for (const n of o.noProxyVars) add(n, '');
  for (const n of o.certFileVars) add(n, o.caPemPath);
  for (const [n, dir] of o.tempDirs) add(n, dir);
  if (o.truststorePath) for (const n of o.jksKeystoreVars) add(n, o.truststorePath);
  if (o.extraCaVars) {
    const extra = new Set<string>(COMMON_CA_VARS);
    for (const [n, v] of Object.entries(parent)) if (isCaFileVar(n, v)) extra.add(n);
    for (const n of [...extra].sort()) if (!set.has(n)) add(n, o.caPemPath);
    // Node ≥ 22.21 / 24 make fetch() and http(s).request honour HTTP(S)_PROXY only when asked.
    if (!set.has('NODE_USE_ENV_PROXY')) add('NODE_USE_ENV_PROXY', '1');
    // Variables that beat the clients' own config files (npmrc, .yarnrc.yml, pip.conf,
    // gitconfig, cargo config), and the ones naming our copies of curl's and wget's rc files.
    for (const [n, v] of clientEnvOverrides(parent, { caPemPath: o.caPemPath, proxyUrl: url, files: o.toolConfigs })) if (!set.has(n)) add(n, v);
  }
  if (o.javaToolOptions && o.truststorePath) {
    const before = parent['JAVA_TOOL_OPTIONS']?.trim();
    const props = javaProperties(o.proxyHost, o.proxyPort, o.truststorePath).join(' ');
    add('JAVA_TOOL_OPTIONS', before ? `${before} ${props}` : props);
  }
  return out;
}

/** The full environment for the child: parent plus overrides. */
export function childEnvironment(parent: Readonly<Record<string, string | undefined>>, overrides: ReadonlyArray<readonly [string, string]>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(parent)) if (v !== undefined) env[k] = v;
  for (const [k, v] of overrides) env[k] = v;
  return env;
}

/** POSIX-shell single-quoted form of a value (`'` becomes `'\''`). */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** `export NAME='value'` lines for `--daemon`, one per override. */
export function exportLines(overrides: ReadonlyArray<readonly [string, string]>): string {
  return overrides.map(([k, v]) => `export ${k}=${shellQuote(v)}\n`).join('');
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** True for a valid environment variable name (what `-t` and `--set-env-var-*` accept). */
export function isEnvName(s: string): boolean {
  return ENV_NAME.test(s);
}
