#!/usr/bin/env node
/**
 * `build-img-with-proxy [options] [CONTEXT]` (SPEC §7): argument parsing only, then
 * `buildImages` + `writeOutput`. Flags follow `buildah build`; the environment variables of the
 * original wrapper script (cli/scripts/build-img-with-proxy) keep their meaning — see
 * docs/builder.md.
 */
import { Command, CommanderError, Option } from 'commander';
import { existsSync, realpathSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { HtvendError, describeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { writeStderr, writeStdout } from '../util/stdio.js';
import { commanderOutput, makeLogger, reportError, runIfEntryPoint } from './common.js';
import { withVersion } from './version.js';
import { timed, timingMark } from '../util/timing.js';
import { hostPlatform, parsePlatform, formatPlatform, type Platform } from '../registry/index.js';
import { buildImages } from '../builder/build/build.js';
import { createBuildDir } from '../builder/build/build-dir.js';
import { parseMount, parseSecret } from '../builder/build/mounts.js';
import { checkOutputTarget, parseOutputTarget, writeOutput, type OutputTarget } from '../builder/output/write.js';
import { parseDockerfile } from '../builder/dockerfile/parse.js';
import { makePlan } from '../builder/plan/plan.js';
import { readFile } from 'node:fs/promises';
import { splitWords, expandWord, varsFrom } from '../builder/dockerfile/lexer.js';
import { executeRun } from '../builder/run/execute.js';
import { proxyInjectionFromEnv } from '../builder/run/proxy-env.js';
import type { SecretSource } from '../builder/run/types.js';
import { needsRootless, reexecRootless } from '../builder/rootless/enter.js';
import type { AttestationManifest } from '../supply/attest/layout.js';
import { addCacheOptions, finishBuildCache, openBuildCache, type CacheCliOptions } from './build-cache-options.js';

/**
 * The original wrapper's default PLATFORMS. No longer the default (building a second platform
 * under qemu when nobody asked costs 2x or more, and an amd64-only base silently became an
 * "arm64" image): like buildah and BuildKit we build the host platform unless --platform or
 * PLATFORMS says otherwise; `PLATFORMS="linux/arm64 linux/amd64"` gives the old behaviour.
 */
export const WRAPPER_PLATFORMS = 'linux/arm64 linux/amd64';

export interface CliOptions extends CacheCliOptions {
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
  /** buildx's --provenance / --sbom (docs/supply-chain.md). */
  provenance: boolean;
  sbom: boolean;
  quiet?: boolean;
}

const PROG = 'build-img-with-proxy';

const collect = (v: string, prev: string[]) => [...prev, v];

function parseBool(v: string | undefined): boolean {
  if (v === undefined || v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new HtvendError('USAGE', `--tls-verify=${v}: expected true or false`);
}

/**
 * buildx writes `--provenance=true|false|mode=min|max` and `--sbom=true|false`. Those are
 * boolean flags here (an optional value would swallow a following CONTEXT argument), so the
 * `=value` forms are rewritten first; both provenance modes give the same statement.
 */
export function rewriteAttestFlags(argv: readonly string[]): string[] {
  return argv.map((a) => {
    const m = /^--(provenance|sbom)=(.*)$/.exec(a);
    if (!m) return a;
    const [, flag, v] = m;
    if (v === 'true' || v === '1' || (flag === 'provenance' && /^mode=(min|max)$/.test(v!))) return `--${flag}`;
    if (v === 'false' || v === '0') return `--no-${flag}`;
    throw new HtvendError('USAGE', `--${flag}=${v}: expected true or false${flag === 'provenance' ? ' or mode=min|max' : ''}`);
  });
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

/** GOOS / GOARCH values that image indexes use (the OCI image spec defers to Go's lists). */
const KNOWN_OS = new Set(['linux', 'windows', 'darwin', 'freebsd', 'netbsd', 'openbsd', 'dragonfly', 'solaris', 'illumos', 'aix', 'android', 'ios', 'plan9', 'js', 'wasip1']);
const KNOWN_ARCH = new Set(['amd64', 'arm64', 'arm', '386', 'ppc64le', 'ppc64', 's390x', 'riscv64', 'mips', 'mipsle', 'mips64', 'mips64le', 'loong64', 'wasm']);
/** What people type for the Go names. */
const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', i386: '386', i686: '386', armhf: 'arm', armv7l: 'arm' };

function checkPlatform(p: Platform, raw: string, source: string): void {
  if (!KNOWN_OS.has(p.os)) {
    throw new HtvendError('USAGE', `${source} ${raw}: unknown operating system ${JSON.stringify(p.os)}`, { hint: 'want os/arch[/variant] with Go names, e.g. linux/amd64, linux/arm64, linux/arm/v7' });
  }
  if (!KNOWN_ARCH.has(p.architecture)) {
    const alias = ARCH_ALIASES[p.architecture];
    throw new HtvendError('USAGE', `${source} ${raw}: unknown architecture ${JSON.stringify(p.architecture)}`, {
      hint: alias ? `the Go name is ${alias}: ${p.os}/${alias}` : `want one of ${[...KNOWN_ARCH].join(', ')}`,
    });
  }
}

function platformsFrom(opts: CliOptions, env: NodeJS.ProcessEnv): Platform[] {
  const fromEnv = env['PLATFORMS']?.trim() ? env['PLATFORMS'] : undefined;
  const list = opts.platform.length ? opts.platform.flatMap((p) => p.split(',')) : fromEnv !== undefined ? fromEnv.split(/[\s,]+/) : [formatPlatform(hostPlatform())];
  const seen = new Set<string>();
  const out: Platform[] = [];
  const source = opts.platform.length ? '--platform' : fromEnv !== undefined ? 'PLATFORMS=' : '--platform';
  for (const p of list.map((s) => s.trim()).filter(Boolean)) {
    let parsed: Platform;
    try {
      parsed = parsePlatform(p);
    } catch (e) {
      throw new HtvendError('USAGE', `${source} ${p}: ${describeError(e).replace(/^invalid platform "[^"]*": /, '')}`);
    }
    checkPlatform(parsed, p, source);
    const key = formatPlatform(parsed);
    if (!seen.has(key)) out.push(parsed);
    seen.add(key);
  }
  if (out.length === 0) throw new HtvendError('USAGE', '--platform: no platform given');
  return out;
}

/** The image's name for attestation subjects: the first docker:// destination, else the first named one. */
function imageName(targets: readonly OutputTarget[]): string | undefined {
  for (const t of targets) if (t.kind === 'docker') return t.ref;
  for (const t of targets) if (t.kind !== 'docker' && t.name) return t.name;
  return undefined;
}

/** The build context directory, checked: a missing one is named as such, not as a raw ENOENT. */
function contextDirOf(contextArg: string | undefined): string {
  const given = contextArg ?? '.';
  let real: string;
  try {
    real = realpathSync(resolve(given));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new HtvendError('USAGE', `build context ${given}: ${code === 'ENOENT' ? 'no such directory' : describeError(e)}`, {
      hint: 'give the directory holding the Dockerfile (or Containerfile) and the files it copies, e.g. build-img-with-proxy -t oci:out .',
    });
  }
  return real;
}

/** -f, else CONTEXT/Dockerfile, else CONTEXT/Containerfile (as buildah and podman). */
function dockerfileOf(contextDir: string, file: string | undefined): { path: string; name: string } {
  if (file) {
    const path = resolve(file);
    if (!existsSync(path)) throw new HtvendError('USAGE', `-f ${file}: no such file`);
    return { path, name: file };
  }
  for (const name of ['Dockerfile', 'Containerfile']) if (existsSync(join(contextDir, name))) return { path: join(contextDir, name), name };
  throw new HtvendError('USAGE', `no Dockerfile or Containerfile in the build context ${contextDir}`, { hint: 'add one, or name it with -f PATH' });
}

/**
 * Every flag, the Dockerfile, --target and the outputs checked before any work (temp dirs,
 * pulls, RUN steps) starts, so a typo fails in milliseconds and leaves nothing behind.
 */
async function checkBeforeBuild(dockerfile: { path: string; name: string }, opts: CliOptions, platforms: Platform[], targets: OutputTarget[], secrets: Map<string, SecretSource>, env: NodeJS.ProcessEnv): Promise<void> {
  for (const m of opts.mount) {
    try {
      parseMount(m, '', secrets);
    } catch (e) {
      throw new HtvendError('USAGE', describeError(e).replace(/^: /, ''), { hint: 'same syntax as RUN --mount: type=bind|cache|tmpfs|secret,target=/path,…' });
    }
  }
  const df = parseDockerfile(await readFile(dockerfile.path, 'utf8'), dockerfile.name);
  // Planning is pure: a bad --target (or FROM) fails here, before the first pull.
  for (const platform of platforms) {
    try {
      makePlan(df, { buildArgs: keyValue(opts.buildArg, '--build-arg', env, true), ...(opts.target ? { target: opts.target } : {}), platform, buildPlatform: hostPlatform() });
    } catch (e) {
      // A --target naming no stage is a bad flag (exit 2); other plan errors are the Dockerfile's.
      if (e instanceof HtvendError && e.message.startsWith('--target')) throw new HtvendError('USAGE', e.message, { ...(e.hint ? { hint: e.hint } : {}), cause: e });
      throw e;
    }
  }
  for (const t of targets) await checkOutputTarget(t);
}

/** Runs one build from parsed options. Returns the digest of what was written. */
export async function buildCommand(contextArg: string | undefined, opts: CliOptions, env: NodeJS.ProcessEnv, log: Logger, signal: AbortSignal): Promise<string[]> {
  timingMark('build started');
  const contextDir = contextDirOf(contextArg);
  if (!(await stat(contextDir)).isDirectory()) throw new HtvendError('USAGE', `build context ${contextDir} is not a directory`);
  const df = dockerfileOf(contextDir, opts.file);
  const dockerfile = df.path;
  const epochRaw = opts.timestamp ?? env['SOURCE_DATE_EPOCH'] ?? '0';
  if (!/^\d+$/.test(epochRaw)) throw new HtvendError('USAGE', `${opts.timestamp !== undefined ? '--timestamp' : 'SOURCE_DATE_EPOCH'}=${epochRaw}: want seconds since 1970`);
  if (opts.network !== 'host' && opts.network !== 'none') throw new HtvendError('USAGE', `--network ${opts.network}: host or none`);
  for (const a of opts.allow) if (a !== 'security.insecure') throw new HtvendError('USAGE', `--allow ${a}: the only entitlement is security.insecure`);
  const targets: OutputTarget[] = (opts.tag.length ? opts.tag : ['oci:oci']).map(parseOutputTarget);
  const platforms = platformsFrom(opts, env);
  const secrets = new Map<string, SecretSource>(opts.secret.map((s) => parseSecret(s, env)));
  await checkBeforeBuild(df, opts, platforms, targets, secrets, env);
  // Sweeps what builds that died left behind, then makes ours (with its lock file).
  const tmp = await createBuildDir(log);
  let cache: Awaited<ReturnType<typeof openBuildCache>> | undefined;
  let ok = false;
  try {
    cache = await timed('cache open', () => openBuildCache(opts, { dockerfileName: df.name, env, tlsVerify: opts.tlsVerify, ...(opts.certDir ? { certDir: opts.certDir } : {}), tmpDir: tmp, log, signal }));
    const buildOpts: Parameters<typeof buildImages>[0] = {
      contextDir,
      dockerfile,
      dockerfileName: df.name,
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
      cache,
    };
    const images = await timed('build', () => buildImages(buildOpts));
    // Loaded only when asked for: the attestation code (packageurl-js, the SBOM scanner) costs
    // tens of ms of start-up that a plain build, above all a warm one, should not pay.
    const attest = opts.provenance === true || opts.sbom === true ? (await import('../supply/attest/attach.js')).attestationsFor : undefined;
    const attestations: AttestationManifest[] = !attest ? [] : await attest(images, {
      provenance: opts.provenance === true,
      sbom: opts.sbom === true,
      dockerfile,
      dockerfileName: df.name,
      buildArgs: keyValue(opts.buildArg, '--build-arg', env, true),
      target: opts.target,
      epoch: Number(epochRaw),
      htvendMode: env['HTVEND_MODE'],
      imageName: imageName(targets),
      // Per-step attribution (docs/build-cache.md): what RUN steps fetched through the proxy.
      extraSteps: cache?.report.steps,
      signal,
    });
    const digests: string[] = [];
    for (const t of targets) {
      digests.push(await timed(`write ${t.kind}`, () => writeOutput(t, images, { epoch: Number(epochRaw), env, tlsVerify: opts.tlsVerify, ...(opts.certDir ? { certDir: opts.certDir } : {}), log, signal, attestations })));
      log.info(`wrote ${t.kind === 'docker' ? `docker://${t.ref}` : `${t.kind}:${t.path}`} (${digests[digests.length - 1]})`);
    }
    ok = true;
    return digests;
  } finally {
    if (cache) await timed('cache finish', () => finishBuildCache(cache!, ok)).catch((e) => log.warn(`build cache: ${String(e)}`));
    await rm(tmp, { recursive: true, force: true }).catch((e) => log.warn(`could not remove ${tmp}: ${String(e)}`));
  }
}

const EXAMPLES = `
Examples:
  $ build-img-with-proxy --platform linux/amd64 -t oci-archive:img.tar .
  $ htvend build -- build-img-with-proxy -t oci:out:app -t docker://registry.example/app:1 .
  $ htvend offline -- build-img-with-proxy --platform linux/amd64,linux/arm64 -f app/Containerfile -t oci-archive:img.tar app

Without -f the Dockerfile is CONTEXT/Dockerfile, else CONTEXT/Containerfile. BUILDAH_OPTS adds
arguments before these; docs/builder.md has the details.
`;

export function makeProgram(): Command {
  return addCacheOptions(withVersion(new Command('build-img-with-proxy')))
    .description('Build OCI images from a Dockerfile, daemonless, through the HTTP(S) proxy in the environment (buildah build compatible flags).')
    .argument('[CONTEXT]', 'build context directory', '.')
    .option('-f, --file <path>', 'Dockerfile (default CONTEXT/Dockerfile, else CONTEXT/Containerfile)')
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
    .option('--provenance', "attach SLSA v1 provenance to each platform image, in BuildKit's attestation layout (also --provenance=true|false|mode=max)")
    .option('--no-provenance', 'do not attach provenance (default)')
    .option('--sbom', 'attach an SPDX SBOM (fetched assets + installed packages) to each platform image (also --sbom=true|false)')
    .option('--no-sbom', 'do not attach an SBOM (default)')
    .option('-v, --verbose', 'debug logging (wins over LOG_LEVEL)')
    .option('-q, --quiet', 'errors only: no progress lines, RUN output still shown (LOG_LEVEL=error)')
    .exitOverride()
    .configureOutput(commanderOutput(PROG, PROG))
    .addHelpText('after', EXAMPLES);
}

/**
 * BUILDAH_OPTS on its own, in a silent program: a bad flag there is reported as coming from
 * BUILDAH_OPTS (the user did not type it, and may not know the variable is set).
 */
function checkBuildahOpts(extra: string[]): void {
  if (!extra.length) return;
  let message = '';
  const p = makeProgram().configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: (s) => (message = s.replace(/^error: /, '').trim()) });
  try {
    p.parse(extra, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError && e.exitCode !== 0) {
      throw new HtvendError('USAGE', `BUILDAH_OPTS: ${message || e.message}`, { hint: `BUILDAH_OPTS=${JSON.stringify(extra.join(' '))} is added before the command line; fix or unset it` });
    }
  }
}

/**
 * A usage error about a flag (`--network bridge: …`) that only BUILDAH_OPTS gave, not the
 * command line, is said to come from BUILDAH_OPTS.
 */
function fromBuildahOpts(e: unknown, env: NodeJS.ProcessEnv, argv: string[]): unknown {
  if (!(e instanceof HtvendError) || e.code !== 'USAGE' || !env['BUILDAH_OPTS']) return e;
  const flag = /^(--?[a-z][a-z-]*)/.exec(e.message)?.[1];
  if (!flag) return e;
  const given = (args: string[]) => args.some((a) => a === flag || a.startsWith(`${flag}=`));
  const extra = splitWords(env['BUILDAH_OPTS']);
  if (!given(extra) || given(argv)) return e;
  return new HtvendError('USAGE', `BUILDAH_OPTS: ${e.message}`, { hint: e.hint ?? `BUILDAH_OPTS=${JSON.stringify(env['BUILDAH_OPTS'])} is added before the command line; fix or unset it`, cause: e });
}

/** Entry point: `BUILDAH_OPTS` (split like a shell would) come before the command line's own arguments, as in the wrapper. */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let log: Logger | undefined;
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => ac.abort(new HtvendError('ABORTED', `interrupted by ${sig}`, { exitCode: sig === 'SIGINT' ? 130 : 143 }));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const report = (e: unknown) => reportError(e, log, writeStderr, { prog: PROG });
  try {
    const extra = env['BUILDAH_OPTS'] ? splitWords(env['BUILDAH_OPTS']).map((w) => expandWord(w, varsFrom(env as Record<string, string>))) : [];
    checkBuildahOpts(extra);
    const program = makeProgram();
    try {
      program.parse(rewriteAttestFlags([...extra, ...argv]), { from: 'user' });
    } catch (e) {
      if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
      throw e;
    }
    const opts = program.opts<CliOptions>();
    // Not root: build as root of a user namespace mapped from /etc/subuid (docs/rootless.md).
    if (needsRootless()) return await reexecRootless(env, ac.signal);
    log = makeLogger(!!opts.verbose, env, PROG, !!opts.quiet);
    const digests = await buildCommand(program.args[0], opts, env, log, ac.signal);
    writeStdout(`${digests[0]}\n`);
    return 0;
  } catch (e) {
    if (ac.signal.aborted && ac.signal.reason instanceof HtvendError) return report(ac.signal.reason);
    return report(fromBuildahOpts(e, env, argv));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

runIfEntryPoint(import.meta.url, 'build-img-with-proxy', main);
