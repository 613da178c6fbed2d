/**
 * BuildKit's own lexer cases (frontend/dockerfile/shell/lex_test.go TestProcessWithMatches and
 * TestConvertShellPatternToRegex), run through our lexer: patterns are globs with only `*`
 * and `?` (every other character, `[` included, is literal), escapes in patterns and
 * replacements are kept raw, and `${X:?}` tells "unset" from "empty". Plus the word splitting
 * fix of issue 9: whitespace inside `${…}` does not split a word.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandWord, splitWords, varsFrom } from '../../../src/builder/dockerfile/lexer.js';

const CASES: [input: string, env: Record<string, string>, expected: string | Error][] = [
  ['${FOO:?aaa}', { FOO: 'xxx' }, 'xxx'],
  ['${BAR:?bbb}', { BAR: '' }, new Error('BAR: bbb')],
  ['${BAZ:?}', {}, new Error('BAZ: is not allowed to be unset')],
  ['${BAR:?}', { BAR: '' }, new Error('BAR: is not allowed to be empty')],
  ['${BAR?}', { BAR: '' }, ''],
  ['${FOO=aaa}', {}, new Error('unsupported modifier')],
  ['${FOO#()[]{\\}^$.\\*\\?|\\\\}', { FOO: '()[]{}^$.*?|\\x' }, 'x'],
  ['${FOO%%\\**}', { FOO: 'xx**' }, 'xx'],
  ['${FOO#*x*y}', { FOO: 'xxyy' }, 'y'],
  ['${FOO#*}', { FOO: 'xxyy' }, 'xxyy'],
  ['${FOO#$BAR}', { FOO: 'xxyy', BAR: 'x' }, 'xyy'],
  ['${FOO#$BAR}', { FOO: 'xxyy', BAR: '' }, 'xxyy'],
  ['${FOO#}', { FOO: 'xxyy' }, 'xxyy'],
  ['${FOO##*x}', { FOO: 'xxyy' }, 'yy'],
  ['${FOO#?\\?}', { FOO: '???y' }, '?y'],
  ['${ABC:-.}${FOO%x}${ABC:-.}', { FOO: 'xxyy' }, '.xxyy.'],
  ['${FOO%%\\**\\*}', { FOO: 'a***yy*' }, 'a'],
  ['${FOO%%$BAR}', { FOO: 'xxyy', BAR: '' }, 'xxyy'],
  ['${FOO:#}', {}, new Error('unsupported modifier')],
  ['${FOO:%%}', {}, new Error('unsupported modifier')],
  ['${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}', { FOO: '/foo*/*/*.txt', NEEDLE: '\\*/' }, '/foo.*/*.txt - /foo..*.txt'],
  ['${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}', { FOO: '/tmp/tmp/bar.txt', NEEDLE: '/tmp' }, '/tmp/bar.txt - /bar.txt'],
  ['${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}', { FOO: '/a/foo/b/c.txt', NEEDLE: '/?/', REPLACEMENT: '/' }, '/foo/b/c.txt - /foo/c.txt'],
  ['${FOO//\\//\\/}', { FOO: '/tmp/foo.txt' }, '\\/tmp\\/foo.txt'],
  // Brackets are literal, not a character class.
  ['${FOO/[a-d]/X}|${BAR/[a-d]/X}', { FOO: 'idlebox', BAR: 'x[a-d]y' }, 'idlebox|xXy'],
  ['${FOO#\\x}', { FOO: 'x' }, new Error("invalid escape '\\x'")],
];

test('BuildKit lex_test cases: modifiers, glob patterns with raw escapes, :? messages', () => {
  for (const [input, env, expected] of CASES) {
    const v = varsFrom(env);
    if (expected instanceof Error) assert.throws(() => expandWord(input, v), (e: unknown) => e instanceof Error && e.message.includes(expected.message), input);
    else assert.equal(expandWord(input, v), expected, input);
  }
});

test('issue 9: whitespace inside ${…} does not split a word (${X:?need X set}, ${X:-a b})', () => {
  assert.deepEqual(splitWords('A=${X:?need X set} B=${Y:-a b} c'), ['A=${X:?need X set}', 'B=${Y:-a b}', 'c']);
  assert.throws(() => expandWord(splitWords('${X:?need X set}')[0]!, varsFrom({})), /^HtvendError: X: need X set$|X: need X set/);
  assert.equal(expandWord(splitWords('${X:-a b}')[0]!, varsFrom({})), 'a b');
  // Quotes and escapes still count inside, and an unclosed ${ splits as before (the expansion reports it).
  assert.deepEqual(splitWords('"${a" b} \\${c d}'), ['"${a"', 'b}', '\\${c', 'd}']);
  assert.deepEqual(splitWords('x=${y z'), ['x=${y', 'z']);
  assert.throws(() => expandWord('x=${y', varsFrom({})), /missing '}'/);
});
