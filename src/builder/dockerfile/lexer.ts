/**
 * Docker's Dockerfile word lexer: quote-aware word splitting and variable expansion with the
 * rules of BuildKit's `shell.Lex` (frontend/dockerfile/shell): single quotes are literal,
 * double quotes allow `$` expansion and escape only `"`, `$` and the escape char, the escape
 * char (`\` or the `# escape=` directive's) escapes anything outside quotes, and
 * `$a`, `${a}`, `${a:-b}`, `${a-b}`, `${a:+b}`, `${a+b}`, `${a:?msg}`, `${a?msg}` are expanded.
 * Unset variables expand to ''.
 */
import { HtvendError } from '../../util/errors.js';

/** Variables in scope: `undefined` = unset (distinct from '' for `${a-b}` vs `${a:-b}`). */
export type Vars = (name: string) => string | undefined;

export function varsFrom(...maps: (Map<string, string> | Record<string, string> | undefined)[]): Vars {
  return (name) => {
    for (const m of maps) {
      if (!m) continue;
      const v = m instanceof Map ? m.get(name) : Object.prototype.hasOwnProperty.call(m, name) ? m[name] : undefined;
      if (v !== undefined) return v;
    }
    return undefined;
  };
}

const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\r';

/**
 * Splits on unquoted whitespace, keeping quotes and escapes in the words (expand them with
 * `expandWord`). Whitespace inside an unquoted `${…}` does not split, so
 * `ENV A=${X:?need X set}` is one word. (BuildKit splits there first and then fails with
 * "missing '}'", so this only accepts what it refuses; a `${` that is never closed splits as
 * if braces were ordinary, and the expansion reports it.)
 */
export function splitWords(text: string, escape = '\\'): string[] {
  return splitWordsImpl(text, escape, true) ?? splitWordsImpl(text, escape, false)!;
}

function splitWordsImpl(text: string, escape: string, braces: boolean): string[] | undefined {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  // Open `${` of the current word (quotes inside them still count as quotes).
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      cur += c;
      if (c === escape && quote === '"' && i + 1 < text.length) cur += text[++i];
      else if (c === quote) quote = null;
      continue;
    }
    if (isSpace(c) && depth === 0) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    inWord = true;
    cur += c;
    if (c === escape && i + 1 < text.length) cur += text[++i];
    else if (c === '"' || c === "'") quote = c;
    else if (braces && c === '$' && text[i + 1] === '{') {
      cur += text[++i];
      depth++;
    } else if (c === '}' && depth > 0) depth--;
  }
  if (quote) throw new HtvendError('INPUT', `unterminated ${quote} quote in: ${text}`);
  if (depth > 0) return undefined;
  if (inWord) words.push(cur);
  return words;
}

interface LexState {
  s: string;
  i: number;
}

/** Expands variables and removes quoting/escapes from one word. */
export function expandWord(word: string, vars: Vars, escape = '\\'): string {
  const st: LexState = { s: word, i: 0 };
  return lexUntil(st, vars, escape, null);
}

/**
 * Expands the body of an unquoted-delimiter COPY/ADD heredoc as BuildKit does: `$` forms are
 * expanded and the escape char escapes the next character, but quotes are ordinary text
 * (`Hello '${name}'` → `Hello 'world'`).
 */
export function expandHeredocBody(text: string, vars: Vars, escape = '\\'): string {
  const st: LexState = { s: text, i: 0 };
  let out = '';
  while (st.i < st.s.length) {
    const c = st.s[st.i]!;
    if (c === escape) {
      if (st.i + 1 < st.s.length) out += st.s[st.i + 1];
      st.i += 2;
    } else if (c === '$') out += lexDollar(st, vars, escape);
    else {
      out += c;
      st.i++;
    }
  }
  return out;
}

/** `splitWords` then `expandWord` on each. */
export function expandWords(text: string, vars: Vars, escape = '\\'): string[] {
  return splitWords(text, escape).map((w) => expandWord(w, vars, escape));
}

/**
 * `raw`: keep the escape char with the character it escapes (BuildKit's rawEscapes, used for
 * the pattern and replacement of `${a#p}`, `${a%p}`, `${a/p/r}`, so `\*` stays a literal `*`).
 */
function lexUntil(st: LexState, vars: Vars, escape: string, stop: '}' | '/' | null, raw = false): string {
  let out = '';
  while (st.i < st.s.length) {
    const c = st.s[st.i]!;
    if (stop && c === stop) return out;
    if (c === escape) {
      if (raw) out += c;
      if (st.i + 1 < st.s.length) out += st.s[st.i + 1];
      st.i += 2;
    } else if (c === "'") {
      const end = st.s.indexOf("'", st.i + 1);
      if (end < 0) throw new HtvendError('INPUT', `unterminated ' quote in: ${st.s}`);
      out += st.s.slice(st.i + 1, end);
      st.i = end + 1;
    } else if (c === '"') {
      st.i++;
      while (st.i < st.s.length && st.s[st.i] !== '"') {
        const d = st.s[st.i]!;
        if (d === escape && st.i + 1 < st.s.length && ['"', '$', escape].includes(st.s[st.i + 1]!)) {
          out += st.s[st.i + 1];
          st.i += 2;
        } else if (d === '$') {
          out += lexDollar(st, vars, escape);
        } else {
          out += d;
          st.i++;
        }
      }
      if (st.i >= st.s.length) throw new HtvendError('INPUT', `unterminated " quote in: ${st.s}`);
      st.i++;
    } else if (c === '$') {
      out += lexDollar(st, vars, escape);
    } else {
      out += c;
      st.i++;
    }
  }
  if (stop) throw new HtvendError('INPUT', `missing '${stop}' in: ${st.s}`);
  return out;
}

/**
 * A pattern of `${a#p}` & co. as a regular expression source, as BuildKit's
 * convertShellPatternToRegex: `*` and `?` are wildcards, `\*`, `\?`, `\\` literals, `\}` and
 * `\/` the characters themselves; every other character, `[` included, is literal (no
 * bracket expressions); any other escape is an error.
 */
function globToRegex(glob: string, greedy: boolean): string {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += greedy ? '.*' : '.*?';
    else if (c === '?') re += '.';
    else if (c === '\\') {
      const n = glob[i + 1];
      if (n === '}' || n === '/') continue;
      if (n !== '*' && n !== '?' && n !== '\\') throw new HtvendError('INPUT', `invalid escape '\\${n ?? ''}' in the pattern ${JSON.stringify(glob)}`);
      re += '\\' + n;
      i++;
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return re;
}

/**
 * `${name#pat}` / `${name##pat}` (shortest / longest prefix removed), `${name%pat}` /
 * `${name%%pat}` (suffix), `${name/pat/repl}` / `${name//pat/repl}` (first / every match
 * replaced): BuildKit's shell lexer supports these on top of POSIX defaults.
 */
function lexPatternOp(st: LexState, vars: Vars, escape: string, name: string, op: '#' | '%' | '/'): string {
  st.i++;
  const twice = st.s[st.i] === op;
  if (twice) st.i++;
  const value = vars(name) ?? '';
  if (op === '/') {
    const pattern = lexUntil(st, vars, escape, '/', true);
    if (st.s[st.i] !== '/') throw new HtvendError('INPUT', `missing '/' in \${${name}/…} in: ${st.s}`);
    st.i++;
    const replacement = lexUntil(st, vars, escape, '}', true);
    st.i++;
    if (pattern === '') return value;
    return value.replace(new RegExp(globToRegex(pattern, true), twice ? 'gs' : 's'), () => replacement);
  }
  const pattern = lexUntil(st, vars, escape, '}', true);
  st.i++;
  const re = new RegExp(`^(?:${globToRegex(pattern, true)})$`, 's');
  const n = value.length;
  // Shortest match first unless doubled (greedy), like the shell.
  for (let k = 0; k <= n; k++) {
    const len = twice ? n - k : k;
    if (op === '#' ? re.test(value.slice(0, len)) : re.test(value.slice(n - len))) return op === '#' ? value.slice(len) : value.slice(0, n - len);
  }
  return value;
}

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

function lexDollar(st: LexState, vars: Vars, escape: string): string {
  st.i++; // '$'
  const c = st.s[st.i];
  if (c === undefined) return '$';
  if (c === '{') {
    st.i++;
    let name = '';
    while (st.i < st.s.length && NAME_CHAR.test(st.s[st.i]!)) name += st.s[st.i++];
    const next = st.s[st.i];
    // BuildKit's messages: the word ends inside `${…}`, or no name follows `${`.
    if (next === undefined) throw new HtvendError('INPUT', `missing '}' in: ${st.s}`);
    if (name === '') throw new HtvendError('INPUT', `bad substitution in: ${st.s}`);
    if (next === '}') {
      st.i++;
      return vars(name) ?? '';
    }
    if (next === '#' || next === '%' || next === '/') return lexPatternOp(st, vars, escape, name, next);
    let op = '';
    if (next === ':') {
      op = ':';
      st.i++;
    }
    const kind = st.s[st.i];
    if (kind !== '-' && kind !== '+' && kind !== '?') throw new HtvendError('INPUT', `unsupported modifier '${op}${kind ?? ''}' in \${${name}…} in: ${st.s}`);
    st.i++;
    const word = lexUntil(st, vars, escape, '}');
    st.i++; // '}'
    const v = vars(name);
    const set = op === ':' ? v !== undefined && v !== '' : v !== undefined;
    if (kind === '-') return set ? v! : word;
    if (kind === '+') return set ? word : '';
    // BuildKit's messages: unset and (with ':') empty are told apart when no message is given.
    if (!set) throw new HtvendError('INPUT', `${name}: ${word || (v === undefined ? 'is not allowed to be unset' : 'is not allowed to be empty')}`);
    return v!;
  }
  if (NAME_START.test(c)) {
    let name = '';
    while (st.i < st.s.length && NAME_CHAR.test(st.s[st.i]!)) name += st.s[st.i++];
    return vars(name) ?? '';
  }
  // `$1`, `$$`, `$ ` …: Docker keeps the dollar literally.
  return '$';
}
