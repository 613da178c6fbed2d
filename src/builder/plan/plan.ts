/**
 * Parsed Dockerfile → build plan, for one target platform. Pure: no I/O. Resolves each FROM
 * (expanded with the global ARGs and the predefined platform ARGs) to scratch, an earlier stage
 * or an image; finds each stage's dependencies (FROM, COPY --from, RUN --mount from=) and keeps
 * only the stages the target needs.
 */
import { HtvendError } from '../../util/errors.js';
import { formatPlatform, parsePlatform } from '../../registry/platform.js';
import type { Platform } from '../../registry/types.js';
import { expandWord, varsFrom } from '../dockerfile/lexer.js';
import { parseTrigger } from '../dockerfile/parse.js';
import type { FromInstr, Instruction, ParsedDockerfile } from '../dockerfile/types.js';

export type StageBase = { kind: 'scratch' } | { kind: 'stage'; index: number } | { kind: 'image'; ref: string };

export interface PlannedStage {
  index: number;
  name?: string;
  from: FromInstr;
  base: StageBase;
  platform: Platform;
  instructions: Instruction[];
  /** Indexes of stages this one reads from. */
  deps: number[];
}

export interface BuildPlan {
  file: string;
  escape: string;
  /** Needed stages, in Dockerfile order; the last one is the target. */
  stages: PlannedStage[];
  /**
   * Every stage, for references only known while building (`COPY --from=$VAR` with a stage
   * ARG): stages are built on demand, so naming one the static analysis missed still works.
   */
  allStages: PlannedStage[];
  target: number;
  /** Global scope: predefined platform ARGs + ARGs declared before the first FROM. */
  globalArgs: Map<string, string>;
  /** `--build-arg` values (all of them; stages pick the ones they declare). */
  buildArgs: Map<string, string>;
  platform: Platform;
  buildPlatform: Platform;
}

export interface PlanOptions {
  buildArgs: Map<string, string>;
  target?: string;
  platform: Platform;
  buildPlatform: Platform;
}

/** The automatic platform ARGs (BuildKit's TARGETPLATFORM, BUILDARCH, …). */
export function platformArgs(target: Platform, build: Platform): Map<string, string> {
  const m = new Map<string, string>();
  for (const [prefix, p] of [['TARGET', target], ['BUILD', build]] as const) {
    m.set(`${prefix}PLATFORM`, formatPlatform(p));
    m.set(`${prefix}OS`, p.os);
    m.set(`${prefix}ARCH`, p.architecture);
    m.set(`${prefix}VARIANT`, p.variant ?? '');
  }
  return m;
}

/** Finds a stage by name (case-insensitive) or index among stages before `before`. */
export function findStage(stages: { from: FromInstr }[], ref: string, before: number): number | undefined {
  const lower = ref.toLowerCase();
  for (let i = 0; i < before; i++) if (stages[i]!.from.stageName === lower) return i;
  if (/^\d+$/.test(ref)) {
    const n = Number(ref);
    if (n < before) return n;
  }
  return undefined;
}

function mountFrom(raw: string): string | undefined {
  for (const part of raw.split(',')) {
    const [k, v] = part.split('=');
    if (k?.trim() === 'from' && v) return v.trim();
  }
  return undefined;
}

/** The stage `ref` names (stage name, case-insensitive, or index), if any. */
export function stageByRef(plan: BuildPlan, ref: string): PlannedStage | undefined {
  const lower = ref.toLowerCase();
  return plan.allStages.find((s) => s.name === lower) ?? (/^\d+$/.test(ref) ? plan.allStages[Number(ref)] : undefined);
}

export function makePlan(df: ParsedDockerfile, opts: PlanOptions): BuildPlan {
  const globalArgs = platformArgs(opts.platform, opts.buildPlatform);
  // BuildKit's TARGETSTAGE: the --target stage, `default` without one.
  globalArgs.set('TARGETSTAGE', opts.target ?? 'default');
  // Lexer errors (`${A:?must be set}`, a bad quote) get the instruction's Dockerfile:LINE.
  const at = <T>(line: number, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof HtvendError && !e.message.startsWith(`${df.file}:`)) throw new HtvendError(e.code, `${df.file}:${line}: ${e.message}`, { cause: e });
      throw e;
    }
  };
  for (const a of df.globalArgs) {
    for (const { name, default: def } of a.args) {
      const v = opts.buildArgs.get(name) ?? (def === undefined ? undefined : at(a.loc.line, () => expandWord(def, varsFrom(globalArgs), df.escape)));
      if (v !== undefined) globalArgs.set(name, v);
      else if (!globalArgs.has(name)) globalArgs.delete(name);
    }
  }
  const vars = varsFrom(globalArgs);
  const all: PlannedStage[] = df.stages.map((s, index) => {
    const where = `${df.file}:${s.from.loc.line}`;
    const x = (w: string, line = s.from.loc.line) => at(line, () => expandWord(w, vars, df.escape));
    const image = x(s.from.image);
    if (image === '') throw new HtvendError('INPUT', `${where}: FROM ${s.from.image} expands to an empty image name`);
    let platform = opts.platform;
    if (s.from.platform) {
      const p = x(s.from.platform);
      try {
        platform = parsePlatform(p);
      } catch (e) {
        throw new HtvendError('INPUT', `${where}: FROM --platform=${p}: invalid platform (want os/arch[/variant], e.g. linux/amd64)`, { cause: e });
      }
    }
    const stageIdx = findStage(df.stages, image, index);
    const base: StageBase = image.toLowerCase() === 'scratch' ? { kind: 'scratch' } : stageIdx !== undefined ? { kind: 'stage', index: stageIdx } : { kind: 'image', ref: image };
    const deps = new Set<number>();
    if (base.kind === 'stage') deps.add(base.index);
    // The ONBUILD triggers of a base stage run in this stage: their --from stages are ours too.
    const triggers = base.kind === 'stage' ? df.stages[base.index]!.instructions.flatMap((t) => (t.kind === 'ONBUILD' ? [parseTrigger(t.trigger, df.file, t.loc.line)] : [])) : [];
    for (const ins of [...triggers, ...s.instructions]) {
      const refs: { ref: string; copy: boolean }[] = [];
      // Static view with the global ARGs only (stage ARGs are known when the stage runs, where
      // a reference this misses is still built on demand, see stageByRef). Errors wait for then.
      const quiet = (w: string) => { try { return expandWord(w, vars, df.escape); } catch { return ''; } };
      if ((ins.kind === 'COPY' || ins.kind === 'ADD') && ins.from) refs.push({ ref: quiet(ins.from), copy: true });
      if (ins.kind === 'RUN') for (const m of ins.mounts) { const f = mountFrom(m); if (f) refs.push({ ref: quiet(f), copy: false }); }
      for (const { ref: r, copy } of refs) {
        const d = findStage(df.stages, r, df.stages.length);
        if (d === index) throw new HtvendError('INPUT', `${df.file}:${ins.loc.line}: stage ${r} refers to itself`);
        // BuildKit dispatches stages in Dockerfile order: COPY --from and RUN --mount from= must
        // name a stage defined before the current one (a later name is an error, not an image).
        if (d !== undefined && d > index) {
          throw new HtvendError('INPUT', copy
            ? `${df.file}:${ins.loc.line}: cannot copy from stage "${r}", it needs to be defined before current stage "${s.from.stageName ?? index}"`
            : `${df.file}:${ins.loc.line}: cannot mount from stage "${r}", stage needs to be defined before current command`);
        }
        if (d !== undefined) deps.add(d);
        else if (/^\d+$/.test(r)) throw new HtvendError('NOT_FOUND', `${df.file}:${ins.loc.line}: stage ${r} does not exist (the Dockerfile has ${df.stages.length} stages)`);
      }
    }
    return {
      index,
      ...(s.from.stageName ? { name: s.from.stageName } : {}),
      from: s.from,
      base,
      platform,
      instructions: s.instructions,
      deps: [...deps].sort((a, b) => a - b),
    };
  });
  let target = all.length - 1;
  if (opts.target !== undefined) {
    const t = all.findIndex((s) => s.name === opts.target!.toLowerCase());
    if (t < 0) {
      const names = all.filter((s) => s.name).map((s) => s.name);
      throw new HtvendError('NOT_FOUND', `--target ${opts.target}: no stage of that name in ${df.file}`, { hint: names.length ? `stages: ${names.join(', ')}` : 'the Dockerfile has no named stages (FROM image AS name)' });
    }
    target = t;
  }
  const needed = new Set<number>();
  const onPath = new Set<number>();
  const visit = (i: number) => {
    if (onPath.has(i)) throw new HtvendError('INPUT', `${df.file}:${all[i]!.from.loc.line}: circular dependency between stages involving stage ${all[i]!.name ?? i}`);
    if (needed.has(i)) return;
    needed.add(i);
    onPath.add(i);
    for (const d of all[i]!.deps) visit(d);
    onPath.delete(i);
  };
  visit(target);
  return {
    file: df.file,
    escape: df.escape,
    stages: all.filter((s) => needed.has(s.index)),
    allStages: all,
    target,
    globalArgs,
    buildArgs: opts.buildArgs,
    platform: opts.platform,
    buildPlatform: opts.buildPlatform,
  };
}
