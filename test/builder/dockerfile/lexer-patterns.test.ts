import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandWord, varsFrom } from '../../../src/builder/dockerfile/lexer.js';

// buildkit: testDefaultEnvWithArgs (also test/conformance: default-env-with-args)
test('${a#p} ${a##p} ${a%p} ${a%%p} trim shortest/longest glob matches, ${a/p/r} ${a//p/r} replace, as BuildKit', () => {
  const v = varsFrom(new Map([['a', 'my_arg=def_val'], ['p', '/usr/local/bin/tool.tar.gz'], ['image', 'idlebox']]));
  assert.equal(expandWord('${a%%e*}', v), 'my_arg=d');
  assert.equal(expandWord('${p##*/}|${p#*/}', v), 'tool.tar.gz|usr/local/bin/tool.tar.gz');
  assert.equal(expandWord('${p%.*}|${p%%.*}', v), '/usr/local/bin/tool.tar|/usr/local/bin/tool');
  assert.equal(expandWord('busy${image#idle}|${image#nomatch}|${unset%x}', v), 'busybox|idlebox|');
  assert.equal(expandWord('${p/local/LOCAL}|${p//o/0}|${image/?d/X}', v), '/usr/LOCAL/bin/tool.tar.gz|/usr/l0cal/bin/t00l.tar.gz|Xlebox');
  assert.throws(() => expandWord('${p/local}', v), /missing '\/'/);
});
