/**
 * git over HTTPS (the "dumb" HTTP protocol, served as static files by the in-process
 * upstream) under `htvend build`, then `git clone` again offline in `unshare -n`: git needs
 * no configuration (https_proxy + GIT_SSL_CAINFO from htvend).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { execFileSync } from 'node:child_process';
import { sendBody } from '../helpers/https-upstream.js';
import { build, offlineUnshared, project, canUnshare, which } from './harness.js';

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(dir)) {
    const p = join(dir, name);
    if ((await stat(p)).isDirectory()) out.push(...(await files(p)));
    else out.push(p);
  }
  return out;
}

test('git clone over HTTPS is recorded, then cloned again offline with the same commit', { skip: !which('git') || !canUnshare ? 'needs git and unshare -n' : false }, async (t) => {
  const p = await project(t);
  const git = (args: string[], cwd: string) =>
    execFileSync('git', args, { cwd, env: { ...p.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' }, encoding: 'utf8' });
  const work = join(p.dir, 'src-work');
  execFileSync('git', ['init', '-q', '-b', 'main', work]);
  execFileSync('sh', ['-c', 'echo "hello from git" > README && mkdir -p d && echo x > d/f'], { cwd: work });
  git(['add', '.'], work);
  git(['commit', '-qm', 'first'], work);
  const bare = join(p.dir, 'served', 'repo.git');
  execFileSync('git', ['clone', '-q', '--bare', work, bare]);
  git(['update-server-info'], bare);
  for (const f of await files(bare)) p.up.route(`/repo.git/${relative(bare, f)}`, sendBody(await readFile(f)));
  const head = git(['rev-parse', 'HEAD'], work).trim();

  const url = `${p.up.https}/repo.git`;
  const b = await build(p, ['--', 'git', 'clone', '-q', url, 'online']);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(git(['rev-parse', 'HEAD'], join(p.dir, 'online')).trim(), head);

  const o = await offlineUnshared(p, ['--', 'git', 'clone', '-q', url, 'offline']);
  assert.equal(o.code, 0, o.stderr);
  assert.equal(git(['rev-parse', 'HEAD'], join(p.dir, 'offline')).trim(), head);
  assert.equal(await readFile(join(p.dir, 'offline', 'README'), 'utf8'), 'hello from git\n');
});
