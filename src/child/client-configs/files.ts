/**
 * Config files for clients whose own config file beats every environment variable, written
 * into the session's private dir: each is the user's file (what the client would have read)
 * with our lines appended, so the user's other settings still apply and ours win (these
 * formats let a later line override an earlier one).
 *
 * - GNU wget: `ca_certificate` and the `*_proxy` settings of ~/.wgetrc beat SSL_CERT_FILE
 *   and https_proxy (GnuTLS builds read no CA variable at all); WGETRC names our copy.
 * - curl: `cacert`/`proxy` in .curlrc beat CURL_CA_BUNDLE and https_proxy; curl reads only
 *   the first .curlrc of $CURL_HOME, $XDG_CONFIG_HOME, $HOME, so CURL_HOME names a dir
 *   holding our copy.
 * - apt: `Acquire::https::CaInfo` via APT_CONFIG (read in addition to /etc/apt).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Files written by `writeClientConfigs`, each named by one variable in the child. */
export interface ToolConfigPaths {
  /** GNU wget: a wgetrc (WGETRC). */
  wgetrc: string;
  /** apt: a config with `Acquire::https::CaInfo` (APT_CONFIG). */
  aptConfig: string;
  /** curl: a directory holding `.curlrc` (CURL_HOME). Absent when not written. */
  curlHome?: string | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

async function readOptional(path: string | undefined, signal?: AbortSignal): Promise<string | undefined> {
  if (!path) return undefined;
  try {
    return await readFile(path, { encoding: 'utf8', signal });
  } catch {
    return undefined; // nothing to build on
  }
}

/** `text` followed by a newline unless it is empty or already ends with one. */
const withNewline = (text: string) => (text && !text.endsWith('\n') ? `${text}\n` : text);

/** apt string literal: apt config strings cannot escape `"`, so such a path is left out. */
function aptString(s: string): string | undefined {
  return s.includes('"') ? undefined : `"${s}"`;
}

/** curl config string: double-quoted, backslash escapes (tool_parsecfg.c). */
const curlString = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/** The .curlrc curl itself would read: the first of $CURL_HOME, $XDG_CONFIG_HOME, $HOME (curl(1) -K). */
export async function userCurlrc(env: Env, signal?: AbortSignal): Promise<string> {
  for (const d of [env['CURL_HOME'], env['XDG_CONFIG_HOME'], env['HOME']]) {
    if (!d) continue;
    const text = await readOptional(join(d, '.curlrc'), signal);
    if (text !== undefined) return text;
  }
  return '';
}

export interface WriteClientConfigsOptions {
  /** The private dir. */
  dir: string;
  caPemPath: string;
  /** The proxy URL the child gets in HTTP(S)_PROXY; when absent only the CA lines are written. */
  proxyUrl?: string | undefined;
  /** The parent's environment (whose WGETRC, HOME, CURL_HOME… name the user's files). */
  parentEnv: Env;
  signal?: AbortSignal | undefined;
}

export async function writeClientConfigs(o: WriteClientConfigsOptions): Promise<ToolConfigPaths> {
  const { dir, caPemPath, proxyUrl, parentEnv: env, signal } = o;
  const wgetrc = join(dir, 'wgetrc');
  const userWgetrc = env['WGETRC'] || (env['HOME'] ? join(env['HOME'], '.wgetrc') : undefined);
  const wgetProxy = proxyUrl ? `use_proxy = on\nhttp_proxy = ${proxyUrl}\nhttps_proxy = ${proxyUrl}\nno_proxy = \n` : '';
  await writeFile(wgetrc, `${withNewline((await readOptional(userWgetrc, signal)) ?? '')}# added by htvend\nca_certificate = ${caPemPath}\n${wgetProxy}`, { mode: 0o444, signal });

  const aptConfig = join(dir, 'apt.conf');
  const parent = env['APT_CONFIG'] ? aptString(env['APT_CONFIG']) : undefined;
  const ca = aptString(caPemPath);
  await writeFile(aptConfig, `${parent ? `#include ${parent};\n` : ''}${ca ? `Acquire::https::CaInfo ${ca};\n` : ''}`, { mode: 0o444, signal });

  const curlHome = join(dir, 'curl');
  await mkdir(curlHome, { mode: 0o700 });
  const curlProxy = proxyUrl ? `proxy = ${curlString(proxyUrl)}\nnoproxy = ""\n` : '';
  await writeFile(join(curlHome, '.curlrc'), `${withNewline(await userCurlrc(env, signal))}# added by htvend\ncacert = ${curlString(caPemPath)}\n${curlProxy}`, { mode: 0o444, signal });
  return { wgetrc, aptConfig, curlHome };
}
