/**
 * assets.json codec (SPEC §2), byte-compatible with the Go htvend, which writes the file with
 * `json.MarshalIndent(map[string]BlobInfo, "", "  ")` where
 * `BlobInfo struct { Sha256 string; Headers map[string]string }`:
 * keys sorted by UTF-8 byte order (also inside Headers), two-space indent, Go's HTML-safe
 * string escaping, `{}` for an empty map, `null` for a nil one, no trailing newline.
 * Decoding follows `json.Unmarshal` where it matters for round trips: unknown fields are
 * ignored, field names match case-insensitively, later duplicate keys win, invalid UTF-8
 * becomes U+FFFD. Unlike Go, a missing or malformed Sha256 is an error naming the key.
 */
import { HtvendError } from '../util/errors.js';
import { isDigest, type Digest } from '../util/digest.js';
import type { AssetEntry } from './types.js';
import { JsonSyntaxError, compareUtf8, parseJson, quoteGo, type JsonValue } from './gojson.js';

/** Entries whose Headers were `null` in the file they came from, so they are written back as `null`. */
const nullHeaders = new WeakSet<AssetEntry>();

/** The entries of one assets.json, keyed by asset key. */
export type AssetMap = Map<string, AssetEntry>;

function isObject(v: JsonValue | undefined): v is Map<string, JsonValue> {
  return v instanceof Map;
}

/** Go's field matching: exact name first, else the first case-insensitive match. */
function field(obj: Map<string, JsonValue>, name: string): JsonValue | undefined {
  if (obj.has(name)) return obj.get(name);
  const lower = name.toLowerCase();
  let found: JsonValue | undefined;
  for (const [k, v] of obj) if (k.toLowerCase() === lower) found = v; // last one wins, as Go assigns in order
  return found;
}

/**
 * Parses assets.json text. `file` is only used in messages. Throws INPUT errors naming
 * `file:line:column` for syntax errors and the key for a bad entry.
 */
export function decodeAssets(content: string | Uint8Array, file: string): AssetMap {
  // TextDecoder (non-fatal) maps invalid UTF-8 to U+FFFD, as Go's decoder does.
  const text = typeof content === 'string' ? content : new TextDecoder('utf-8', { ignoreBOM: true }).decode(content);
  // Go's decoder rejects a byte order mark too; say what it is, the character is invisible.
  if (text.startsWith('\uFEFF')) {
    throw new HtvendError('INPUT', `${file}:1:1: the file starts with a UTF-8 byte order mark (BOM, bytes EF BB BF), which JSON does not allow`, {
      hint: `save it without the BOM, e.g. sed -i '1s/^\\xEF\\xBB\\xBF//' ${file}; it was not modified`,
    });
  }
  let root: JsonValue;
  try {
    root = parseJson(text);
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw new HtvendError('INPUT', `${file}:${e.message}`, { hint: 'fix or delete the file; it was not modified' });
    throw e;
  }
  const out: AssetMap = new Map();
  if (root === null) return out; // Go unmarshals `null` into an empty map
  if (!isObject(root)) throw new HtvendError('INPUT', `${file}: expected a JSON object mapping URLs to {"Sha256": …, "Headers": …}`);
  for (const [key, raw] of root) {
    const where = `${file}: entry ${JSON.stringify(key)}`;
    if (!isObject(raw)) throw new HtvendError('INPUT', `${where}: expected an object with "Sha256" and "Headers"`);
    const sha = field(raw, 'Sha256');
    if (typeof sha !== 'string' || !isDigest(sha)) {
      throw new HtvendError('INPUT', `${where}: invalid Sha256 ${JSON.stringify(sha ?? null)} (want 64 lowercase hex characters)`);
    }
    const rawHeaders = field(raw, 'Headers');
    const headers: Record<string, string> = {};
    if (rawHeaders !== undefined && rawHeaders !== null) {
      if (!isObject(rawHeaders)) throw new HtvendError('INPUT', `${where}: "Headers" must be an object of strings`);
      for (const [h, v] of rawHeaders) {
        if (typeof v !== 'string') throw new HtvendError('INPUT', `${where}: header ${JSON.stringify(h)} must be a string`);
        // defineProperty: a header literally named __proto__ must stay data, not a prototype.
        Object.defineProperty(headers, h, { value: v, enumerable: true, writable: true, configurable: true });
      }
    }
    const entry: AssetEntry = { Sha256: sha as Digest, Headers: headers };
    if (rawHeaders === undefined || rawHeaders === null) nullHeaders.add(entry);
    out.set(key, entry);
  }
  return out;
}

function sortedKeys(keys: Iterable<string>): string[] {
  return [...keys].sort(compareUtf8);
}

/** Serialises entries exactly as Go's `json.MarshalIndent(m, "", "  ")` would. */
export function encodeAssets(entries: ReadonlyMap<string, AssetEntry>): string {
  if (entries.size === 0) return '{}';
  const parts: string[] = [];
  for (const key of sortedKeys(entries.keys())) {
    const e = entries.get(key)!;
    let headers: string;
    if (nullHeaders.has(e)) {
      headers = 'null';
    } else {
      const names = sortedKeys(Object.keys(e.Headers));
      headers = names.length === 0 ? '{}' : `{\n${names.map((n) => `      ${quoteGo(n)}: ${quoteGo(e.Headers[n]!)}`).join(',\n')}\n    }`;
    }
    parts.push(`  ${quoteGo(key)}: {\n    "Sha256": ${quoteGo(e.Sha256)},\n    "Headers": ${headers}\n  }`);
  }
  return `{\n${parts.join(',\n')}\n}`;
}

/** True if two entries would serialise identically. */
export function sameEntry(a: AssetEntry, b: AssetEntry): boolean {
  if (a.Sha256 !== b.Sha256 || nullHeaders.has(a) !== nullHeaders.has(b)) return false;
  const ka = Object.keys(a.Headers);
  if (ka.length !== Object.keys(b.Headers).length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b.Headers, k) && a.Headers[k] === b.Headers[k]);
}
