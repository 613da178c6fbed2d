/**
 * Symbolic `--chmod` as BuildKit reads it (tonistiigi/dchapes-mode, a port of BSD setmode(3),
 * umask 0). Expected modes were produced by that Go parser (Set.Apply) for these inputs; the
 * implementation was also compared with it on ~20,000 random strings over `ugoa+-=rwxXst,`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSymbolicMode } from '../../../src/builder/fs/chmod.js';
import { parseChmod } from '../../../src/builder/copy/copy.js';

/** Inputs: files 0644, 0755, 2755 and directories 0640, 1770. */
const INPUTS: [number, boolean][] = [[0o644, false], [0o755, false], [0o2755, false], [0o640, true], [0o1770, true]];
const TABLE: Record<string, number[]> = {
  'g=u': [0o664, 0o775, 0o2775, 0o660, 0o1770], // copies u's rwx; setgid is kept
  'u+x,go-w': [0o744, 0o755, 0o2755, 0o740, 0o1750],
  'a=rX': [0o444, 0o555, 0o555, 0o555, 0o1555], // X: dirs and executable files only; `a` leaves the sticky bit
  'u=rwX,go=rX': [0o644, 0o755, 0o755, 0o755, 0o1755],
  'a-x,a+X': [0o644, 0o755, 0o2755, 0o751, 0o1771], // X looks at the mode before the whole --chmod
  'g=ur': [0o644, 0o745, 0o745, 0o640, 0o1740], // `=r` after the copy clears the group again
  'o+t': [0o644, 0o755, 0o2755, 0o640, 0o1770], // t needs u, g, a or no class
  '+rt': [0o1644, 0o1755, 0o3755, 0o1640, 0o1770], // t narrows the clause to the sticky bit
  'a=rw': [0o666, 0o666, 0o666, 0o666, 0o1666],
  '=': [0o000, 0o000, 0o000, 0o000, 0o1000],
  'ug+s': [0o6644, 0o6755, 0o6755, 0o6640, 0o7770],
  'go=u-w': [0o644, 0o755, 0o2755, 0o644, 0o1755],
  '+': [0o644, 0o755, 0o2755, 0o640, 0o1770],
};

test('symbolic --chmod modes apply as BuildKit applies them', () => {
  for (const [mode, want] of Object.entries(TABLE)) {
    const fn = parseSymbolicMode(mode);
    assert.ok(fn, `${mode} parses`);
    const got = INPUTS.map(([m, isDir]) => fn(m, isDir));
    assert.deepEqual(got.map((n) => n.toString(8)), want.map((n) => n.toString(8)), mode);
  }
});

test('malformed symbolic modes are refused; numeric-looking ones get the octal message', () => {
  for (const bad of ['u+z', 'u+x,', 'u', 'x', ',u+x', 'u++z', 'rw']) assert.equal(parseSymbolicMode(bad), undefined, bad);
  assert.throws(() => parseChmod('u+z', 'Dockerfile:2'), /Dockerfile:2: --chmod=u\+z: expected an octal mode such as 755 or a symbolic one/);
  for (const v of ['64a', '8', '17777']) assert.throws(() => parseChmod(v, 'Dockerfile:2'), /invalid chmod parameter, it should be an octal string between 0 and 07777/, v);
  assert.equal(parseChmod('0755', 'x'), 0o755);
  assert.equal(parseChmod('0', 'x'), 0);
});
