/**
 * Proxy behaviour as data (SPEC §3, STYLE.md): an ordered list of rules, each a pure matcher
 * over the request's facts, the action it selects and a sentence explaining the choice. The
 * first match wins. Reading this file top to bottom is reading the proxy's semantics.
 */
import type { RequestFacts, Rule } from './types.js';

const isGetOrHead = (f: RequestFacts) => f.method === 'GET' || f.method === 'HEAD';
const replayable = (f: RequestFacts) => isGetOrHead(f) && f.entry !== undefined && f.blobSize !== undefined;

export const RULES: readonly Rule[] = [
  {
    name: 'dummy-ok',
    action: 'dummy-ok',
    matches: (f) => f.mode === 'offline' && f.dummyOk,
    explain: (f) => `${f.method} ${f.key} matches --dummy-ok-response: empty 200`,
  },
  {
    name: 'no-cache',
    action: 'pass-through',
    matches: (f) => f.mode === 'build' && f.noCache,
    explain: (f) => `${f.method} ${f.key} matches --no-cache-response: passed upstream, not recorded`,
  },
  {
    name: 'no-cache-offline',
    action: 'deny-missing',
    matches: (f) => f.mode === 'offline' && f.noCache,
    explain: (f) => `${f.method} ${f.key} matches --no-cache-response, so it is never recorded: 404 offline (add it to --dummy-ok-response?)`,
  },
  {
    name: 'other-method',
    action: 'pass-through',
    matches: (f) => f.mode === 'build' && !isGetOrHead(f),
    explain: (f) => `${f.method} ${f.key}: only GET/HEAD are recorded; passed upstream unrecorded`,
  },
  {
    name: 'other-method-offline',
    action: 'deny-method',
    matches: (f) => f.mode === 'offline' && !isGetOrHead(f),
    explain: (f) => `${f.method} ${f.key}: offline mode replays GET/HEAD only: 405`,
  },
  {
    name: 'replay',
    action: 'replay',
    matches: replayable,
    explain: (f) => `${f.method} ${f.key}: recorded as sha256 ${f.entry!.Sha256} (${f.blobSize} bytes): replayed from the store`,
  },
  {
    name: 'record',
    action: 'record',
    matches: (f) => f.mode === 'build' && isGetOrHead(f),
    explain: (f) =>
      `${f.method} ${f.key}: ${f.entry ? `recorded blob ${f.entry.Sha256} is missing from the store` : 'not recorded yet'}: fetched with GET and recorded`,
  },
  {
    name: 'missing',
    action: 'deny-missing',
    matches: (f) => f.mode === 'offline',
    explain: (f) =>
      `${f.method} ${f.key}: ${f.entry ? `blob ${f.entry.Sha256} is missing from the store` : 'not in assets.json'}: 404`,
  },
];

/** The first rule matching `f` (the list is total: some rule always matches). */
export function chooseRule(f: RequestFacts): Rule {
  const r = RULES.find((rule) => rule.matches(f));
  if (!r) throw new Error(`no proxy rule for ${f.mode} ${f.method}`); // unreachable: 'missing'/'record' cover both modes
  return r;
}
