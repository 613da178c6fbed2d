import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMount, parseSecret } from '../../../src/builder/build/mounts.js';

const W = 'Dockerfile:4';

test('parses RUN --mount types with BuildKit defaults', () => {
  const secrets = new Map([['tok', { kind: 'value' as const, value: 'x' }]]);
  assert.deepEqual(parseMount('type=bind,from=build,source=/out,target=/in', W, secrets), { type: 'bind', target: '/in', source: '/out', from: 'build', readonly: true });
  assert.deepEqual(parseMount('target=/ctx,rw', W, secrets), { type: 'bind', target: '/ctx', source: '', readonly: false });
  assert.deepEqual(parseMount('type=cache,target=/root/.cache,sharing=locked,uid=1000', W, secrets), {
    type: 'cache', target: '/root/.cache', id: '/root/.cache', sharing: 'locked', readonly: false, mode: 0o755, uid: 1000, gid: 0,
  });
  assert.deepEqual(parseMount('type=tmpfs,dst=/tmp,size=1024', W, secrets), { type: 'tmpfs', target: '/tmp', size: 1024 });
  assert.deepEqual(parseMount('type=secret,id=tok,env=TOKEN,required', W, secrets), {
    type: 'secret', id: 'tok', required: true, env: 'TOKEN', source: { kind: 'value', value: 'x' }, mode: 0o400, uid: 0, gid: 0,
  });
  assert.equal((parseMount('type=secret,id=absent', W, secrets) as { source?: unknown }).source, undefined);
});

test('rejects bad mounts citing the Dockerfile line', () => {
  const none = new Map();
  assert.throws(() => parseMount('type=nfs,target=/x', W, none), /^Error: Dockerfile:4: --mount type=nfs: unsupported|Dockerfile:4: --mount type=nfs/);
  assert.throws(() => parseMount('type=cache', W, none), /Dockerfile:4: --mount type=cache needs target=/);
  assert.throws(() => parseMount('type=bind,target=rel', W, none), /must be absolute/);
  assert.throws(() => parseMount('type=tmpfs,target=/x,bogus=1', W, none), /unknown option bogus/);
  assert.throws(() => parseMount('type=secret,id=s,required', W, none), /Dockerfile:4: secret s is required/);
});

test('parses --secret from a file or from the environment', () => {
  assert.deepEqual(parseSecret('id=a,src=/run/a.txt', {}), ['a', { kind: 'file', path: '/run/a.txt' }]);
  assert.deepEqual(parseSecret('id=b,type=env,env=B_VALUE', { B_VALUE: 'v' }), ['b', { kind: 'value', value: 'v' }]);
  assert.throws(() => parseSecret('id=c,type=env', {}), /--secret id=c: environment variable c is not set/);
  assert.throws(() => parseSecret('src=/x', {}), /needs id=/);
});

test('tmpfs size takes bytes or go-units sizes (k/m/g, b/ib suffixes, any case) as BuildKit; junk is refused (issue 9)', () => {
  const none = new Map();
  const size = (v: string) => (parseMount(`type=tmpfs,target=/t,size=${v}`, W, none) as { size?: number }).size;
  assert.equal(size('128m'), 128 * 1024 * 1024);
  assert.equal(size('64k'), 64 * 1024);
  assert.equal(size('1G'), 1024 ** 3);
  assert.equal(size('2MiB'), 2 * 1024 * 1024);
  assert.equal(size('1.5k'), 1536);
  assert.equal(size('4096'), 4096);
  assert.throws(() => size('lots'), /Dockerfile:4: --mount size=lots: expected bytes or a size/);
  assert.throws(() => size('12q'), /size=12q/);
});
