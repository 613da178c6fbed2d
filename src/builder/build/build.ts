/**
 * The build: for each target platform, plan the Dockerfile and build the target stage (and,
 * on demand, the stages it reads from). Base images are pulled fresh into the build's private
 * temp dir through the proxy of the given environment.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dispatcher } from 'undici';
import { createTransport, formatPlatform, type Env, type Platform } from '../../registry/index.js';
import { HtvendError, describeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { parseDockerfile } from '../dockerfile/parse.js';
import { makePlan } from '../plan/plan.js';
import { withConfig, type Image } from '../image/image.js';
import { Puller } from '../pull/pull.js';
import { loadDockerignore } from '../copy/sources.js';
import type { ProxyInjection, RunExecutor, SecretSource } from '../run/types.js';
import { buildStage, StageFs, type BuildContext } from './stage.js';
import { BuildFacts, type BaseImageFact, type StepFact } from './facts.js';

/** BuildKit's predefined ARGs (usable without an ARG line, kept out of history). */
const PREDEFINED_PROXY_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);
import type { BuildCache } from '../cache/hooks.js';

export interface BuildOptions {
  contextDir: string;
  /** Path of the Dockerfile on the host. */
  dockerfile: string;
  /** Name used in messages (`Dockerfile`, or the -f argument). */
  dockerfileName: string;
  buildArgs: Map<string, string>;
  target?: string;
  platforms: Platform[];
  buildPlatform: Platform;
  epoch: number;
  labels: Map<string, string>;
  secrets: Map<string, SecretSource>;
  globalMounts: string[];
  network: 'host' | 'none';
  /** `--allow security.insecure`: RUN --security=insecure steps run privileged (else they are refused). */
  allowInsecure?: boolean;
  /** Environment snapshot: proxy and CA variables for pulls and `ADD <url>`. */
  env: Env;
  tlsVerify?: boolean;
  certDir?: string;
  proxy: ProxyInjection;
  runExecutor: RunExecutor;
  /** Private temp dir (0700) of this build; the caller removes it. */
  tmpDir: string;
  log: Logger;
  signal: AbortSignal;
  /** Step cache, attribution and report (docs/build-cache.md). */
  cache?: BuildCache | undefined;
}

export interface BuiltImage {
  platform: Platform;
  image: Image;
  /** Base images by digest and the assets steps fetched, for this platform (provenance). */
  facts?: { bases: BaseImageFact[]; steps: StepFact[] } | undefined;
}

export async function buildImages(opts: BuildOptions): Promise<BuiltImage[]> {
  let text: string;
  try {
    text = await readFile(opts.dockerfile, 'utf8');
  } catch (e) {
    throw new HtvendError('NOT_FOUND', `cannot read ${opts.dockerfileName}: ${describeError(e)}`, { cause: e });
  }
  const df = parseDockerfile(text, opts.dockerfileName);
  const dockerignore = await loadDockerignore(opts.contextDir, opts.dockerfile);
  const puller = new Puller({
    env: opts.env,
    ...(opts.tlsVerify === false ? { tlsVerify: false } : {}),
    ...(opts.certDir ? { certDir: opts.certDir } : {}),
    blobDir: join(opts.tmpDir, 'blobs'),
    // Each base-image pull under its own identity (attribution).
    ...(opts.cache ? { envFor: (ref: string, p: Platform) => opts.cache!.envFor(opts.cache!.pullStepId(ref, p)) } : {}),
    log: opts.log,
    signal: opts.signal,
  });
  let dispatcher: Promise<Dispatcher> | undefined;
  const getDispatcher = () =>
    (dispatcher ??= createTransport({ env: opts.env, ...(opts.tlsVerify === false ? { tlsVerify: false } : {}), ...(opts.certDir ? { certDir: opts.certDir } : {}), signal: opts.signal }));
  const facts = new BuildFacts();
  try {
    const out: BuiltImage[] = [];
    for (const platform of opts.platforms) {
      opts.log.info(`building for ${formatPlatform(platform)}`);
      const plan = makePlan(df, { buildArgs: opts.buildArgs, ...(opts.target ? { target: opts.target } : {}), platform, buildPlatform: opts.buildPlatform });
      const stages = new Map<number, Promise<{ image: Image; fs: StageFs }>>();
      const imageRoots = new Map<string, Promise<string>>();
      const ctx: BuildContext = {
        plan,
        contextDir: opts.contextDir,
        dockerignore,
        epoch: opts.epoch,
        tmpDir: opts.tmpDir,
        log: opts.log,
        signal: opts.signal,
        pullImage: (ref, where) => puller.pull(ref, platform, where),
        stage: (index) => {
          let p = stages.get(index);
          if (!p) {
            const st = plan.allStages[index];
            if (!st) throw new HtvendError('INTERNAL', `stage ${index} is not in the plan`);
            p = buildStage(ctx, st);
            stages.set(index, p);
          }
          return p;
        },
        imageRootfs: (ref, where) => {
          let p = imageRoots.get(ref);
          if (!p) {
            p = (async () => {
              const img = await puller.pull(ref, platform, where);
              const fs = new StageFs(await mkdtemp(join(opts.tmpDir, 'image-rootfs-')), img, opts.log, opts.signal);
              return fs.sync();
            })();
            imageRoots.set(ref, p);
          }
          return p;
        },
        runExecutor: opts.runExecutor,
        proxy: opts.proxy,
        globalMounts: opts.globalMounts,
        secrets: opts.secrets,
        network: opts.network,
        allowInsecure: opts.allowInsecure ?? false,
        dispatcher: getDispatcher,
        facts: { platform: formatPlatform(platform), collector: facts },
        cache: opts.cache,
      };
      let { image } = await ctx.stage(plan.target);
      const unused = [...opts.buildArgs.keys()].filter((k) => !df.globalArgs.some((a) => a.args.some((x) => x.name === k)) && !df.stages.some((s) => s.instructions.some((i) => i.kind === 'ARG' && i.args.some((x) => x.name === k))));
      // BuildKit's predefined proxy ARGs reach RUN without an ARG line; here RUN always gets
      // htvend's proxy (SPEC §7), so say that rather than "not consumed".
      const proxyArgs = unused.filter((k) => PREDEFINED_PROXY_ARGS.has(k));
      const other = unused.filter((k) => !PREDEFINED_PROXY_ARGS.has(k));
      if (other.length) opts.log.warn(`--build-arg ${other.join(', ')}: not consumed by any ARG`);
      if (proxyArgs.length) opts.log.warn(`--build-arg ${proxyArgs.join(', ')}: ignored, RUN steps always use the proxy build-img-with-proxy was started with`);
      if (opts.labels.size) image = withConfig(image, (c) => ({ ...c, Labels: { ...(c.Labels ?? {}), ...Object.fromEntries(opts.labels) } }));
      for (const b of puller.resolved) facts.addBase(b);
      out.push({ platform, image, facts: facts.forPlatform(formatPlatform(platform)) });
    }
    return out;
  } finally {
    await puller.close();
    if (dispatcher) await (await dispatcher.catch(() => undefined))?.close();
  }
}
