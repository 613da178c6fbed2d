#!/usr/bin/env node
/**
 * `build-img-with-proxy [options] [CONTEXT]` (SPEC §7): argument parsing only, then
 * `buildImages` + `writeOutput`. Flags follow `buildah build`; the environment variables of the
 * original wrapper script (cli/scripts/build-img-with-proxy) keep their meaning — see
 * docs/builder.md.
 */
import { Command, CommanderError, Option } from 'commander';
import { existsSync, realpathSync } from 'node:fs';
import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { HtvendError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { makeLogger, reportError, runIfEntryPoint } from './common.js';
import { withVersion } from './version.js';
import { hostPlatform, parsePlatform, formatPlatform, type Platform } from '../registry/index.js';
import { buildImages } from '../builder/build/build.js';
import { parseSecret } from '../builder/build/mounts.js';
import { parseOutputTarget, writeOutput, type OutputTarget } from '../builder/output/write.js';
import { splitWords, expandWord, varsFrom } from '../builder/dockerfile/lexer.js';
import { executeRun } from '../builder/run/execute.js';
import { proxyInjectionFromEnv } from '../builder/run/proxy-env.js';
import type { SecretSource } from '../builder/run/types.js';

/**
 * The original wrapper's default PLATFORMS. No longer the default (building a second platform
 * under qemu when nobody asked costs 2x or more, and an amd64-only base silently became an
 * "arm64" image): like buildah and BuildKit we build the host platform unless --platform or
 * PLATFORMS says otherwise; `PLATFORMS="linux/arm64 linux/amd64"` gives the old behaviour.
 */
export const WRAPPER_PLATFORMS = 'linux/arm64 linux/amd64';

export interface CliOptions {
  file?: string;
  tag: string[];
  buildArg: string[];
  target?: string;
  platform: string[];
  timestamp?: string;
  secret: string[];
  mount: string[];
  network: string;
  allow: string[];
  label: string[];
  tlsVerify: boolean;
  certDir?: string;
  verbose?: boolean;
}

const collect = (v: string, prev: string[]) => [...prev, v];

function parseBool(v: string | undefined): boolean {
  if (v === undefined || v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new HtvendError('USAGE', `--tls-verify=${v}: expected true or false`);
}

function keyValue(list: string[], flag: string, env: NodeJS.ProcessEnv, fromEnv: boolean): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of list) {
    const eq = kv.indexOf('=');
    if (eq === 0) throw new HtvendError('USAGE', `${flag} ${kv}: want KEY=VALUE`);
    if (eq < 0) {
      if (!fromEnv) throw new HtvendError('USAGE', `${flag} ${kv}: want KEY=VALUE`);
      const v = env[kv];
      if (v !== undefined) m.set(kv, v);
      continue;
    }
    m.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  return m;
}

function platformsFrom(opts: CliOptions, env: NodeJS.ProcessEnv): Platform[] {
  const fromEnv = env['PLATFORMS']?.trim() ? env['PLATFORMS'] : undefined;
  const list = opts.platform.length ? opts.platform.flatMap((p) => p.split(',')) : fromEnv !== undefined ? fromEnv.split(/[\s,]+/) : [formatPlatform(hostPlatform())];
  const seen = new Set<string>();
  const out: Platform[] = [];
  for (const p of list.map((s) => s.trim()).filter(Boolean)) {
    const parsed = parsePlatform(p);
    const key = formatPlatform(parsed);
    if (!seen.has(key)) out.push(parsed);
    seen.add(key);
  }
  if (out.length === 0) throw new HtvendError('USAGE', '--platform: no platform given');
  return out;
}

/** Runs one build from parsed options. Returns the digest of what was written. */
export async function buildCommand(contextArg: string | undefined, opts: CliOptions, env: NodeJS.ProcessEnv, log: Logger, signal: AbortSignal): Promise<string[]> {
  const contextDir = realpathSync(resolve(contextArg ?? '.'));
  if (!(await stat(contextDir)).isDirectory()) throw new HtvendError('USAGE', `CONTEXT ${contextDir} is not a directory`);
  let dockerfile = opts.file ? resolve(opts.file) : join(contextDir, 'Dockerfile');
  if (!opts.file && !existsSync(dockerfile) && existsSync(join(contextDir, 'Containerfile'))) dockerfile = join(contextDir, 'Containerfile');
  const epochRaw = opts.timestamp ?? env['SOURCE_DATE_EPOCH'] ?? '0';
  if (!/^\d+$/.test(epochRaw)) throw new HtvendError('USAGE', `${opts.timestamp !== undefined ? '--timestamp' : 'SOURCE_DATE_EPOCH'}=${epochRaw}: want seconds since 1970`);
  if (opts.network !== 'host' && opts.network !== 'none') throw new HtvendError('USAGE', `--network ${opts.network}: host or none`);
  for (const a of opts.allow) if (a !== 'security.insecure') throw new HtvendError('USAGE', `--allow ${a}: the only entitlement is security.insecure`);
  const targets: OutputTarget[] = (opts.tag.length ? opts.tag : ['oci:oci']).map(parseOutputTarget);
  const platforms = platformsFrom(opts, env);
  const secrets = new Map<string, SecretSource>(opts.secret.map((s) => parseSecret(s, env)));
  const tmp = await mkdtemp(join(tmpdir(), 'build-img-'));
  await chmod(tmp, 0o700);
  try {
    const images = await buildImages({
      contextDir,
      dockerfile,
      dockerfileName: opts.file ?? (dockerfile.endsWith('Containerfile') ? 'Containerfile' : 'Dockerfile'),
      buildArgs: keyValue(opts.buildArg, '--build-arg', env, true),
      ...(opts.target ? { target: opts.target } : {}),
      platforms,
      buildPlatform: hostPlatform(),
      epoch: Number(epochRaw),
      labels: keyValue(opts.label, '--label', env, false),
      secrets,
      globalMounts: opts.mount,
      network: opts.network,
      allowInsecure: opts.allow.includes('security.insecure'),
      env,
      tlsVerify: opts.tlsVerify,
      ...(opts.certDir ? { certDir: opts.certDir } : {}),
      proxy: await proxyInjectionFromEnv(env, tmp),
      runExecutor: executeRun,
      tmpDir: tmp,
      log,
      signal,
    });
    const digests: string[] = [];
    for (const t of targets) {
      digests.push(await writeOutput(t, images, { epoch: Number(epochRaw), env, tlsVerify: opts.tlsVerify, ...(opts.certDir ? { certDir: opts.certDir } : {}), log, signal }));
      log.info(`wrote ${t.kind === 'docker' ? `docker://${t.ref}` : `${t.kind}:${t.path}`} (${digests[digests.length - 1]})`);
    }
    return digests;
  } finally {
    await rm(tmp, { recursive: true, force: true }).catch((e) => log.warn(`could not remove ${tmp}: ${String(e)}`));
  }
}

export function makeProgram(): Command {
  return withVersion(new Command('build-img-with-proxy'))
    .description('Build OCI images from a Dockerfile, daemonless, through the HTTP(S) proxy in the environment (buildah build compatible flags).')
    .argument('[CONTEXT]', 'build context directory', '.')
    .option('-f, --file <path>', 'Dockerfile (default CONTEXT/Dockerfile)')
    .option('-t, --tag <dest>', 'output: oci:DIR[:name], oci-archive:PATH[:name], docker-archive:PATH[:name], docker://registry/repo:tag (repeatable; default oci:oci)', collect, [])
    .option('--build-arg <KEY=VALUE>', 'build argument (KEY alone takes the value from the environment; repeatable)', collect, [])
    .option('--target <stage>', 'build this stage instead of the last one')
    .option('--platform <os/arch[/variant]>', `target platforms, comma-separated or repeated (default $PLATFORMS, else this machine's ${formatPlatform(hostPlatform())}; the wrapper's old default was PLATFORMS="${WRAPPER_PLATFORMS}")`, collect, [])
    .option('--timestamp <seconds>', 'epoch for created times and file times (default $SOURCE_DATE_EPOCH or 0)')
    .option('--secret <id=ID,type=file|env,src=…|env=…>', 'secret for RUN --mount=type=secret (repeatable)', collect, [])
    .option('--mount <spec>', 'mount added to every RUN, same syntax as RUN --mount (repeatable)', collect, [])
    .addOption(new Option('--network <mode>', 'network of RUN steps').choices(['host', 'none']).default('host'))
    .option('--allow <entitlement>', 'security.insecure: let RUN --security=insecure steps run privileged (BuildKit\'s entitlement; repeatable)', collect, [])
    .option('--label <KEY=VALUE>', 'label set on the final image (repeatable)', collect, [])
    .addOption(new Option('--tls-verify [bool]', 'verify registry TLS certificates (false also allows plain HTTP)').argParser(parseBool).default(true))
    .option('--cert-dir <dir>', 'extra CA certificates (*.crt) and client certificate (*.cert/*.key) for registries')
    .option('-v, --verbose', 'debug logging')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
}

/** Entry point: `BUILDAH_OPTS` (split like a shell would) come before the command line's own arguments, as in the wrapper. */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let log: Logger | undefined;
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => ac.abort(new HtvendError('ABORTED', `interrupted by ${sig}`, { exitCode: sig === 'SIGINT' ? 130 : 143 }));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const extra = env['BUILDAH_OPTS'] ? splitWords(env['BUILDAH_OPTS']).map((w) => expandWord(w, varsFrom(env as Record<string, string>))) : [];
    const program = makeProgram();
    try {
      program.parse([...extra, ...argv], { from: 'user' });
    } catch (e) {
      if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
      throw e;
    }
    const opts = program.opts<CliOptions>();
    log = makeLogger(!!opts.verbose, env, 'build-img-with-proxy');
    const digests = await buildCommand(program.args[0], opts, env, log, ac.signal);
    process.stdout.write(`${digests[0]}\n`);
    return 0;
  } catch (e) {
    if (ac.signal.aborted && ac.signal.reason instanceof HtvendError) return reportError(ac.signal.reason, log);
    return reportError(e, log);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

runIfEntryPoint(import.meta.url, 'build-img-with-proxy', main);
