/** ADD (archives), --chown/--chmod, hard links, .dockerignore. */
import assert from 'node:assert/strict';
import type { ConformanceCase } from '../case.js';

const tree = { 'foo/bar': 'bar-contents', 'foo/sub/baz': 'baz-contents', top: 'top' };

export const addPermCases: ConformanceCase[] = [
  {
    name: 'add-archive-tar',
    source: 'buildkit: testDockerfileAddArchive',
    dockerfile: 'FROM scratch\nADD t.tar /\n',
    files: { 't.tar': { archive: tree } },
    check: (img) => assert.equal(img.text('foo/bar'), 'bar-contents'),
  },
  {
    name: 'add-archive-tar-gz',
    source: 'buildkit: testDockerfileAddArchive',
    dockerfile: 'FROM scratch\nADD t.tar.gz /\n',
    files: { 't.tar.gz': { archive: tree, gzip: true } },
  },
  {
    name: 'copy-archive-not-extracted',
    source: 'buildkit: testDockerfileAddArchive',
    dockerfile: 'FROM scratch\nCOPY t.tar.gz /\n',
    files: { 't.tar.gz': { archive: tree, gzip: true } },
    check: (img) => assert.equal(img.listing.get('foo'), undefined),
  },
  {
    name: 'add-archive-renamed-not-extracted-dest',
    source: 'buildkit: testDockerfileAddArchive',
    dockerfile: 'FROM scratch\nADD t.tar.gz /newdir/\n',
    files: { 't.tar.gz': { archive: tree, gzip: true } },
  },
  {
    name: 'add-archive-implied-parent-dir',
    source: 'buildkit: testDockerfileAddArchiveWithImpliedParentDir',
    dockerfile: 'FROM scratch\nADD t.tar.gz /\n',
    files: { 't.tar.gz': { archive: { 'dir/sub/file': 'deep' }, gzip: true } },
  },
  {
    name: 'add-chown-archive',
    source: 'buildkit: testDockerfileAddChownArchive',
    dockerfile: 'FROM scratch\nADD --chown=100:200 t.tar /out/\n',
    files: { 't.tar': { archive: tree } },
    reference: 'assertion', // buildah 1.28 applies --chown to archive contents; BuildKit too, but keeps /out root-owned
    check: (img) => {
      const e = img.listing.get('out/foo/bar');
      assert.equal(`${e?.uid}:${e?.gid}`, '100:200');
    },
  },
  {
    name: 'add-archive-wildcard',
    source: 'buildkit: testDockerfileAddArchiveWildcard',
    dockerfile: 'FROM scratch\nADD *.tar /dest\n',
    files: { 't.tar': { archive: { foo: 'foo-contents' } }, 'b.tar': { archive: { bar: 'bar-contents' } } },
    pending: 'ADD of archives by wildcard',
    check: (img) => {
      assert.equal(img.text('dest/foo'), 'foo-contents');
      assert.equal(img.text('dest/bar'), 'bar-contents');
    },
  },
  {
    name: 'add-chown-expand',
    source: 'buildkit: testDockerfileAddChownExpand',
    dockerfile: 'FROM {{base}}\nARG group\nENV owner 1000\nADD --chown=${owner}:${group} foo /\nRUN [ "$(stat -c "%u %G" /foo)" = "1000 nogroup" ]\n',
    buildArgs: { group: 'nogroup' },
    files: { foo: 'foo-contents' },
  },
  {
    name: 'add-multiple-files',
    source: 'buildah: bud.bats "bud with ADD file construct"',
    dockerfile: 'FROM {{base}}\nCOPY file file2 /var/www/\nADD file file2 /var/html/\n',
    files: { file: 'f', file2: 'f2' },
  },
  {
    name: 'add-single-file-relative-path-perms',
    source: 'buildah: bud.bats "bud with ADD of single file creates relative path with correct permissions"',
    dockerfile: 'FROM {{base}}\nWORKDIR /app\nADD distutils.cfg lib/custom/distutils.cfg\n',
    files: { 'distutils.cfg': '[build]\n' },
  },
  {
    name: 'copy-chown',
    source: 'buildkit: testCopyChown',
    dockerfile: [
      'FROM {{base}} AS base',
      'ENV owner 1000',
      'RUN mkdir -m 0777 /out',
      'COPY --chown=app foo /',
      'COPY --chown=1000:nogroup bar /baz',
      'ARG group',
      'COPY --chown=${owner}:${group} foo /foobis',
      'RUN stat -c "%U %G" /foo  > /out/fooowner',
      'RUN stat -c "%u %G" /baz/sub  > /out/subowner',
      'RUN stat -c "%u %G" /foobis  > /out/foobisowner',
      'FROM scratch',
      'COPY --from=base /out /',
      '',
    ].join('\n'),
    buildArgs: { group: 'nogroup' },
    files: { foo: 'foo-contents', 'bar/sub': 'sub-contents' },
    check: (img) => assert.equal(img.text('subowner'), '1000 nogroup\n'),
  },
  {
    name: 'copy-chown-create-dest',
    source: 'buildkit: testCopyChownCreateDest',
    dockerfile: 'FROM {{base}}\nARG group\nENV owner user01\nRUN echo \'user:x:1501:1501::/home/user:/bin/sh\' >> /etc/passwd && echo \'user:x:1501:\' >> /etc/group\nRUN echo \'user01:x:1502:1502::/home/user01:/bin/sh\' >> /etc/passwd\nCOPY --chown=user:user . /dest\nCOPY --chown=${owner}:${group} . /dest01\nRUN [ "$(stat -c "%U %G" /dest)" = "user user" ]\nRUN [ "$(stat -c "%U %G" /dest01)" = "user01 user" ]\n',
    buildArgs: { group: 'user' },
    files: { a: 'a' },
  },
  {
    name: 'copy-chown-user-by-name',
    source: 'buildah: bud.bats "bud copy chown with newuser"',
    dockerfile: 'FROM {{base}}\nENV MYUSER=myuser\nRUN echo "${MYUSER}:x:1503:1503::/${MYUSER}:/bin/sh" >> /etc/passwd && echo "${MYUSER}:x:1503:" >> /etc/group\nCOPY --chown="${MYUSER}" ./copychown.txt /somewhere\n',
    files: { 'copychown.txt': 'x' },
  },
  {
    name: 'copy-chown-numeric',
    source: 'buildah: bud.bats "bud with chown copy"',
    dockerfile: 'FROM {{base}}\nCOPY --chown=2367:3267 copychown.txt /tmp\nRUN stat -c "user:%u group:%g" /tmp/copychown.txt\nCMD /bin/sh\n',
    files: { 'copychown.txt': 'x' },
  },
  {
    name: 'copy-chmod',
    source: 'buildkit: testCopyChmod',
    dockerfile: [
      'FROM {{base}} AS base',
      'RUN mkdir -m 0777 /out',
      'COPY --chmod=0644 foo /',
      'COPY --chmod=777 bar /baz',
      'COPY --chmod=777 foo /parent/foo',
      'COPY --chmod=770 foo /parent/sub/foo',
      'ARG mode',
      'COPY --chmod=${mode} foo /footer',
      'RUN stat -c "%04a" /foo  > /out/fooperm',
      'RUN stat -c "%04a" /baz  > /out/barperm',
      'RUN stat -c "%04a" /parent  > /out/parentperm',
      'RUN stat -c "%04a" /parent/sub  > /out/subparentperm',
      'RUN stat -c "%04a" /footer  > /out/footerperm',
      'FROM scratch',
      'COPY --from=base /out /',
      '',
    ].join('\n'),
    buildArgs: { mode: '755' },
    files: { foo: 'foo-contents', 'bar/sub': 'sub' },
    check: (img) => {
      assert.equal(img.text('fooperm'), '0644\n');
      assert.equal(img.text('parentperm'), '0755\n');
      assert.equal(img.text('footerperm'), '0755\n');
    },
  },
  {
    name: 'copy-chmod-zero',
    source: 'buildkit: testCopyChmod',
    dockerfile: 'FROM scratch\nCOPY --chmod=0 foo /foobis\n',
    files: { foo: 'foo-contents' },
    pending: 'Modes (COPY --chmod=0)',
    check: (img) => assert.equal(img.listing.get('foobis')?.mode, 0),
  },
  {
    name: 'copy-chmod-and-chown-combined',
    source: 'buildah: bud.bats "bud with combined chown and chmod copy"',
    dockerfile: 'FROM {{base}}\nCOPY --chmod=777 --chown=2367:3267 copychmod.txt /tmp\nADD --chmod=750 --chown=1:1 copychmod.txt /tmp/added\n',
    files: { 'copychmod.txt': 'x' },
  },
  {
    name: 'copy-invalid-chmod',
    source: 'buildkit: testCopyInvalidChmod',
    dockerfile: 'FROM scratch\nCOPY --chmod=64a foo /\n',
    files: { foo: 'x' },
    fails: /chmod|mode/i,
  },
  {
    name: 'copy-hardlinks',
    source: 'buildah: bud.bats "bud-copy-dockerignore-hardlinks"',
    dockerfile: 'FROM scratch\nCOPY . .\nCOPY . .\n',
    files: { '.dockerignore': 'foo\n', 'subdir/test1.txt': 'test1\n', 'subdir/test2.txt': { hardlink: 'subdir/test1.txt' }, 'test3.txt': { hardlink: 'subdir/test2.txt' }, 'test4.txt': { hardlink: 'test3.txt' } },
    pending: 'Hard links in the context',
    check: (img) => assert.equal(img.listing.get('test4.txt')?.hardlinks, 'subdir/test1.txt'),
  },
  {
    name: 'run-hardlinks',
    source: 'buildah: bud.bats "bud-squash-hardlinks"',
    dockerfile: 'FROM {{base}}\nRUN mkdir /h && echo linked > /h/a && ln /h/a /h/b && ln /h/a /c\n',
    check: (img) => assert.equal(img.listing.get('c')?.hardlinks, 'c'),
  },
  {
    name: 'dockerignore',
    source: 'buildkit: testDockerignore',
    dockerfile: 'FROM scratch\nCOPY . .\n',
    files: { foo: 'foo-contents', bar: 'bar-contents', baz: 'baz-contents', bay: 'bay-contents', '.dockerignore': 'ba*\nDockerfile\n!bay\n.dockerignore\n' },
    check: (img) => {
      assert.equal(img.text('bay'), 'bay-contents');
      assert.equal(img.listing.get('bar'), undefined);
    },
  },
  {
    name: 'dockerignore-override',
    source: 'buildkit: testDockerignoreOverride',
    dockerfile: 'FROM {{base}}\nCOPY . .\nRUN [ -f foo ] && [ ! -f bar ]\n',
    files: { foo: 'foo', bar: 'bar', '.dockerignore': 'bar\n' },
  },
  {
    name: 'dockerignore-dirs-and-exceptions',
    source: 'buildah: bud.bats "bud with .dockerignore #1"',
    dockerfile: 'FROM {{base}}\n\nCOPY ./ ./\n',
    files: { '.dockerignore': '# comment\n*\ntest*\n!test2*\nsubdir\n!*/sub1*', 'subdir/sub1.txt': '', 'subdir/sub2.txt': '', 'test1.txt': 'test1 failed', 'test2.txt': 'test2 failed' },
    pending: '.dockerignore (an excluded directory is still created)',
  },
  {
    name: 'dockerignore-nested-exception',
    source: 'buildah: bud.bats "bud copy with .dockerignore #1"',
    dockerfile: 'FROM {{base}}\nCOPY stuff /tmp/stuff\n',
    files: { '.dockerignore': 'stuff/huge/*\n!stuff/huge/usr/bin/*\n', 'stuff/huge/usr/bin/file1': '', 'stuff/huge/usr/bin/file2': '', 'stuff/huge/usr/file3': '' },
  },
  {
    name: 'dockerignore-excluded-subtree',
    source: 'buildah: bud.bats "bud copy with .dockerignore #2"',
    dockerfile: 'FROM {{base}}\nCOPY stuff /tmp/stuff\n',
    files: { '.dockerignore': 'stuff/huge/*\n', 'stuff/huge/usr/bin/file1': '', 'stuff/huge/usr/bin/file2': '', 'stuff/keep': 'k' },
    pending: '.dockerignore (an excluded directory is still created)',
  },
  {
    name: 'dockerignore-unmatched-with-symlinks',
    source: 'buildah: bud.bats "bud with .dockerignore - unmatched"',
    dockerfile: 'FROM scratch\nCOPY . /\n',
    files: { '.dockerignore': 'unmatched\n', 'subdir/sub1.txt': '', 'subdir/subsubdir/subsub1.txt': '', symlink: { symlink: 'subdir' }, 'subdir/circular-link': { symlink: 'circular-link' }, 'subdir/dangling-link': { symlink: 'no-such-file' } },
  },
];
