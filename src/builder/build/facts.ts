/**
 * What a build learned about its inputs, for provenance (docs/supply-chain.md): the base
 * images by digest and the assets each step fetched. The builder itself sees `FROM` pulls and
 * `ADD <url>` downloads; assets a RUN step fetched come from per-step attribution (the
 * builder's --report, docs/build-cache.md) and are added in the same `StepFact` shape.
 */
export interface StepAssetFact {
  /** The assets.json key (URL, any password redacted). */
  url: string;
  /** sha256 hex of what the step got. */
  sha256: string;
  size?: number | undefined;
}

export interface StepFact {
  /** `os/arch[/variant]`. */
  platform: string;
  /** `Dockerfile:LINE`. */
  location: string;
  instruction: string;
  assets: StepAssetFact[];
}

export interface BaseImageFact {
  /** The reference as written after expansion, normalised (`docker.io/library/debian:12`). */
  ref: string;
  platform: string;
  /** `sha256:…` of the platform's image manifest. */
  digest: string;
  /** `sha256:…` of the index the tag named, when it named one. */
  indexDigest?: string | undefined;
}

/** Collected per build; `steps` in the order the steps ran. */
export class BuildFacts {
  readonly bases: BaseImageFact[] = [];
  readonly steps: StepFact[] = [];

  addBase(b: BaseImageFact): void {
    if (!this.bases.some((x) => x.ref === b.ref && x.platform === b.platform)) this.bases.push(b);
  }

  addStepAsset(step: Omit<StepFact, 'assets'>, asset: StepAssetFact): void {
    let s = this.steps.find((x) => x.platform === step.platform && x.location === step.location);
    if (!s) this.steps.push((s = { ...step, assets: [] }));
    s.assets.push(asset);
  }

  forPlatform(platform: string): { bases: BaseImageFact[]; steps: StepFact[] } {
    return { bases: this.bases.filter((b) => b.platform === platform), steps: this.steps.filter((s) => s.platform === platform) };
  }
}
