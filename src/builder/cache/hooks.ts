/**
 * The builder's side of the cache, kept out of stage.ts so its hooks stay a few lines: keys
 * from a step's inputs, and the RUN/COPY flows around a cache lookup.
 */
import { join } from 'node:path';
import type { Image } from '../image/image.js';
import type { LayerEntry, LayerInfo } from '../fs/types.js';
import { aptConfigFor } from '../run/proxy-env.js';
import type { ProxyInjection, RunMount, RunStepRequest } from '../run/types.js';
import { chainId, copyKey, entryKey, runKey, type MountKey } from './key.js';
import { fileDigest, treeDigest } from './hash.js';
import type { StepRecord } from './report.js';
import { BuildCache } from './session.js';

export { BuildCache };

/** What a step's report record says beyond its timing (filled in by the step). */
export interface StepOutcome {
  status: 'run' | 'cached';
  assets?: StepRecord['assets'];
  stepId?: string;
  cacheKey?: string;
  note?: string;
}

export function parentState(image: Image): string {
  return `${image.config.os}/${image.config.architecture}${image.config.variant ? `/${image.config.variant}` : ''}:${chainId(image.layers.map((l) => l.diffId))}`;
}

/** Resolves the image behind a mount's `from=` (a stage or an image reference). */
export type FromImage = (ref: string) => Promise<Image>;

async function mountKey(m: RunMount, contextDir: string, fromImage: FromImage, signal: AbortSignal): Promise<MountKey> {
  switch (m.type) {
    case 'bind': {
      // A file the builder made (a RUN heredoc script) counts by its content, not its temp path.
      const content = m.hostSource !== undefined ? await treeDigest(m.hostSource, signal) : m.from !== undefined ? `from:${parentState(await fromImage(m.from))}` : await treeDigest(join(contextDir, m.source), signal);
      return { type: 'bind', target: m.target, source: m.source, readonly: m.readonly, content };
    }
    case 'cache':
      return {
        type: 'cache', target: m.target, id: m.id, sharing: m.sharing, readonly: m.readonly, mode: m.mode, uid: m.uid, gid: m.gid,
        ...(m.from !== undefined ? { seed: `${parentState(await fromImage(m.from))}:${m.source ?? ''}` } : {}),
      };
    case 'tmpfs':
      return { type: 'tmpfs', target: m.target, ...(m.size !== undefined ? { size: m.size } : {}) };
    case 'secret':
      // The id and where it goes, never the value: a rotated token must not rebuild the image.
      return {
        type: 'secret', id: m.id, required: m.required, mode: m.mode, uid: m.uid, gid: m.gid, present: m.source !== undefined,
        ...(m.target !== undefined ? { target: m.target } : {}), ...(m.env !== undefined ? { env: m.env } : {}),
      };
  }
}

export async function runStepKey(req: Omit<RunStepRequest, 'rootfsLayers' | 'stageRootfs'>, image: Image, proxy: ProxyInjection, fromImage: FromImage): Promise<string> {
  const mounts: MountKey[] = [];
  for (const m of req.mounts) mounts.push(await mountKey(m, req.contextDir, fromImage, req.signal));
  const apt = aptConfigFor(proxy, req.env);
  return runKey({
    parent: parentState(image),
    platform: req.platform,
    argv: req.argv,
    env: req.env,
    user: req.user,
    workdir: req.workdir,
    network: req.network,
    privileged: req.privileged,
    mounts,
    injected: { certFileVars: proxy.certFileVars, jks: proxy.jks?.targets ?? [], mvn: proxy.mvnSettings?.targets ?? [], proxyVars: Object.keys(proxy.env).sort(), ...(apt ? { apt: apt.target } : {}), ...(proxy.java ? { java: { trustStore: proxy.java.trustStore ?? null } } : {}) },
    epoch: req.epoch,
  });
}

export async function copyStepKey(kind: 'COPY' | 'ADD', entries: readonly LayerEntry[], image: Image, epoch: number, signal: AbortSignal): Promise<string> {
  const keys = [];
  for (const e of entries) keys.push(entryKey(e, epoch, e.type === 'file' ? await fileDigest(e.source, e.size, signal) : undefined));
  return copyKey(parentState(image), { os: image.config.os, architecture: image.config.architecture, ...(image.config.variant ? { variant: image.config.variant } : {}) }, kind, keys, epoch);
}

/** The entry's layer fields (the blob path is the store's business). */
export function layerFields(l: LayerInfo | null): { digest: LayerInfo['digest']; diffId: LayerInfo['diffId']; size: number; mediaType: LayerInfo['mediaType'] } | null {
  return l ? { digest: l.digest, diffId: l.diffId, size: l.size, mediaType: l.mediaType } : null;
}
