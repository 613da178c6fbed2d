/**
 * The builder's environment → what every RUN gets injected (`ProxyInjection`), with the
 * meaning the original cli/scripts/build-img-with-proxy gives these variables:
 * - `SSL_CERT_FILE`: the CA PEM, mounted read-only at `/run/htvend/<its file name>` inside
 *   the container (not at its host path, which is usually under /tmp, where a Dockerfile's
 *   own `rm -rf /tmp/*` would hit the busy mountpoint); it must exist;
 * - `CERT_FILE_VARS` (space separated): variables pointing at it inside the container (we add
 *   the SPEC §4 CA variables too). Unset or empty means `SSL_CERT_FILE`, as the script's
 *   `${CERT_FILE_VARS:-SSL_CERT_FILE}` does: the CA is mounted whenever SSL_CERT_FILE is set;
 * - `HTTP_PROXY`, `HTTPS_PROXY`, `FTP_PROXY`, `NO_PROXY` and lowercase forms: passed through
 *   when set, even blank (buildah's `--http-proxy`; htvend sets NO_PROXY blank on purpose);
 * - `JKS_KEYSTORE_PATH` (space separated): where `JKS_KEYSTORE_FILE` (htvend's PKCS#12
 *   truststore) is mounted;
 * - `MVN_SETTINGS_PATH` (space separated): where a Maven settings.xml with the proxy from
 *   `HTTP_PROXY` is mounted.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { HtvendError } from '../../util/errors.js';
import type { ProxyInjection } from './types.js';

/** Where injected files (the CA) appear inside RUN containers: a place no Dockerfile cleans up. */
export const INJECTED_DIR = '/run/htvend';

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
  return out;
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
