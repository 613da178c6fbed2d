/**
 * The two halves of JSON that assets.json compatibility with the Go htvend depends on:
 *
 * - `quoteGo()`: a string exactly as Go's `encoding/json` writes it (HTML-safe escaping of
 *   `<` `>` `&`, `\u2028`/`\u2029` escaped, `\b` `\f` `\n` `\r` `\t` short forms since Go 1.22,
 *   other control characters as lowercase `\u00XX`). Go writes invalid UTF-8 *bytes* as the
 *   escape `\ufffd`; a JS string cannot hold those. Its only invalid form, a lone surrogate,
 *   comes from a `\udXXX` escape in a file, which Go decodes to the rune U+FFFD and then writes
 *   raw, so that is what we write too.
 * - `parseJson()`: a small strict JSON parser that reports `line:column` for every syntax error.
 *   `JSON.parse` is not used because V8 does not always say where a document is broken, and
 *   SPEC §5 asks for errors naming file, line and column.
 */

/** A syntax error at a 1-based line and column. */
export class JsonSyntaxError extends Error {
  constructor(
    readonly line: number,
    readonly column: number,
    detail: string,
  ) {
    super(`${line}:${column}: ${detail}`);
    this.name = 'JsonSyntaxError';
  }
}

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
/** An object as parsed: a Map keeps `__proto__` and insertion order safe; later duplicate keys win (as in Go). */
export type JsonObject = Map<string, JsonValue>;

const HEX = '0123456789abcdef';
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const SIMPLE_ESCAPES: Record<string, string | undefined> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
// Anything outside this class needs a closer look (cheap fast path for ordinary URLs).
const NEEDS_ESCAPE = /[\u0000-\u001f"\\<>&\u2028\u2029\ud800-\udfff]/;

/** Quotes a string the way Go's `json.Marshal` does (with its default HTML escaping). */
export function quoteGo(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += s[i]! + s[i + 1]!;
        i++;
      } else {
        out += '\ufffd'; // lone high surrogate: Go holds U+FFFD here and writes it raw
      }
      continue;
    }
    if (c >= 0xdc00 && c <= 0xdfff) {
      out += '\ufffd';
      continue;
    }
    switch (c) {
      case 0x22:
        out += '\\"';
        continue;
      case 0x5c:
        out += '\\\\';
        continue;
      case 0x08:
        out += '\\b';
        continue;
      case 0x0c:
        out += '\\f';
        continue;
      case 0x0a:
        out += '\\n';
        continue;
      case 0x0d:
        out += '\\r';
        continue;
      case 0x09:
        out += '\\t';
        continue;
    }
    if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26) {
      out += '\\u00' + HEX[c >> 4]! + HEX[c & 0xf]!;
    } else if (c === 0x2028 || c === 0x2029) {
      out += c === 0x2028 ? '\\u2028' : '\\u2029';
    } else {
      out += s[i]!;
    }
  }
  return out + '"';
}

/** Byte-order comparison of the UTF-8 encodings (Go sorts map keys this way). */
export function compareUtf8(a: string, b: string): number {
  // For strings without astral characters UTF-16 order equals UTF-8 byte order, except
  // that U+E000..U+FFFF sort after surrogate pairs in UTF-8; fall back to Buffer compare then.
  if (/[\ud800-\udfff]/.test(a) || /[\ud800-\udfff]/.test(b)) return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Parses one JSON document (lone surrogate escapes become U+FFFD, as in Go). */
export function parseJson(text: string): JsonValue {
  let pos = 0;
  const len = text.length;

  const fail = (detail: string, at = pos): never => {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < at && i < len; i++) {
      if (text.charCodeAt(i) === 0x0a) {
        line++;
        lineStart = i + 1;
      }
    }
    throw new JsonSyntaxError(line, at - lineStart + 1, detail);
  };
  const describe = (): string => (pos >= len ? 'unexpected end of input' : `unexpected character ${JSON.stringify(text[pos])}`);

  const ws = (): void => {
    while (pos < len) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
      else break;
    }
  };

  const str = (): string => {
    // pos is at the opening quote
    pos++;
    let out = '';
    let runStart = pos;
    let sawUnicodeEscape = false;
    for (;;) {
      if (pos >= len) fail('unterminated string');
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        out += text.slice(runStart, pos);
        pos++;
        // Go decodes a `\udXXX` escape that is not part of a pair to U+FFFD; do the same so
        // keys compare, sort and re-encode as they do in Go.
        return sawUnicodeEscape ? out.replace(LONE_SURROGATE, '\ufffd') : out;
      }
      if (c < 0x20) fail('control character in string (must be escaped)');
      if (c !== 0x5c) {
        pos++;
        continue;
      }
      out += text.slice(runStart, pos);
      const e = text[pos + 1];
      const simple = e === undefined ? undefined : SIMPLE_ESCAPES[e];
      if (simple !== undefined) {
        out += simple;
        pos += 2;
      } else if (e === 'u') {
        const hex = text.slice(pos + 2, pos + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('invalid \\u escape in string');
        out += String.fromCharCode(parseInt(hex, 16));
        sawUnicodeEscape = true;
        pos += 6;
      } else {
        fail('invalid escape in string', pos + 1);
      }
      runStart = pos;
    }
  };

  const num = (): number => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(pos, pos + 400));
    if (!m) fail(describe());
    pos += m![0].length;
    return Number(m![0]);
  };

  const value = (depth: number): JsonValue => {
    if (depth > 1000) fail('nesting too deep');
    ws();
    const c = text[pos];
    if (c === '{') {
      pos++;
      const obj: JsonObject = new Map();
      ws();
      if (text[pos] === '}') {
        pos++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[pos] !== '"') fail(`expected a string key, ${describe()}`);
        const k = str();
        ws();
        if (text[pos] !== ':') fail(`expected ':' after key, ${describe()}`);
        pos++;
        obj.set(k, value(depth + 1));
        ws();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === '}') {
          pos++;
          return obj;
        }
        fail(`expected ',' or '}', ${describe()}`);
      }
    }
    if (c === '[') {
      pos++;
      const arr: JsonValue[] = [];
      ws();
      if (text[pos] === ']') {
        pos++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === ']') {
          pos++;
          return arr;
        }
        fail(`expected ',' or ']', ${describe()}`);
      }
    }
    if (c === '"') return str();
    for (const [word, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return v;
      }
    }
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return num();
    return fail(describe());
  };

  const v = value(0);
  ws();
  if (pos < len) fail(`unexpected ${JSON.stringify(text[pos])} after the end of the document`);
  return v;
}
