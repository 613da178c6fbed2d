/**
 * The builder's environment → what every RUN gets injected (`ProxyInjection`), with the
 * meaning the original cli/scripts/build-img-with-proxy gives these variables:
 * - `SSL_CERT_FILE`: the CA PEM, mounted read-only at `/run/htvend/<its file name>` inside
 *   the container (not at its host path, which is usually under /tmp, where a Dockerfile's
 *   own `rm -rf /tmp/*` would hit the busy mountpoint); it must exist;
 * - `CERT_FILE_VARS` (space separated): variables pointing at it inside the container (we add
 *   the SPEC §4 CA variables too). Unset or empty means `SSL_CERT_FILE`, as the script's
 *   `${CERT_FILE_VARS:-SSL_CERT_FILE}` does: the CA is mounted whenever SSL_CERT_FILE is set;
 *   apt, which reads none of these, gets an `APT_CONFIG` naming it (our addition, `aptConfig`);
 * - `HTTP_PROXY`, `HTTPS_PROXY`, `FTP_PROXY`, `NO_PROXY` and lowercase forms: passed through
 *   when set, even blank (buildah's `--http-proxy`; htvend sets NO_PROXY blank on purpose);
 * - `JKS_KEYSTORE_PATH` (space separated): where `JKS_KEYSTORE_FILE` (htvend's PKCS#12
 *   truststore) is mounted;
 * - `MVN_SETTINGS_PATH` (space separated): where a Maven settings.xml with the proxy from
 *   `HTTP_PROXY` is mounted;
 * - `JAVA_TOOL_OPTIONS` with `-Dhttp(s).proxyHost` (htvend's child env): every RUN gets the
 *   proxy (and the truststore) appended to its own JAVA_TOOL_OPTIONS.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { HtvendError } from '../../util/errors.js';
import type { ProxyInjection } from './types.js';

/** Where injected files (the CA) appear inside RUN containers: a place no Dockerfile cleans up. */
export const INJECTED_DIR = '/run/htvend';

/** The file name of the apt config next to the CA in INJECTED_DIR. */
const APT_CONFIG_NAME = 'apt.conf';

/**
 * The apt config a step with image/ARG env `env` is given: none when the step sets APT_CONFIG
 * itself (even blank: its choice), so the step's own file is the one apt reads.
 */
export function aptConfigFor(p: Pick<ProxyInjection, 'aptConfig'>, env: readonly string[]): ProxyInjection['aptConfig'] {
  if (!p.aptConfig) return undefined;
  return env.some((e) => e.startsWith('APT_CONFIG=')) ? undefined : p.aptConfig;
}

const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'ftp_proxy', 'no_proxy'];

/** Builds the injection; writes the Maven settings file (when asked) into `tmpDir` (private). */
export async function proxyInjectionFromEnv(env: NodeJS.ProcessEnv, tmpDir: string): Promise<ProxyInjection> {
  const list = (v: string | undefined) => (v ?? '').split(/\s+/).filter(Boolean);
  const out: ProxyInjection = { certFileVars: [], env: {} };
  for (const name of PROXY_VARS) if (env[name] !== undefined) out.env[name] = env[name]!;
  if (env.SSL_CERT_FILE) {
    const ca = resolve(env.SSL_CERT_FILE);
    if (!existsSync(ca)) throw new HtvendError('USAGE', `SSL_CERT_FILE=${env.SSL_CERT_FILE}: no such file (the CA every RUN step is given)`);
    out.caFile = ca;
    out.caTarget = `${INJECTED_DIR}/${basename(ca)}`;
    out.certFileVars = list(env.CERT_FILE_VARS || 'SSL_CERT_FILE');
    // apt: a config of one line, next to the CA (an apt string cannot hold a double quote).
    const aptTarget = `${INJECTED_DIR}/${basename(ca) === APT_CONFIG_NAME ? `htvend-${APT_CONFIG_NAME}` : APT_CONFIG_NAME}`;
    if (!out.caTarget.includes('"')) {
      const hostFile = join(tmpDir, 'apt.conf');
      await writeFile(hostFile, `Acquire::https::CaInfo "${out.caTarget}";\n`, { mode: 0o644 });
      out.aptConfig = { hostFile, target: aptTarget };
    }
  }
  const jksTargets = list(env.JKS_KEYSTORE_PATH);
  if (jksTargets.length > 0) {
    if (!env.JKS_KEYSTORE_FILE) {
      throw new HtvendError('USAGE', 'JKS_KEYSTORE_PATH is set but JKS_KEYSTORE_FILE (the truststore htvend provides) is not', {
        hint: 'run build-img-with-proxy under `htvend build`/`htvend offline`, or set JKS_KEYSTORE_FILE',
      });
    }
    out.jks = { hostFile: env.JKS_KEYSTORE_FILE, targets: jksTargets };
  }
  const mvnTargets = list(env.MVN_SETTINGS_PATH);
  if (mvnTargets.length > 0) {
    const proxy = env.HTTP_PROXY || env.http_proxy;
    if (!proxy) throw new HtvendError('USAGE', 'MVN_SETTINGS_PATH is set but HTTP_PROXY is not: the Maven settings need the proxy');
    const hostFile = join(tmpDir, 'mvn-settings.xml');
    await writeFile(hostFile, mavenSettingsXml(proxy), { mode: 0o644 });
    out.mvnSettings = { hostFile, targets: mvnTargets };
  }
  const java = javaProxyFromEnv(env);
  if (java) {
    // Java trusts the CA through the truststore: at JKS_KEYSTORE_PATH when asked, else mounted
    // next to the CA PEM (so a Java RUN works with no configuration, as SPEC §4 wants for the child).
    let trustStore = jksTargets[0];
    if (!trustStore && env.JKS_KEYSTORE_FILE && existsSync(env.JKS_KEYSTORE_FILE)) {
      trustStore = `${INJECTED_DIR}/${basename(env.JKS_KEYSTORE_FILE)}`;
      out.jks = { hostFile: env.JKS_KEYSTORE_FILE, targets: [trustStore] };
    }
    out.java = { ...java, ...(trustStore ? { trustStore } : {}) };
  }
  return out;
}

/**
 * Java's proxy for RUN steps, when the builder's JAVA_TOOL_OPTIONS proxies Java (htvend sets
 * `-Dhttp.proxyHost/-Dhttp.proxyPort` for its child unless `--no-java-tool-options`) and a
 * proxy variable says where the proxy is; undefined otherwise.
 */
function javaProxyFromEnv(env: NodeJS.ProcessEnv): { host: string; port: number } | undefined {
  if (!/-Dhttps?\.proxyHost=\S/.test(env.JAVA_TOOL_OPTIONS ?? '')) return undefined;
  const proxy = env.HTTPS_PROXY || env.https_proxy || env.HTTP_PROXY || env.http_proxy;
  if (!proxy) return undefined;
  try {
    const u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(proxy) ? proxy : `http://${proxy}`);
    if (u.protocol !== 'http:') return undefined;
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80) };
  } catch {
    return undefined;
  }
}

/** The JVM properties a RUN step gets in JAVA_TOOL_OPTIONS (see `ProxyInjection.java`). */
export function javaStepProperties(j: NonNullable<ProxyInjection['java']>): string[] {
  const props = [`-Dhttp.proxyHost=${j.host}`, `-Dhttp.proxyPort=${j.port}`, `-Dhttps.proxyHost=${j.host}`, `-Dhttps.proxyPort=${j.port}`, '-Dhttp.nonProxyHosts='];
  if (j.trustStore) props.push(`-Djavax.net.ssl.trustStore=${j.trustStore}`, '-Djavax.net.ssl.trustStoreType=PKCS12');
  return props;
}

/** A Maven settings.xml whose only content is an active proxy (what the original script wrote). */
export function mavenSettingsXml(httpProxy: string): string {
  let u: URL;
  try {
    u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(httpProxy) ? httpProxy : `http://${httpProxy}`);
  } catch {
    throw new HtvendError('USAGE', `HTTP_PROXY=${httpProxy}: not a URL`);
  }
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return [
    '<settings>',
    '    <proxies>',
    '        <proxy>',
    '            <id>htvend</id>',
    '            <active>true</active>',
    '            <protocol>http</protocol>',
    `            <host>${esc(host)}</host>`,
    `            <port>${port}</port>`,
    '            <nonProxyHosts />',
    '        </proxy>',
    '    </proxies>',
    '</settings>',
    '',
  ].join('\n');
}
