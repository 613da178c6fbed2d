/**
 * `build-img-with-proxy --provenance / --sbom`: the attestation manifests for the built
 * images (one per platform image), ready for the output writers to put in the index.
 */
import { readFile } from 'node:fs/promises';
import { formatPlatform } from '../../registry/index.js';
import { sha256Hex } from '../../util/digest.js';
import type { BuiltImage } from '../../builder/build/build.js';
import type { StepFact } from '../../builder/build/facts.js';
import { manifestOf } from '../../builder/output/blobs.js';
import { attestationManifest, type AttestationManifest } from './layout.js';
import { dockerPurl, provenanceStatement, sbomStatement, type Statement, type Subject } from './statements.js';
import { rootfsPackages } from './rootfs-packages.js';

export interface AttestOptions {
  provenance: boolean;
  sbom: boolean;
  /** Host path of the Dockerfile, and the name it is shown by. */
  dockerfile: string;
  dockerfileName: string;
  buildArgs: ReadonlyMap<string, string>;
  target?: string | undefined;
  epoch: number;
  /** HTVEND_MODE of the builder's environment. */
  htvendMode?: string | undefined;
  /** The image's name for subjects (`registry/repo:tag`), if it has one. */
  imageName?: string | undefined;
  /**
   * Assets steps fetched that the builder did not see itself (RUN steps, from per-step
   * attribution): merged with its own `ADD <url>` facts.
   */
  extraSteps?: readonly StepFact[] | undefined;
  signal?: AbortSignal | undefined;
}

function mergeSteps(own: readonly StepFact[], extra: readonly StepFact[]): StepFact[] {
  const out = own.map((s) => ({ ...s, assets: [...s.assets] }));
  for (const e of extra) {
    const s = out.find((x) => x.platform === e.platform && x.location === e.location);
    if (!s) out.push({ ...e, assets: [...e.assets] });
    else for (const a of e.assets) if (!s.assets.some((x) => x.url === a.url && x.sha256 === a.sha256)) s.assets.push(a);
  }
  const line = (s: StepFact) => Number(/:(\d+)$/.exec(s.location)?.[1] ?? 0);
  return out.sort((a, b) => line(a) - line(b) || (a.location < b.location ? -1 : a.location > b.location ? 1 : 0));
}

export async function attestationsFor(images: readonly BuiltImage[], o: AttestOptions): Promise<AttestationManifest[]> {
  if (!o.provenance && !o.sbom) return [];
  const content = await readFile(o.dockerfile, { encoding: 'utf8', signal: o.signal });
  const out: AttestationManifest[] = [];
  for (const built of images) {
    const platform = formatPlatform(built.platform);
    const manifest = manifestOf(built);
    const subject: Subject[] = [{ name: o.imageName ? dockerPurl(o.imageName, platform) : '_', digest: { sha256: manifest.digest } }];
    const steps = mergeSteps(built.facts?.steps ?? [], (o.extraSteps ?? []).filter((s) => s.platform === platform));
    const statements: Statement[] = [];
    if (o.provenance) {
      statements.push(
        provenanceStatement(subject, {
          dockerfile: { path: o.dockerfileName, content, sha256: sha256Hex(content) },
          buildArgs: o.buildArgs,
          target: o.target,
          platform,
          htvendMode: o.htvendMode,
          epoch: o.epoch,
          bases: built.facts?.bases ?? [],
          steps,
        }),
      );
    }
    if (o.sbom) {
      const installed = await rootfsPackages(built.image.layers, o.signal);
      statements.push(sbomStatement(subject, steps, installed, o.epoch, o.imageName ?? `image-${platform.replace(/\//g, '-')}`));
    }
    out.push(attestationManifest(`sha256:${manifest.digest}`, statements));
  }
  return out;
}
