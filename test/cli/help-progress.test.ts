/**
 * Every command's --help runs and ends with real examples; progress bars never put escape
 * codes on a stderr that is not a person's terminal (pipe, NO_COLOR, TERM=dumb, CI,
 * LOG_LEVEL=error, -q). A pseudo-terminal comes from util-linux `script`; the same run
 * without those variables must draw the bar, so the test can tell.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cliCommand, run, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { q, which } from '../e2e/harness.js';
import { progressWanted } from '../../src/util/progress.js';

const HELP: [string, 'htvend' | 'build-img-with-proxy', string[]][] = [
  ['htvend', 'htvend', ['--help']],
  ['htvend build', 'htvend', ['build', '--help']],
  ['htvend offline', 'htvend', ['offline', '--help']],
  ['htvend verify', 'htvend', ['verify', '--help']],
  ['htvend export', 'htvend', ['export', '--help']],
  ['htvend doctor', 'htvend', ['doctor', '--help']],
  ['build-img-with-proxy', 'build-img-with-proxy', ['--help']],
];

for (const [name, bin, args] of HELP) {
  test(`${name} --help exits 0 and ends with two or three examples`, async () => {
    const r = await runCli(bin, args, { env: { ...process.env, BUILDAH_OPTS: '' } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const block = /\nExamples:\n((?: {2}\$ .+\n)+)/.exec(r.stdout);
    assert.ok(block, r.stdout);
    const examples = block[1]!.trimEnd().split('\n');
    assert.ok(examples.length >= 2 && examples.length <= 3, examples.join('\n'));
    const cmd = name.split(' ');
    // Each example runs the command it documents (directly, or as htvend's child).
    for (const e of examples) assert.ok(e.includes(cmd[0]!) && (cmd.length === 1 || e.includes(`${cmd[0]} ${cmd[1]}`)), e);
    assert.ok(r.stdout.indexOf('Examples:') > r.stdout.indexOf('Options:'), 'the examples come after the options');
  });
}

test('progressWanted: only a TTY without NO_COLOR, TERM=dumb, CI or an error-only level', () => {
  const tty = { isTTY: true };
  assert.equal(progressWanted(tty, { TERM: 'xterm' }), true);
  assert.equal(progressWanted({ isTTY: false }, {}), false);
  assert.equal(progressWanted(tty, { NO_COLOR: '1' }), false);
  assert.equal(progressWanted(tty, { NO_COLOR: '' }), true, 'an empty NO_COLOR does not count (no-color.org)');
  assert.equal(progressWanted(tty, { TERM: 'dumb' }), false);
  assert.equal(progressWanted(tty, { CI: 'true' }), false);
  assert.equal(progressWanted(tty, { CI: 'false' }), true);
  assert.equal(progressWanted(tty, { LOG_LEVEL: 'ERROR' }), false);
  assert.equal(progressWanted(tty, {}, 'error'), false);
});

test('htvend verify draws no escape codes on a pipe, nor on a terminal with NO_COLOR, TERM=dumb, CI, LOG_LEVEL=error or -q', { skip: !which('script') }, async (t) => {
  const dir = await tempDir(t, 'htvend-progress-');
  const blobs = join(dir, 'blobs');
  await mkdir(blobs);
  const entries: Record<string, unknown> = {};
  for (let i = 0; i < 3; i++) {
    const body = `blob ${i}\n`.repeat(1000);
    const d = createHash('sha256').update(body).digest('hex');
    await writeFile(join(blobs, d), body);
    entries[`https://h.test/${i}`] = { Sha256: d, Headers: {} };
  }
  await writeFile(join(dir, 'assets.json'), JSON.stringify(entries));
  const base: NodeJS.ProcessEnv = { PATH: process.env['PATH'], HOME: dir, TERM: 'xterm' };
  const verify = (extraArgs: string[] = []) => [...cliCommand('htvend'), ...extraArgs, '-C', dir, 'verify', '--blobs-dir', blobs].map(q).join(' ');
  // `script -qec CMD /dev/null` runs CMD on a pseudo-terminal and copies what it drew to stdout.
  const onTty = async (env: NodeJS.ProcessEnv, extraArgs: string[] = []) => {
    const r = await run(['script', '-qec', verify(extraArgs), '/dev/null'], { env: { ...base, ...env } });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // At LOG_LEVEL=error the summary is not shown either.
    if (env['LOG_LEVEL'] !== 'error') assert.match(r.stdout, /verify: 3 blob\(s\), 3 ok/);
    return r.stdout;
  };
  assert.match(await onTty({}), /\x1b\[/, 'a plain terminal gets the bar (else this test could not fail)');
  for (const env of [{ NO_COLOR: '1' }, { TERM: 'dumb' }, { CI: 'true' }, { LOG_LEVEL: 'error' }]) {
    assert.doesNotMatch(await onTty(env), /\x1b/, JSON.stringify(env));
  }
  const quiet = await run(['script', '-qec', verify(['-q']), '/dev/null'], { env: base });
  assert.equal(quiet.code, 0);
  assert.doesNotMatch(quiet.stdout, /\x1b/, '-q');
  const piped = await run([...cliCommand('htvend'), '-C', dir, 'verify', '--blobs-dir', blobs], { env: base });
  assert.equal(piped.code, 0, piped.stderr);
  assert.doesNotMatch(piped.stderr, /\x1b/, 'a pipe');
});
