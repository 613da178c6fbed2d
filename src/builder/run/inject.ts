/**
 * What every RUN gets so it goes through the htvend proxy and trusts its CA (SPEC §4, §7; the
 * original cli/scripts/build-img-with-proxy): proxy variables, the CA PEM bind-mounted
 * read-only under /run/htvend/ (proxy-env.ts picks `caTarget`) with every CERT_FILE_VARS name
 * (and the common CA variables) pointing at it, the PKCS#12 truststore at each JKS_KEYSTORE_PATH, the Maven
 * settings at each MVN_SETTINGS_PATH, apt's CA in an APT_CONFIG next to the CA, Java's proxy in JAVA_TOOL_OPTIONS, and SOURCE_DATE_EPOCH. All of it lives only in the
 * container's env and mounts, never in the rootfs, so none of it can reach a layer.
 */
import { posix } from 'node:path';
import { COMMON_CA_VARS as CHILD_CA_VARS } from '../../child/env.js';
import { aptConfigFor, javaStepProperties } from './proxy-env.js';
import { getEnv, type OciMount } from './spec.js';
import type { RunStepRequest } from './types.js';

/** CA variables clients read (SPEC §4: the same list htvend gives its child), set alongside CERT_FILE_VARS. */
export const COMMON_CA_VARS = ['SSL_CERT_FILE', ...CHILD_CA_VARS];

export interface Injection {
  /** `NAME=value` entries that override the image env for this step only. */
  env: string[];
  mounts: OciMount[];
}

/** The env and read-only mounts injected into one step. */
export function proxyInjection(req: Pick<RunStepRequest, 'proxyEnv' | 'epoch' | 'env'>): Injection {
  const p = req.proxyEnv;
  const env = Object.entries(p.env).map(([k, v]) => `${k}=${v}`);
  const mounts: OciMount[] = [];
  const ro = (source: string, target: string): OciMount => ({ destination: posix.resolve('/', target), type: 'bind', source, options: ['rbind', 'ro'] });
  if (p.caFile) {
    const target = p.caTarget || p.caFile;
    mounts.push(ro(p.caFile, target));
    for (const name of new Set([...p.certFileVars, ...COMMON_CA_VARS])) env.push(`${name}=${posix.resolve('/', target)}`);
  }
  const apt = aptConfigFor(p, req.env);
  if (apt) {
    mounts.push(ro(apt.hostFile, apt.target));
    env.push(`APT_CONFIG=${apt.target}`);
  }
  for (const t of p.jks?.targets ?? []) mounts.push(ro(p.jks!.hostFile, t));
  for (const t of p.mvnSettings?.targets ?? []) mounts.push(ro(p.mvnSettings!.hostFile, t));
  if (p.java) {
    // Appended to the image's own value (a Dockerfile's `ENV JAVA_TOOL_OPTIONS=-Xmx…` stays).
    const own = getEnv(req.env, 'JAVA_TOOL_OPTIONS')?.trim();
    const props = javaStepProperties(p.java).join(' ');
    env.push(`JAVA_TOOL_OPTIONS=${own ? `${own} ${props}` : props}`);
  }
  env.push(`SOURCE_DATE_EPOCH=${req.epoch}`);
  return { env, mounts };
}
