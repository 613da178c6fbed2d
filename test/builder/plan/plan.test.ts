import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerfile } from '../../../src/builder/dockerfile/parse.js';
import { makePlan } from '../../../src/builder/plan/plan.js';

const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64' };

const DF = [
  'ARG BASE=busybox:1',
  'FROM ${BASE} AS base',
  'FROM scratch AS tools',
  'FROM --platform=$BUILDPLATFORM base AS build',
  'RUN --mount=type=bind,from=tools,target=/t true',
  'FROM scratch AS unused',
  'FROM base AS final',
  'COPY --from=build /x /x',
].join('\n');

test('builds only the stages the target needs and resolves FROM against stages and global ARGs', () => {
  const p = makePlan(parseDockerfile(DF), { buildArgs: new Map(), platform: arm64, buildPlatform: amd64 });
  assert.deepEqual(p.stages.map((s) => s.name), ['base', 'tools', 'build', 'final']);
  assert.deepEqual(p.stages[0]!.base, { kind: 'image', ref: 'busybox:1' });
  assert.deepEqual(p.stages[2]!.base, { kind: 'stage', index: 0 });
  assert.deepEqual(p.stages[2]!.platform, { os: 'linux', architecture: 'amd64', variant: undefined });
  assert.deepEqual(p.stages[1]!.platform, arm64);
  assert.equal(p.globalArgs.get('TARGETARCH'), 'arm64');
});

test('--build-arg overrides a global ARG used in FROM, and --target picks a stage', () => {
  const p = makePlan(parseDockerfile(DF), { buildArgs: new Map([['BASE', 'alpine']]), target: 'base', platform: amd64, buildPlatform: amd64 });
  assert.equal(p.stages.length, 1);
  assert.deepEqual(p.stages[0]!.base, { kind: 'image', ref: 'alpine' });
});

test('a missing --target stage, a bad FROM --platform and a later-stage reference are errors', () => {
  assert.throws(() => makePlan(parseDockerfile(DF), { buildArgs: new Map(), target: 'nope', platform: amd64, buildPlatform: amd64 }), /--target nope: no stage/);
  assert.throws(() => makePlan(parseDockerfile('FROM --platform=linux scratch'), { buildArgs: new Map(), platform: amd64, buildPlatform: amd64 }), /^Error: Dockerfile:1: FROM --platform=linux: invalid platform|Dockerfile:1: FROM --platform=linux/);
  assert.throws(() => makePlan(parseDockerfile('FROM scratch\nCOPY --from=3 a b'), { buildArgs: new Map(), platform: amd64, buildPlatform: amd64 }), /Dockerfile:2: stage 3 does not exist/);
  assert.throws(() => makePlan(parseDockerfile('FROM scratch AS a\nRUN --mount=from=b,target=/b true\nFROM scratch AS b\nCOPY --from=a x y'), { buildArgs: new Map(), platform: amd64, buildPlatform: amd64 }), /Dockerfile:2: cannot mount from stage "b", stage needs to be defined before current command/);
});

// buildkit: testOutOfOrderStage (also test/conformance: multistage-out-of-order-stage)
test('COPY --from a stage defined later is refused, as BuildKit does', () => {
  assert.throws(
    () => makePlan(parseDockerfile('FROM busybox AS target\nCOPY --from=build /d2 /out\nFROM alpine AS build\nCOPY /Dockerfile /d2\nFROM target'), { buildArgs: new Map(), platform: amd64, buildPlatform: amd64 }),
    /Dockerfile:2: cannot copy from stage "build", it needs to be defined before current stage "target"/,
  );
});

// buildkit: testOnBuildInheritedStageWithFrom (also test/conformance: onbuild-inherited-stage-with-from)
test('the --from stages of a base stage\'s ONBUILD triggers are dependencies of the child', () => {
  const df = 'FROM busybox AS src\nFROM busybox AS base\nONBUILD COPY --from=src /in/file /out/foo\nFROM base AS mid\nFROM scratch\nCOPY --from=mid /out/bar /';
  const p = makePlan(parseDockerfile(df), { buildArgs: new Map(), platform: amd64, buildPlatform: amd64 });
  assert.deepEqual(p.stages.map((s) => s.name ?? s.index), ['src', 'base', 'mid', 3]);
  assert.deepEqual(p.stages[2]!.deps, [0, 1]);
});

// buildkit: testTargetStageNameArg (also test/conformance: target-stage-name-arg)
test('TARGETSTAGE is the --target stage, `default` without one', () => {
  const df = parseDockerfile('FROM scratch AS foo\nFROM scratch');
  assert.equal(makePlan(df, { buildArgs: new Map(), target: 'foo', platform: amd64, buildPlatform: amd64 }).globalArgs.get('TARGETSTAGE'), 'foo');
  assert.equal(makePlan(df, { buildArgs: new Map(), platform: amd64, buildPlatform: amd64 }).globalArgs.get('TARGETSTAGE'), 'default');
});
