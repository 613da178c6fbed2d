/** COPY: destinations, wildcards, symlinks, overrides, relative paths. */
import assert from 'node:assert/strict';
import type { ConformanceCase } from '../case.js';

const f600 = (content: string) => ({ content, mode: 0o600 });
const d700 = { dir: true as const, mode: 0o700 };

export const copyCases: ConformanceCase[] = [
  {
    name: 'copy-empty-dest-dir',
    source: 'buildkit: testEmptyDestDir',
    dockerfile: 'FROM {{base}}\nENV empty=""\nCOPY testfile $empty\nRUN [ "$(cat testfile)" = "contents0" ]\n',
    files: { testfile: f600('contents0') },
  },
  {
    name: 'copy-preserve-dest-dir-slash',
    source: 'buildkit: testPreserveDestDirSlash',
    dockerfile: 'FROM {{base}}\nCOPY testfile /sample/\nRUN [ "$(cat /sample/testfile)" = "contents0" ]\n',
    files: { testfile: f600('contents0') },
  },
  {
    name: 'copy-link-dot-dest-dir',
    source: 'buildkit: testCopyLinkDotDestDir',
    dockerfile: 'FROM {{base}}\nWORKDIR /var/www\nCOPY --link testfile .\nRUN [ "$(cat testfile)" = "contents0" ]\n',
    files: { testfile: f600('contents0') },
    reference: 'assertion', // buildah 1.28 does not know COPY --link
    check: (img) => assert.equal(img.text('/var/www/testfile'), 'contents0'),
  },
  {
    name: 'copy-wildcards',
    source: 'buildkit: testCopyWildcards',
    dockerfile: [
      'FROM scratch',
      'COPY *.go /gofiles/',
      'COPY f*.go foo2.go',
      'COPY sub/* /subdest/',
      'COPY sub/*/dir2/foo /subdest2/',
      'COPY sub/*/dir2/foo /subdest3/bar',
      'COPY . all/',
      'COPY sub/dir1/ subdest4',
      'COPY sub/dir1/. subdest5',
      'COPY sub/dir1 subdest6',
      '',
    ].join('\n'),
    files: { 'foo.go': f600('foo-contents'), 'bar.go': f600('bar-contents'), sub: d700, 'sub/dir1': d700, 'sub/dir1/dir2': d700, 'sub/dir1/dir2/foo': f600('foo-contents') },
    check: (img) => {
      for (const p of ['gofiles/foo.go', 'foo2.go', 'subdest/dir2/foo', 'subdest2/foo', 'subdest3/bar', 'all/foo.go', 'subdest4/dir2/foo', 'subdest5/dir2/foo', 'subdest6/dir2/foo']) assert.equal(img.text(p), 'foo-contents', p);
      assert.equal(img.text('gofiles/bar.go'), 'bar-contents');
    },
  },
  {
    name: 'copy-empty-wildcard',
    source: 'buildkit: testEmptyWildcard',
    dockerfile: 'FROM scratch\nCOPY foo nomatch* /\n',
    files: { foo: 'contents0' },
    reference: 'assertion', // buildah 1.28 refuses a wildcard that matches nothing
    check: (img) => assert.equal(img.text('foo'), 'contents0'),
  },
  {
    name: 'copy-through-symlink-context',
    source: 'buildkit: testCopyThroughSymlinkContext',
    dockerfile: 'FROM scratch\nCOPY link/foo .\n',
    files: { 'sub/foo': 'contents', link: { symlink: 'sub' } },
    check: (img) => assert.equal(img.text('foo'), 'contents'),
  },
  {
    name: 'copy-through-symlink-multistage',
    source: 'buildkit: testCopyThroughSymlinkMultiStage',
    dockerfile: [
      'FROM {{base}} AS build',
      'RUN mkdir -p /out/sub && ln -s /out/sub /sub && ln -s out/sub /sub2 && echo -n "data" > /sub/foo',
      'FROM scratch',
      'COPY --from=build /sub/foo .',
      'COPY --from=build /sub2/foo bar',
      '',
    ].join('\n'),
    check: (img) => {
      assert.equal(img.text('foo'), 'data');
      assert.equal(img.text('bar'), 'data');
    },
  },
  {
    name: 'copy-follow-all-symlinks',
    source: 'buildkit: testCopyFollowAllSymlinks',
    dockerfile: 'FROM scratch\nCOPY foo /\nCOPY foo/sub bar\n',
    files: { bar: f600('bar-contents'), foo: d700, 'foo/sub': { symlink: '../bar' } },
  },
  {
    name: 'copy-symlinks',
    source: 'buildkit: testCopySymlinks',
    dockerfile: 'FROM scratch\nCOPY foo /\nCOPY sub/l* alllinks/\n',
    files: {
      bar: f600('bar-contents'),
      foo: { symlink: 'bar' },
      sub: d700,
      'sub/lfile': f600('lfile-contents'),
      'sub/l0': { symlink: 'subfile' },
      'sub/subfile': f600('subfile-contents'),
      'sub/l1': { symlink: 'second' },
      'sub/second': { symlink: 'baz' },
      'sub/baz': f600('baz-contents'),
    },
    check: (img) => {
      assert.equal(img.text('foo'), 'bar-contents');
      assert.equal(img.text('alllinks/l0'), 'subfile-contents');
      assert.equal(img.text('alllinks/l1'), 'baz-contents');
    },
  },
  {
    name: 'copy-override-files',
    source: 'buildkit: testCopyOverrideFiles',
    dockerfile: 'FROM scratch AS base\nCOPY sub sub\nCOPY sub sub\nCOPY files/foo.go dest/foo.go\nCOPY files/foo.go dest/foo.go\nCOPY files dest\n',
    files: { sub: d700, 'sub/dir1': d700, 'sub/dir1/dir2': d700, 'sub/dir1/dir2/foo': f600('foo-contents'), files: d700, 'files/foo.go': f600('foo.go-contents') },
    check: (img) => assert.equal(img.text('dest/foo.go'), 'foo.go-contents'),
  },
  {
    name: 'copy-var-substitution',
    source: 'buildkit: testCopyVarSubstitution',
    dockerfile: 'FROM scratch AS base\nENV FOO bar\nCOPY $FOO baz\n',
    files: { bar: f600('bar-contents') },
    check: (img) => assert.equal(img.text('baz'), 'bar-contents'),
  },
  {
    name: 'copy-relative',
    source: 'buildkit: testCopyRelative',
    dockerfile: [
      'FROM {{base}}',
      'WORKDIR /test1',
      'WORKDIR test2',
      'RUN sh -c "[ "$PWD" = \'/test1/test2\' ]"',
      'COPY foo ./',
      'ADD foo ./bar/baz',
      'COPY foo ./bar/baz2',
      'WORKDIR ..',
      'COPY foo ./',
      'COPY foo /test3/',
      'WORKDIR /test4',
      'COPY . .',
      'WORKDIR /test5/test6',
      'COPY foo ../',
      'RUN [ "$(cat /test1/test2/bar/baz2)" = hello ] && [ "$(cat /test5/foo)" = hello ]',
      '',
    ].join('\n'),
    files: { foo: 'hello' },
  },
  {
    name: 'copy-unicode-path',
    source: 'buildkit: testCopyUnicodePath',
    dockerfile: 'FROM {{base}}\nCOPY test-äöü.txt /\nCOPY test-%C3%A4%C3%B6%C3%BC.txt /\nCOPY test+aou.txt /\n',
    files: { 'test-äöü.txt': 'utf8 1', 'test-%C3%A4%C3%B6%C3%BC.txt': 'url escaped', 'test+aou.txt': 'plus' },
  },
  {
    name: 'copy-dockerfile-dirs',
    source: 'buildkit: testDockerfileDirs',
    dockerfile: 'FROM {{base}}\nCOPY foo /foo2\nCOPY foo /\nRUN echo -n bar > foo3\nRUN test -f foo\nRUN cmp -s foo foo2\nRUN cmp -s foo foo3\n',
    files: { foo: 'bar' },
  },
  {
    name: 'copy-symlink-destination',
    source: 'buildkit: testSymlinkDestination',
    dockerfile: 'FROM {{base}}\nRUN mkdir -p /tmp/symlink-target && ln -s /tmp/symlink-target /symlink\nCOPY foo /symlink/\n',
    files: { foo: 'contents' },
    check: (img) => {
      assert.equal(img.listing.get('symlink')?.type, 'symlink');
      assert.equal(img.text('tmp/symlink-target/foo'), 'contents');
    },
  },
  {
    name: 'copy-single-file-absolute-path-perms',
    source: 'buildah: bud.bats "bud with COPY of single file creates absolute path with correct permissions"',
    dockerfile: 'FROM {{base}}\nCOPY distutils.cfg /usr/lib/python3.7/distutils\n',
    files: { 'distutils.cfg': '[build]\n' },
  },
  {
    name: 'copy-single-file-relative-path-perms',
    source: 'buildah: bud.bats "bud with COPY of single file creates relative path with correct permissions"',
    dockerfile: 'FROM {{base}}\nWORKDIR /app\nCOPY distutils.cfg lib/custom/distutils.cfg\n',
    files: { 'distutils.cfg': '[build]\n' },
  },
  {
    name: 'copy-to-root',
    source: 'buildah: bud.bats "bud COPY to root succeeds"',
    dockerfile: 'FROM {{base}}\nCOPY Dockerfile /\nCOPY a b /\n',
    files: { a: 'a', b: 'b' },
  },
  {
    name: 'copy-to-symlink',
    source: 'buildah: bud.bats "bud copy to symlink"',
    dockerfile: 'FROM {{base}}\nRUN mkdir /data && ln -s /data /link\nCOPY file /link/\n',
    files: { file: 'through the link' },
  },
  {
    name: 'copy-to-dangling-symlink',
    source: 'buildah: bud.bats "bud copy to dangling symlink"',
    dockerfile: 'FROM {{base}}\nRUN ln -s /nonexistent/dir /link\nCOPY file /link/\n',
    files: { file: 'through a dangling link' },
  },
  {
    name: 'copy-mode-and-owner-preserved',
    source: 'buildah: bud.bats "bud-copy-dot with --layers picks up changed file" (modes kept from the context)',
    dockerfile: 'FROM {{base}}\nCOPY . /ctx/\n',
    files: { 'exec.sh': { content: '#!/bin/sh\n', mode: 0o750 }, 'ro.txt': { content: 'ro', mode: 0o400 }, 'd/x': 'x', d: { dir: true, mode: 0o711 } },
  },
  {
    name: 'copy-parents',
    source: 'buildkit: testCopyParents',
    dockerfile: 'FROM scratch\nCOPY --parents foo1/foo2/bar /\nWORKDIR /test\nCOPY --parents foo1/foo2/ba* .\n',
    files: { foo1: d700, 'foo1/foo2': d700, 'foo1/foo2/bar': f600('testing'), 'foo1/foo2/baz': f600('testing2') },
    reference: 'assertion', // buildah 1.28 refuses COPY --parents
    check: (img) => {
      assert.equal(img.text('foo1/foo2/bar'), 'testing');
      assert.equal(img.text('test/foo1/foo2/bar'), 'testing');
      assert.equal(img.text('test/foo1/foo2/baz'), 'testing2');
      assert.equal(img.listing.get('foo1')?.mode, 0o700, 'parents keep their own mode');
    },
  },
  {
    name: 'copy-relative-parents',
    source: 'buildkit: testCopyRelativeParents (the stage from the context instead of a RUN)',
    dockerfile: [
      'FROM scratch AS base',
      'COPY . /test/',
      'FROM scratch',
      'COPY --from=base --parents /test/a/b/./c/d /middle/',
      'COPY --from=base --parents /test/a/b/c/d/. /end/',
      'COPY --from=base --parents ./test/a/b/c/d /start/',
      'COPY --from=base --parents /test/a/./b/./c /double/',
      'COPY --from=base --parents /test/a/./*/c /wildcard/',
      'COPY --from=base --parents /test/a/b*/./c/**/e /doublewildcard/',
      'COPY --from=base --parents /test/a/b/c*/./d/**/baz /test/a/b*/./c/**/bar /doubleinputs/',
      '',
    ].join('\n'),
    files: { 'a/b/c/d/e': { dir: true }, 'a/b/c/d/foo': '', 'a/b/c/d/e/bay': '', 'a/b2/c/d/e/bar': '', 'a/b/c2/d/e/baz': '', 'a/b/c2/d/e2/baz': '' },
    reference: 'assertion', // buildah 1.28 refuses COPY --parents
    check: (img) => {
      const want: [string, 'dir' | 'file' | undefined][] = [
        ['middle/c/d/e', 'dir'], ['middle/c/d/foo', 'file'], ['middle/a', undefined], ['middle/e', undefined],
        ['end/test/a/b/c/d/e', 'dir'], ['end/test/a/b/c/d/foo', 'file'],
        ['start/test/a/b/c/d/e', 'dir'], ['start/test/a/b/c/d/foo', 'file'],
        ['double/b/c/d/e', 'dir'], ['double/b/c/d/foo', 'file'],
        ['wildcard/b/c/d/e', 'dir'], ['wildcard/b2/c/d/e/bar', 'file'],
        ['doublewildcard/c/d/e', 'dir'], ['doublewildcard/c/d/e/bay', 'file'], ['doublewildcard/c/d/e/bar', 'file'],
        ['doubleinputs/d/e/baz', 'file'], ['doubleinputs/d/e/bay', undefined], ['doubleinputs/d/e2/baz', 'file'], ['doubleinputs/c/d/e/bar', 'file'],
      ];
      for (const [p, type] of want) assert.equal(img.listing.get(p)?.type, type, p);
    },
  },
];
