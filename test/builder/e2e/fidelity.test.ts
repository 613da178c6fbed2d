/**
 * Issue 9 end to end on busybox with runc. Heredocs as BuildKit runs them (adapted from moby/buildkit
 * frontend/dockerfile/dockerfile_heredoc_test.go: testRunShebangHeredoc, testRunComplexHeredoc,
 * testHeredocVarSubstitution, testCopyHeredocSpecialSymbols, testOnBuildHeredoc), built on
 * busybox with runc.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { link, lstat, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { buildIn } from './fidelity-helpers.js';

test('RUN and COPY heredocs: shebang interpreter, several bodies on one RUN, COPY expansion with quotes kept', async () => {
  const { rootfs } = await buildIn([
    'FROM $BASE AS withtrigger',
    'ONBUILD RUN <<EOF',
    'mkdir -p /dest && echo "hello world" >> /dest/onbuild',
    'EOF',
    'FROM withtrigger',
    'ARG name=world',
    'WORKDIR /dest',
    'RUN <<EOF',
    '#!/usr/bin/awk -f',
    'BEGIN {',
    '\tprint "hello" >> "/dest/shebang"',
    '\tprint "world" >> "/dest/shebang"',
    '}',
    'EOF',
    // two heredocs, the second marker on a continuation line
    "RUN cat <<EOF1 | tr '[:upper:]' '[:lower:]' > ./out1; \\",
    "\tcat <<EOF2 | tr '[:lower:]' '[:upper:]' > ./out2",
    'hello WORLD',
    'EOF1',
    'HELLO world',
    'EOF2',
    // fd heredocs (dockerfile-ast does not see `3<<IN1`)
    'RUN <<EOF 3<<IN1 4<<IN2 awk -f -',
    'BEGIN {',
    '\twhile ((getline line < "/proc/self/fd/3") > 0)',
    '\t\tprint tolower(line) > "./fd3"',
    '\twhile ((getline line < "/proc/self/fd/4") > 0)',
    '\t\tprint toupper(line) > "./fd4"',
    '}',
    'EOF',
    'hello WORLD',
    'IN1',
    'HELLO world',
    'IN2',
    'RUN <<A cat > a && <<B cat > b',
    'first',
    'A',
    'second',
    'B',
    'COPY <<EOF /dest/c1',
    'Hello ${name}!',
    'EOF',
    "COPY <<'EOF' /dest/c2",
    'Hello ${name}!',
    'EOF',
    'COPY <<EOF /dest/q1',
    "Hello '${name}'!",
    'EOF',
    'COPY <<EOF /dest/q2',
    'Hello "${name}"!',
    'EOF',
    'COPY <<EOF /dest/slash',
    '\\$ \\\\',
    'EOF',
    'COPY <<"EOF" /dest/rawslash',
    '\\$ \\\\',
    'EOF',
    'COPY <<no-recommends <<no-suggests /dest/apt/',
    'APT::Install-Recommends "false";',
    'no-recommends',
    'APT::Install-Suggests "false";',
    'no-suggests',
    'RUN <<EOF',
    'name="new world"',
    'echo "Hello ${name}!" > /dest/r2',
    'EOF',
  ].join('\n'));
  const f = (p: string) => readFile(join(rootfs, 'dest', p), 'utf8');
  assert.equal(await f('shebang'), 'hello\nworld\n', 'a #! heredoc runs through its interpreter');
  assert.equal(await f('out1'), 'hello world\n');
  assert.equal(await f('out2'), 'HELLO WORLD\n', 'the second heredoc of the RUN is kept');
  assert.equal(await f('fd3'), 'hello world\n');
  assert.equal(await f('fd4'), 'HELLO WORLD\n');
  assert.equal(await f('a'), 'first\n');
  assert.equal(await f('b'), 'second\n');
  assert.equal(await f('c1'), 'Hello world!\n', 'unquoted COPY heredoc expands');
  assert.equal(await f('c2'), 'Hello ${name}!\n', 'quoted delimiter keeps text');
  assert.equal(await f('q1'), "Hello 'world'!\n", 'quotes are text in a heredoc');
  assert.equal(await f('q2'), 'Hello "world"!\n');
  assert.equal(await f('slash'), '$ \\\n');
  assert.equal(await f('rawslash'), '\\$ \\\\\n');
  assert.equal(await f('apt/no-recommends'), 'APT::Install-Recommends "false";\n');
  assert.equal(await f('apt/no-suggests'), 'APT::Install-Suggests "false";\n');
  assert.equal(await f('r2'), 'Hello new world!\n');
  assert.equal(await f('onbuild'), 'hello world\n', 'an ONBUILD heredoc trigger keeps its body');
  // The shebang script was mounted in /dev (a tmpfs), nothing of it is in the image.
  await assert.rejects(readFile(join(rootfs, 'dev', 'pipes', 'EOF')));
});

test('RUN side of issue 9: tmpfs size with units applied, context hard links kept, COPY/WORKDIR through a dangling link made by RUN', async () => {
  const { rootfs } = await buildIn([
    'FROM $BASE',
    "RUN --mount=type=tmpfs,target=/scratch,size=128m grep ' /scratch ' /proc/mounts | grep -q size=131072k && touch /tmpfs-ok",
    'COPY a b /hl/',
    'RUN test "$(stat -c %i /hl/a)" = "$(stat -c %i /hl/b)" && touch /hardlink-ok',
    'RUN ln -s /nowhere/dir /dangling',
    'COPY a /dangling/',
    'WORKDIR /dangling/sub',
  ].join('\n'), { a: 'data\n' }, {}, (ctx) => link(join(ctx, 'a'), join(ctx, 'b')));
  await lstat(join(rootfs, 'tmpfs-ok'));
  await lstat(join(rootfs, 'hardlink-ok'));
  assert.equal((await lstat(join(rootfs, 'hl', 'a'))).ino, (await lstat(join(rootfs, 'hl', 'b'))).ino);
  assert.equal(await readlink(join(rootfs, 'dangling')), '/nowhere/dir', 'the link is still a link');
  assert.equal(await readFile(join(rootfs, 'nowhere', 'dir', 'a'), 'utf8'), 'data\n');
  assert.ok((await lstat(join(rootfs, 'nowhere', 'dir', 'sub'))).isDirectory());
  await assert.rejects(lstat(join(rootfs, 'scratch', 'x')));
});
