/**
 * Environment variables that beat a client's own config file (user or global), so a
 * `cafile=` in an npmrc or a `proxy` in a gitconfig cannot send a client past htvend or make
 * it distrust htvend's CA. Each was checked against the client (see the README's client
 * matrix and test/e2e/client-configs.test.ts):
 *
 * - npm, pnpm: `npm_config_*` beats every npmrc (npm's `cafile` also replaces an inline `ca`).
 * - yarn classic reads the npmrc (so `npm_config_*` covers it) and `YARN_HTTPS_PROXY`; yarn
 *   berry: `YARN_HTTPS_CA_FILE_PATH` and `YARN_HTTP(S)_PROXY` beat .yarnrc.yml (berry reads
 *   no HTTP(S)_PROXY of its own). Not set: `YARN_CAFILE`, the only variable that beats a
 *   `cafile` in yarn classic's own .yarnrc, because yarn berry refuses to start when the
 *   environment holds a setting it does not know (`cafile`).
 * - pip: `PIP_CERT` (in COMMON_CA_VARS) and `PIP_PROXY` beat pip.conf.
 * - git: `GIT_SSL_CAINFO` (in COMMON_CA_VARS) beats `http.sslCAInfo`; a gitconfig's
 *   `http.proxy` beats https_proxy, so `http.proxy` also goes in as a command-line-scope
 *   setting through GIT_CONFIG_COUNT/KEY/VALUE (appended to any the parent has).
 * - cargo: `CARGO_HTTP_CAINFO` (in COMMON_CA_VARS) and `CARGO_HTTP_PROXY` beat its config.
 * - curl, wget: no variable beats their rc files: CURL_HOME and WGETRC name our copies.
 */
import type { ToolConfigPaths } from './files.js';

type Env = Readonly<Record<string, string | undefined>>;

export interface ClientEnvInput {
  caPemPath: string;
  proxyUrl: string;
  /** Files from `writeClientConfigs`, when written. */
  files?: ToolConfigPaths | undefined;
}

/** `GIT_CONFIG_COUNT` and the next KEY/VALUE pair adding `http.proxy`, after the parent's own pairs. */
function gitConfigEnv(parent: Env, proxyUrl: string): Array<[string, string]> {
  const n = Number(parent['GIT_CONFIG_COUNT'] ?? '0');
  // git refuses a malformed count; leave such an environment to git's own error.
  if (!Number.isInteger(n) || n < 0) return [];
  return [
    [`GIT_CONFIG_KEY_${n}`, 'http.proxy'],
    [`GIT_CONFIG_VALUE_${n}`, proxyUrl],
    ['GIT_CONFIG_COUNT', String(n + 1)],
  ];
}

/** The overrides, in a fixed order; the caller skips names its explicit lists already set. */
export function clientEnvOverrides(parent: Env, o: ClientEnvInput): Array<[string, string]> {
  const { caPemPath: ca, proxyUrl: url } = o;
  const out: Array<[string, string]> = [
    ['npm_config_cafile', ca],
    ['npm_config_proxy', url],
    ['npm_config_https_proxy', url],
    ['npm_config_noproxy', ''],
    ['YARN_HTTPS_PROXY', url],
    ['YARN_HTTP_PROXY', url],
    ['YARN_HTTPS_CA_FILE_PATH', ca],
    ['PIP_PROXY', url],
    ['CARGO_HTTP_PROXY', url],
    ...gitConfigEnv(parent, url),
  ];
  if (o.files) {
    out.push(['WGETRC', o.files.wgetrc], ['APT_CONFIG', o.files.aptConfig]);
    if (o.files.curlHome) out.push(['CURL_HOME', o.files.curlHome]);
  }
  return out;
}
