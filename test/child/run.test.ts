import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exitStatus, interactiveShell, runChild } from '../../src/child/run.js';
import { makePrivateDir, writeChildFiles } from '../../src/child/private-dir.js';
import { createCa } from '../../src/tls/ca.js';
import { silentLogger } from '../../src/util/log.js';

const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };

test("the child's exit code becomes the result", async () => {
  assert.equal(await runChild({ argv: ['sh', '-c', 'exit 7'], env, log: silentLogger }), 7);
  assert.equal(await runChild({ argv: ['true'], env, log: silentLogger }), 0);
});

test('death by signal N is reported as 128+N', async () => {
  assert.equal(await runChild({ argv: ['sh', '-c', 'kill -TERM $$'], env, log: silentLogger }), 143);
  assert.equal(exitStatus(null, 'SIGKILL'), 137);
  assert.equal(exitStatus(3, null), 3);
});

test('the child sees exactly the environment it is given', async () => {
  const code = await runChild({ argv: ['sh', '-c', 'test "$FOO" = bar && test -z "$HOME"'], env: { ...env, FOO: 'bar' }, log: silentLogger });
  assert.equal(code, 0);
});

test('a missing command is a CHILD error with exit code 127 naming it', async () => {
  await assert.rejects(runChild({ argv: ['/nonexistent/tool'], env, log: silentLogger }), (e: Error & { exitCode?: number }) => {
    assert.match(e.message, /"\/nonexistent\/tool": command not found/);
    assert.equal(e.exitCode, 127);
    return true;
  });
});

test('no command means $SHELL (default /bin/sh) with a prompt naming the mode', () => {
  assert.deepEqual(interactiveShell({}, 'offline'), { argv: ['/bin/sh'], env: { PS1: '(htvend offline) $ ' } });
  assert.deepEqual(interactiveShell({ SHELL: '/bin/bash' }, 'build'), { argv: ['/bin/bash', '--norc'], env: { PS1: '(htvend build) \\$ ' } });
});

test('the private dir is 0700, holds the PEM, truststore and -t dirs, and is removed', async () => {
  const dir = await makePrivateDir();
  const ca = await createCa();
  const files = await writeChildFiles(dir.path, { caPem: ca.certPem, truststore: true, tempDirNames: ['WORK', 'WORK', 'CACHE'] });
  assert.equal((await stat(dir.path)).mode & 0o777, 0o700);
  assert.deepEqual((await readdir(dir.path)).sort(), ['cacerts.pem', 'tmp', 'truststore.p12']);
  assert.deepEqual(files.tempDirs.map(([n]) => n), ['WORK', 'CACHE']);
  assert.equal((await stat(files.tempDirs[0]![1])).isDirectory(), true);
  await dir.remove();
  await assert.rejects(stat(dir.path), /ENOENT/);
});

test('a -t name that is not an environment variable name is a usage error', async () => {
  const dir = await makePrivateDir();
  try {
    await assert.rejects(writeChildFiles(dir.path, { caPem: (await createCa()).certPem, truststore: false, tempDirNames: ['../x'] }), /--with-temp-dir "..\/x"/);
  } finally {
    await dir.remove();
  }
});

test('the wgetrc keeps the user settings and adds ca_certificate; apt.conf includes the parent APT_CONFIG', async (t) => {
  const dir = await makePrivateDir();
  t.after(() => dir.remove());
  const home = await makePrivateDir();
  t.after(() => home.remove());
  await writeFile(join(home.path, '.wgetrc'), 'tries = 3');
  const files = await writeChildFiles(dir.path, {
    caPem: (await createCa()).certPem,
    truststore: false,
    tempDirNames: [],
    toolConfigs: { parentEnv: { HOME: home.path, APT_CONFIG: '/etc/my-apt.conf' } },
  });
  assert.equal(await readFile(files.toolConfigs!.wgetrc, 'utf8'), `tries = 3\n# added by htvend\nca_certificate = ${files.caPemPath}\n`);
  assert.equal(await readFile(files.toolConfigs!.aptConfig, 'utf8'), `#include "/etc/my-apt.conf";\nAcquire::https::CaInfo "${files.caPemPath}";\n`);
});
