/** ARG scoping and expansion, multi-stage builds, targets, WORKDIR. */
import assert from 'node:assert/strict';
import type { ConformanceCase } from '../case.js';

export const argStageCases: ConformanceCase[] = [
  {
    name: 'multi-args',
    source: 'buildkit: testMultiArgs',
    dockerfile: 'ARG a1="foo bar" a2=base\nARG a3="$a2-foo"\nFROM {{base}} AS build\nARG a3 a4="123 456" a1\nRUN echo -n "$a1:$a3:$a4" > /out\nFROM scratch\nCOPY --from=build /out .\n',
    check: (img) => assert.equal(img.text('out'), 'foo bar:base-foo:123 456'),
  },
  {
    name: 'quoted-meta-args',
    source: 'buildkit: testQuotedMetaArgs',
    dockerfile: 'ARG a1="box"\nARG a2="$a1-foo"\nFROM {{base}} AS build\nARG a2\nARG a3="bar-$a2"\nRUN echo -n $a3 > /out\nFROM scratch\nCOPY --from=build /out .\n',
    check: (img) => assert.equal(img.text('out'), 'bar-box-foo'),
  },
  {
    name: 'builtin-args',
    source: 'buildkit: testBuiltinArgs',
    dockerfile: 'FROM {{base}} AS build\nARG FOO\nARG BAR\nARG BAZ=bazcontent\nRUN echo -n $FOO::$BAR::$BAZ > /out\nFROM scratch\nCOPY --from=build /out /\n',
    buildArgs: { FOO: 'foocontents', BAR: 'barcontents' },
    check: (img) => assert.equal(img.text('out'), 'foocontents::barcontents::bazcontent'),
  },
  {
    name: 'default-env-with-args',
    source: 'buildkit: testDefaultEnvWithArgs',
    dockerfile: [
      'FROM {{base}} AS build',
      'ARG my_arg',
      'ENV my_arg "my_arg=${my_arg:-def_val}"',
      'ENV my_trimmed_arg "${my_arg%%e*}"',
      'COPY myscript.sh myscript.sh',
      'RUN ./myscript.sh $my_arg $my_trimmed_arg',
      'FROM scratch',
      'COPY --from=build /out /out',
      '',
    ].join('\n'),
    files: { 'myscript.sh': { content: '#!/bin/sh\necho -n $my_arg $* > /out\n', mode: 0o700 } },
    reference: 'assertion', // buildah 1.28: "Missing ':' in substitution" for ${my_arg%%e*}
    check: (img) => assert.equal(img.text('out'), 'my_arg=def_val my_arg=def_val my_arg=d'),
  },
  {
    name: 'empty-string-arg-in-env',
    source: 'buildkit: testEmptyStringArgInEnv',
    dockerfile: 'FROM {{base}} AS build\nARG FOO\nARG BAR=\nRUN env | grep -E "^(FOO|BAR)=" | sort > env.txt\n\nFROM scratch\nCOPY --from=build env.txt .\n',
    check: (img) => assert.equal(img.text('env.txt'), 'BAR=\n'),
  },
  {
    name: 'arg-default-before-from',
    source: 'buildah: bud.bats "bud with ARG before FROM default value"',
    dockerfile: 'ARG BASE={{base}}\nFROM ${BASE}\nARG BASE\nRUN echo "$BASE" | cut -d/ -f2 > /base.txt\n',
  },
  {
    name: 'arg-scope-stage-overrides-header',
    source: 'buildah: bud.bats "bud ARG scope: table of scope combinations" (stage-overrides-header)',
    dockerfile: 'ARG FOO=header\nFROM {{base}}\nARG FOO=stage\nRUN echo $FOO > /foo.txt\n',
  },
  {
    name: 'arg-scope-multiple-args-stage-overrides-one',
    source: 'buildah: bud.bats "bud ARG scope: table of scope combinations" (multiple-args-stage-overrides-one)',
    dockerfile: 'ARG foo=0 bar=1\nFROM {{base}}\nARG foo=9\nARG bar\nRUN echo $foo $bar > /out.txt\n',
  },
  {
    name: 'arg-scope-mixed-defaults',
    source: 'buildah: bud.bats "bud ARG scope: table of scope combinations" (arg-mixed-defaults)',
    dockerfile: 'FROM {{base}}\nARG a b=set\nRUN echo "$a" "$b" > /out.txt\n',
    buildArgs: { a: 'given' },
  },
  {
    name: 'arg-not-persisted-across-stages',
    source: 'buildah: bud.bats "bud-multi-stage-args-scope"',
    dockerfile: 'FROM {{base}}\nARG SECRET\nRUN echo $SECRET\n\nFROM {{base}}\nRUN echo "$SECRET" > test_file\n',
    buildArgs: { SECRET: 'hidden' },
    check: (img) => assert.equal(img.text('test_file'), '\n'),
  },
  {
    name: 'arg-and-env-same-name',
    source: 'buildah: bud.bats "bud arg and env var with same name"',
    dockerfile: 'FROM {{base}}\nARG SAME=fromarg\nENV SAME=${SAME}-env\nRUN echo $SAME > /same\n',
    buildArgs: { SAME: 'cli' },
  },
  {
    name: 'copy-from-arg-in-stage-scope',
    source: 'buildah: bud.bats "bud COPY --from= with ARG in stage scope"',
    dockerfile: 'ARG SRC=b\nFROM {{base}} AS a\nRUN echo a > /from.txt\nFROM {{base}} AS b\nRUN echo b > /from.txt\nFROM scratch\nARG SRC=a\nCOPY --from=$SRC /from.txt /\n',
    pending: 'COPY --from=$VAR',
    check: (img) => assert.equal(img.text('from.txt'), 'a\n'),
  },
  {
    name: 'from-stage-by-arg',
    source: 'buildah: bud.bats "bud-multi-stage-builds" (Dockerfile.arg_in_stage)',
    dockerfile: 'ARG my_env=a\n\nFROM {{base}} as stage_a\nRUN echo stage-a > /which\n\nFROM stage_${my_env} as stage_b\nRUN cat /which > /copied\n',
    reference: 'assertion', // buildah 1.28 looks for an image stage_a: FROM does not see stage names after ARG expansion
    check: (img) => assert.equal(img.text('copied'), 'stage-a\n'),
  },
  {
    name: 'multistage-index-and-names',
    source: 'buildah: bud.bats "bud-multi-stage-builds" (Dockerfile.mixed)',
    dockerfile: 'FROM scratch AS myname\nCOPY a /\n\nFROM scratch AS myname2\nCOPY b /\n\nFROM scratch\nCOPY c /\n\nFROM scratch\nCOPY --from=myname /a /a\nCOPY --from=1 /b /b\nCOPY --from=2 /c /c\n',
    files: { a: 'a', b: 'b', c: 'c' },
  },
  {
    name: 'multistage-case-insensitive',
    source: 'buildkit: testMultiStageCaseInsensitive',
    dockerfile: 'FROM scratch AS STAge0\nCOPY foo bar\nFROM scratch AS staGE1\nCOPY --from=staGE0 bar baz\nFROM scratch\nCOPY --from=stage1 baz bax\n',
    files: { foo: 'foo-contents' },
    reference: 'assertion', // buildah 1.28 matches --from stage names case-sensitively
    check: (img) => assert.equal(img.text('bax'), 'foo-contents'),
  },
  {
    name: 'multistage-implicit-from-image',
    source: 'buildkit: testMultiStageImplicitFrom',
    dockerfile: 'FROM scratch\nCOPY --from={{base}} /etc/passwd test\n',
    check: (img) => assert.match(img.text('test'), /^root:x:0:0/),
  },
  {
    name: 'multistage-out-of-order-stage',
    source: 'buildkit: testOutOfOrderStage',
    dockerfile: 'FROM {{base}} AS target\nCOPY --from=build /d2 /out\n\nFROM {{base}} AS build\nCOPY /Dockerfile /d2\n\nFROM target\n',
    fails: /Dockerfile:2: cannot copy from stage "build", it needs to be defined before current stage "target"/,
  },
  {
    name: 'target-stage',
    source: 'buildah: bud.bats "bud-target"',
    dockerfile: 'FROM {{base}} AS first\nRUN echo first > /first\nFROM first AS second\nRUN echo second > /second\nFROM {{base}}\nRUN echo third > /third\n',
    target: 'second',
  },
  {
    name: 'target-stage-name-arg',
    source: 'buildkit: testTargetStageNameArg',
    dockerfile: 'FROM {{base}} AS base\nWORKDIR /out\nRUN echo -n "value:$TARGETSTAGE" > /out/first\nARG TARGETSTAGE\nRUN echo -n "value:$TARGETSTAGE" > /out/second\n\nFROM scratch AS foo\nCOPY --from=base /out/ /\n\nFROM scratch\nCOPY --from=base /out/ /\n',
    target: 'foo',
    reference: 'assertion', // TARGETSTAGE is newer than buildah 1.28
    check: (img) => {
      assert.equal(img.text('first'), 'value:');
      assert.equal(img.text('second'), 'value:foo');
    },
  },
  {
    name: 'multistage-reused-base',
    source: 'buildah: bud.bats "bud-multistage-reused"',
    dockerfile: 'FROM {{base}} as base\nRUN pwd > /base-pwd\nFROM base\nRUN pwd > /child-pwd\nFROM base\nRUN ls /bin | wc -l > /count\n',
  },
  {
    name: 'copy-from-current-base-image',
    source: 'buildah: bud.bats "bud with copy-from referencing the base image"',
    dockerfile: 'FROM {{base}} AS build\nRUN echo built > /built\nFROM {{base}}\nCOPY --from=build /built /built\nCOPY --from={{base}} /bin/busybox /copied-busybox\n',
  },
  {
    name: 'multistage-copy-final-slash',
    source: 'buildah: bud.bats "bud-multistage-copy-final-slash"',
    dockerfile: 'FROM {{base}} AS build\nRUN mkdir -p /test/dir && echo x > /test/dir/file\nFROM {{base}}\nCOPY --from=build /test/dir/ /test/\nCOPY --from=build /test/dir /test2\n',
  },
  {
    name: 'multistage-copy-empty-newdir',
    source: 'buildah: bud.bats "bud test empty newdir"',
    dockerfile: 'FROM {{base}} as galaxy\nRUN mkdir -p /usr/share/ansible/roles /usr/share/ansible/collections\nRUN echo "foo" > /usr/share/ansible/collections/file.txt\n\nFROM galaxy\nRUN mkdir -p /usr/share/ansible/roles /usr/share/ansible/collections\nCOPY --from=galaxy /usr/share/ansible/roles /usr/share/ansible/roles\nCOPY --from=galaxy /usr/share/ansible/collections /usr/share/ansible/collections\n',
  },
  {
    name: 'workdir-creates-dir',
    source: 'buildkit: testWorkdirCreatesDir',
    dockerfile: 'FROM scratch\nWORKDIR /foo\nWORKDIR /\n',
    check: (img) => assert.equal(img.listing.get('foo')?.type, 'dir'),
  },
  {
    name: 'workdir-user',
    source: 'buildkit: testWorkdirUser',
    dockerfile: 'FROM {{base}}\nRUN echo \'user:x:1501:1501::/home/user:/bin/sh\' >> /etc/passwd && echo \'user:x:1501:\' >> /etc/group\nUSER user\nWORKDIR /mydir\nRUN [ "$(stat -c "%U %G" /mydir)" = "user user" ]\n',
    reference: 'assertion', // buildah 1.28 creates WORKDIR as root; BuildKit as the USER
    check: (img) => {
      const d = img.listing.get('mydir');
      assert.ok(d && d.uid !== 0, 'WORKDIR owned by USER');
    },
  },
  {
    name: 'workdir-exists',
    source: 'buildkit: testWorkdirExists',
    dockerfile: 'FROM {{base}}\nRUN echo \'user:x:1501:1501::/home/user:/bin/sh\' >> /etc/passwd && echo \'user:x:1501:\' >> /etc/group\nRUN mkdir /mydir && chown user:user /mydir\nWORKDIR /mydir\nRUN [ "$(stat -c "%U %G" /mydir)" = "user user" ]\n',
  },
  {
    name: 'workdir-relative-copy',
    source: 'buildkit: testWorkdirCopyIgnoreRelative',
    dockerfile: 'FROM scratch AS base\nWORKDIR /foo\nCOPY Dockerfile /\nFROM scratch\nCOPY --from=base Dockerfile .\n',
  },
  {
    name: 'copy-workdir',
    source: 'buildah: bud.bats "bud-copy-workdir"',
    dockerfile: 'FROM scratch\nWORKDIR /subdir\nCOPY file1.txt /\nCOPY file2.txt /subdir\n',
    files: { 'file1.txt': 'file1\n', 'file2.txt': 'file2\n' },
  },
  {
    name: 'workdir-isa-symlink',
    source: 'buildah: bud.bats "bud WORKDIR isa symlink"',
    dockerfile: 'FROM {{base}}\nRUN mkdir -p /var/lib/tempest\nRUN ln -sf /var/lib/tempest /tempest\nWORKDIR /tempest\nRUN touch /etc/notareal.conf\nRUN chmod 664 /etc/notareal.conf\n',
  },
  {
    name: 'workdir-isa-symlink-no-target-dir',
    source: 'buildah: bud.bats "bud WORKDIR isa symlink no target dir"',
    dockerfile: 'FROM {{base}}\nRUN ln -sf /var/lib/tempest /tempest\nWORKDIR /tempest\nRUN touch /etc/notareal.conf\nCOPY Dockerfile ./Dockerfile-2\n',
    pending: 'Symlinks (WORKDIR on a dangling symlink)',
  },
];
