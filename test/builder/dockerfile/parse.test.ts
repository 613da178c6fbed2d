import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerfile } from '../../../src/builder/dockerfile/parse.js';
import { expandHeredocBody, expandWord, expandWords, varsFrom } from '../../../src/builder/dockerfile/lexer.js';
import { HtvendError } from '../../../src/util/errors.js';

test('expands $a, ${a}, ${a:-b}, ${a-b}, ${a:+b} and honours quotes and escapes like Docker', () => {
  const v = varsFrom({ A: 'x', E: '' });
  assert.equal(expandWord('$A${A}', v), 'xx');
  assert.equal(expandWord('${E:-d}|${E-d}|${U-d}', v), 'd||d');
  assert.equal(expandWord('${A:+set}|${E:+set}|${E+set}', v), 'set||set');
  assert.equal(expandWord(`'$A'"$A"\\$A`, v), '$Ax$A');
  assert.equal(expandWord('"a\\"b"', v), 'a"b');
  assert.deepEqual(expandWords(`a "b c" 'd e'\\ f`, v), ['a', 'b c', 'd e f']);
  assert.equal(expandWord('${A:-${E:-nested}}', varsFrom({ E: '' })), 'nested');
  assert.throws(() => expandWord('${U:?must be set}', v), /U: must be set/);
});

test('parses every instruction with flags, forms and lines', () => {
  const df = parseDockerfile(
    [
      'ARG BASE=busybox',
      'FROM --platform=$BUILDPLATFORM ${BASE} AS build',
      'RUN --mount=type=cache,target=/c --network=none echo "a b" \\',
      '  next',
      'RUN ["echo", "exec"]',
      'COPY --from=build --chown=1:2 --chmod=755 --link ["a b", "/c/"]',
      'ADD --checksum=sha256:abc https://example.com/x /x',
      'ENV A=1 B="2 3"',
      'ENV LEGACY value with spaces',
      'LABEL a=b',
      'EXPOSE 80/tcp 443',
      'WORKDIR /w',
      'USER 1000:1000',
      'VOLUME ["/data"]',
      'SHELL ["/bin/sh", "-ec"]',
      'STOPSIGNAL SIGTERM',
      'HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost',
      'ONBUILD RUN echo hi',
      'MAINTAINER me',
      'ENTRYPOINT ["/bin/sh"]',
      'CMD echo hi',
      'RUN <<EOT',
      'echo from heredoc',
      'EOT',
    ].join('\n'),
  );
  assert.equal(df.globalArgs.length, 1);
  const [s] = df.stages;
  assert.equal(s!.from.stageName, 'build');
  assert.equal(s!.from.platform, '$BUILDPLATFORM');
  const kinds = s!.instructions.map((i) => `${i.kind}@${i.loc.line}`);
  assert.deepEqual(kinds.slice(0, 3), ['RUN@3', 'RUN@5', 'COPY@6']);
  const run = s!.instructions[0]!;
  assert.ok(run.kind === 'RUN');
  assert.deepEqual(run.mounts, ['type=cache,target=/c']);
  assert.equal(run.network, 'none');
  assert.deepEqual(run.cmd, { form: 'shell', cmdline: 'echo "a b"   next' });
  const copy = s!.instructions[2]!;
  assert.ok(copy.kind === 'COPY');
  assert.deepEqual([copy.sources, copy.dest, copy.from, copy.chown, copy.chmod, copy.link], [['a b'], '/c/', 'build', '1:2', '755', true]);
  const env = s!.instructions.find((i) => i.kind === 'ENV')!;
  assert.ok(env.kind === 'ENV');
  assert.deepEqual(env.pairs, [['A', '1'], ['B', '"2 3"']]);
  const hc = s!.instructions.find((i) => i.kind === 'HEALTHCHECK')!;
  assert.ok(hc.kind === 'HEALTHCHECK' && hc.check);
  assert.equal(hc.check.interval, 5e9);
  assert.equal(hc.check.retries, 3);
  const last = s!.instructions[s!.instructions.length - 1]!;
  assert.ok(last.kind === 'RUN');
  assert.deepEqual(last.heredocs, [{ name: 'EOT', content: 'echo from heredoc\n', expand: true }]);
});

for (const [name, text, re] of [
  ['unknown instruction', 'FROM scratch\nFOO bar', /^Dockerfile:2: unknown instruction: FOO/],
  ['unknown flag', 'FROM scratch\nCOPY --nope=1 a b', /^Dockerfile:2: unknown flag --nope for COPY/],
  ['bad RUN network', 'FROM scratch\n\nRUN --network=bridge true', /^Dockerfile:3: RUN --network/],
  ['instruction before FROM', 'RUN true\nFROM scratch', /^Dockerfile:1: RUN before the first FROM/],
  ['SHELL not JSON', 'FROM scratch\nSHELL /bin/sh', /^Dockerfile:2: SHELL requires/],
  ['COPY without dest', 'FROM scratch\nCOPY a', /^Dockerfile:2: COPY requires at least one source/],
] as const) {
  test(`rejects a Dockerfile with ${name}, citing file:line`, () => {
    assert.throws(() => parseDockerfile(text), (e: unknown) => e instanceof HtvendError && re.test(e.message));
  });
}

test('honours the escape directive', () => {
  const df = parseDockerfile('# escape=`\nFROM scratch\nCOPY a` b c:/x/');
  const c = df.stages[0]!.instructions[0]!;
  assert.ok(c.kind === 'COPY');
  assert.deepEqual(c.sources.map((s) => expandWord(s, varsFrom(), '`')), ['a b']);
});

test('heredocs: markers on continuation lines, fd forms, any delimiter word, and the lines after the bodies (issue 9)', () => {
  const df = parseDockerfile([
    'FROM scratch',
    'RUN cat <<A > a; \\',
    '  cat <<-"B" > b',
    'one',
    'A',
    '\ttwo',
    '\tB',
    'RUN <<EOF 3<<IN awk -f -',
    'prog',
    'EOF',
    'HELLO world',
    'IN',
    'COPY <<no-recommends <<EOF2 /etc/apt/',
    'x',
    'no-recommends',
    'y',
    'EOF2',
    'RUN echo "<<NOT" cat<<NEITHER',
    'ENV Z=1',
  ].join('\n'));
  const [r1, r2, c, r3, env] = df.stages[0]!.instructions;
  assert.ok(r1?.kind === 'RUN' && r2?.kind === 'RUN' && c?.kind === 'COPY' && r3?.kind === 'RUN');
  assert.deepEqual(r1.heredocs, [{ name: 'A', content: 'one\n', expand: true }, { name: 'B', content: 'two\n', expand: false }]);
  assert.equal(r1.cmd.form === 'shell' && r1.cmd.cmdline, 'cat <<A > a;   cat <<-"B" > b');
  assert.deepEqual(r2.heredocs.map((h) => [h.name, h.content]), [['EOF', 'prog\n'], ['IN', 'HELLO world\n']]);
  assert.deepEqual(c.heredocs.map((h) => h.name), ['no-recommends', 'EOF2']);
  assert.deepEqual(r3.heredocs, [], 'a quoted or glued << is no heredoc (BuildKit)');
  assert.equal(env?.kind, 'ENV');
  assert.equal(env!.loc.line, 19);
  assert.throws(() => parseDockerfile('FROM scratch\nRUN <<EOF\nnever closed\n'), /Dockerfile:2: heredoc <<EOF is not terminated/);
});

test('COPY heredoc bodies expand variables and escapes but keep quotes (BuildKit testHeredocVarSubstitution)', () => {
  const v = varsFrom({ name: 'world' });
  assert.equal(expandHeredocBody(`Hello '\${name}' "$name" \\$ \\\\ \${unset:-d}\n`, v), `Hello 'world' "world" $ \\ d\n`);
});
