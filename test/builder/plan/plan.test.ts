import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerfile } from '../../../src/builder/dockerfile/parse.js';
import { makePlan } from '../../../src/builder/plan/plan.js';

const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64' };

const DF = [
  'ARG BASE=busybox:1',
  'FROM ${BASE} AS base',
  'FROM --platform=$BUILDPLATFORM base AS build',
  'RUN --mount=type=bind,from=tools,target=/t true',
  'FROM scratch AS tools',
  'FROM scratch AS unused',
  'FROM base AS final',
  'COPY --from=build /x /x',
].join('\n');

test('builds only the stages the target needs and resolves FROM against stages and global ARGs', () => {
  const p = makePlan(parseDockerfile(DF), { buildArgs: new Map(), platform: arm64, buildPlatform: amd64 });
  assert.deepEqual(p.stages.map((s) => s.name), ['base', 'build', 'tools', 'final']);
  assert.deepEqual(p.stages[0]!.base, { kind: 'image', ref: 'busybox:1' });
  assert.deepEqual(p.stages[1]!.base, { kind: 'stage', index: 0 });
  assert.deepEqual(p.stages[1]!.platform, { os: 'linux', architecture: 'amd64', variant: undefined });
  assert.deepEqual(p.stages[2]!.platform, arm64);
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
  assert.throws(() => makePlan(parseDockerfile('FROM scratch AS a\nCOPY --from=b x y\nFROM scratch AS b\nCOPY --from=a x y'), { buildArgs: new Map(), platform: amd64, buildPlatform: amd64 }), /circular dependency/);
});
