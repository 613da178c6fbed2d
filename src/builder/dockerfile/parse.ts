/**
 * Dockerfile text → typed instructions (see types.ts), using dockerfile-ast for the line
 * structure (instructions, continuation lines, comments, flags, the escape directive) and our
 * lexer for words. Validates every instruction's form and flags; errors cite `file:line`.
 */
import { DockerfileParser, type Instruction as AstInstruction, type Flag } from 'dockerfile-ast';
import { HtvendError } from '../../util/errors.js';
import { expandWord, splitWords } from './lexer.js';
import type { ArgInstr, CommandForm, FromInstr, Heredoc, Instruction, Loc, ParsedDockerfile, RawFlag } from './types.js';

const FLAGS: Record<string, Set<string>> = {
  FROM: new Set(['platform']),
  RUN: new Set(['mount', 'network', 'security']),
  COPY: new Set(['from', 'chown', 'chmod', 'link', 'parents', 'exclude']),
  ADD: new Set(['chown', 'chmod', 'link', 'checksum', 'keep-git-dir', 'exclude', 'unpack']),
  HEALTHCHECK: new Set(['interval', 'timeout', 'start-period', 'start-interval', 'retries']),
};
const REPEATABLE = new Set(['mount', 'exclude']);

function fail(loc: Loc, msg: string, hint?: string): never {
  throw new HtvendError('INPUT', `${loc.file}:${loc.line}: ${msg}`, { hint });
}

/** Removes escaped newlines (line continuations) and comment lines inside them, like Docker. */
function joinContinuations(raw: string, escape: string): string {
  const lines = raw.split('\n');
  let out = '';
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.replace(/\r$/, '');
    if (i > 0 && /^\s*#/.test(line)) continue;
    if (i > 0 && /^\s*$/.test(line)) continue;
    const m = line.match(new RegExp(`${escape === '\\' ? '\\\\' : '`'}\\s*$`));
    if (m && i < lines.length - 1) line = line.slice(0, m.index);
    else if (i < lines.length - 1) line += '\n';
    out += line;
  }
  return out;
}

/** A heredoc word as BuildKit's parser sees it: optional fd digits, `<<`, optional `-`, a delimiter word. */
const HEREDOC_WORD = /^(\d*)<<(-?)([^<].*)$/s;

/**
 * The heredoc markers of an instruction's logical line (continuations joined), as BuildKit
 * finds them: whole words (quotes kept) of the form `[n]<<[-]WORD`; a quoted delimiter (any
 * quote in it) disables expansion. `cat<<EOF` or `"<<EOF"` are not heredocs, as in BuildKit.
 */
function heredocMarkers(line: string, escape: string): { name: string; strip: boolean; expand: boolean }[] {
  let words: string[];
  try {
    words = splitWords(line, escape);
  } catch {
    return []; // an unterminated quote is reported by the instruction itself
  }
  const out: { name: string; strip: boolean; expand: boolean }[] = [];
  for (const w of words) {
    const m = HEREDOC_WORD.exec(w);
    if (!m) continue;
    const rest = m[3]!;
    const name = expandWord(rest, () => undefined, escape);
    if (name === '') continue;
    out.push({ name, strip: m[2] === '-', expand: !/["']/.test(rest) });
  }
  return out;
}

/**
 * Where an instruction with heredocs really ends. dockerfile-ast looks for markers on the
 * first physical line only and not in `3<<EOF` forms, so for RUN/COPY/ADD (and ONBUILD of
 * them) we read the raw lines ourselves: the logical line (escaped newlines joined, comment
 * and blank lines inside it skipped, as Docker does), then one body per marker, in order,
 * each up to the line equal to its delimiter (leading tabs stripped first for `<<-`).
 * Returns undefined when the logical line has no heredoc.
 */
function scanHeredocs(lines: string[], ast: AstInstruction, escape: string, loc: Loc): { args: string; heredocs: Heredoc[]; lastLine: number } | undefined {
  const start = ast.getArgumentsRange()?.start;
  if (!start) return undefined;
  const esc = new RegExp(`${escape === '\\' ? '\\\\' : '`'}\\s*$`);
  let logical = '';
  let i = start.line;
  let text = lines[i]!.replace(/\r$/, '').slice(start.character);
  for (;;) {
    const m = esc.exec(text);
    if (!m || i + 1 >= lines.length) {
      logical += text;
      break;
    }
    logical += text.slice(0, m.index);
    i++;
    while (i < lines.length - 1 && /^\s*(#.*)?$/.test(lines[i]!)) i++;
    text = lines[i]!.replace(/\r$/, '');
  }
  const markers = heredocMarkers(logical, escape);
  if (markers.length === 0) return undefined;
  const heredocs: Heredoc[] = [];
  for (const mk of markers) {
    const body: string[] = [];
    let closed = false;
    while (i + 1 < lines.length) {
      let l = lines[++i]!.replace(/\r$/, '');
      if (mk.strip) l = l.replace(/^\t+/, '');
      if (l === mk.name) {
        closed = true;
        break;
      }
      body.push(l);
    }
    if (!closed) fail(loc, `heredoc <<${mk.name} is not terminated`);
    heredocs.push({ name: mk.name, content: body.length ? body.join('\n') + '\n' : '', expand: mk.expand });
  }
  return { args: logical.trim(), heredocs, lastLine: i };
}

function parseJsonArray(text: string): string[] | undefined {
  const t = text.trim();
  if (!t.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(t);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // Docker falls back to shell form when the JSON does not parse.
  }
  return undefined;
}

function commandForm(text: string): CommandForm {
  const argv = parseJsonArray(text);
  return argv ? { form: 'exec', argv } : { form: 'shell', cmdline: text.trim() };
}

/** Parses `--x=y` style durations (`30s`, `1m30s`, `500ms`) into nanoseconds. */
function durationNs(v: string, loc: Loc, flag: string): number {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let consumed = 0;
  const unit: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  while ((m = re.exec(v))) {
    total += Number(m[1]) * unit[m[2]!]!;
    consumed = re.lastIndex;
  }
  // Go's time.ParseDuration takes a bare "0" too.
  if (v === '0') return 0;
  if (consumed !== v.length || v === '') fail(loc, `--${flag}: bad duration ${JSON.stringify(v)}`);
  // BuildKit's parseOptInterval: 0 means "the default", anything else is at least 1ms.
  if (total > 0 && total < 1e6) fail(loc, `--${flag}: ${v} cannot be less than 1ms`);
  return Math.round(total);
}

/** Splits `KEY=value KEY2="v 2"` (or legacy `KEY value`) into raw pairs. */
function keyValues(text: string, loc: Loc, kw: string, escape: string, allowLegacy: boolean): [string, string][] {
  const words = splitWords(text, escape);
  if (words.length === 0) fail(loc, `${kw} requires at least one argument`);
  if (allowLegacy && !words[0]!.includes('=')) {
    // `ENV KEY value with spaces`: the rest of the line is the value.
    const key = words[0]!;
    const value = text.trim().slice(key.length).trim();
    if (value === '') fail(loc, `${kw} ${key} needs a value (${kw} KEY=value or ${kw} KEY value)`);
    return [[key, value]];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) fail(loc, `${kw}: expected KEY=value, got ${JSON.stringify(w)}`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

function flagsOf(ast: AstInstruction, kw: string, loc: Loc): RawFlag[] {
  const getFlags = (ast as unknown as { getFlags?: () => Flag[] }).getFlags;
  const flags = getFlags ? getFlags.call(ast).map((f) => ({ name: f.getName(), value: f.getValue() })) : [];
  const allowed = FLAGS[kw] ?? new Set<string>();
  const seen = new Set<string>();
  for (const f of flags) {
    if (!allowed.has(f.name)) fail(loc, `unknown flag --${f.name} for ${kw}`, allowed.size ? `${kw} accepts ${[...allowed].map((a) => '--' + a).join(', ')}` : `${kw} takes no flags`);
    if (seen.has(f.name) && !REPEATABLE.has(f.name)) fail(loc, `flag --${f.name} given twice`);
    seen.add(f.name);
  }
  return flags;
}

function one(flags: RawFlag[], name: string, loc: Loc): string | undefined {
  const f = flags.find((x) => x.name === name);
  if (!f) return undefined;
  if (f.value === null || f.value === '') fail(loc, `--${name} needs a value`);
  return f.value;
}

function bool(flags: RawFlag[], name: string, loc: Loc): boolean {
  const f = flags.find((x) => x.name === name);
  if (!f) return false;
  if (f.value === null || f.value === 'true') return true;
  if (f.value === 'false') return false;
  return fail(loc, `--${name}: expected true or false, got ${JSON.stringify(f.value)}`);
}

/** An instruction's heredocs as found by `scanHeredocs`, with its raw text (bodies included). */
interface HeredocScan {
  args: string;
  heredocs: Heredoc[];
  raw: string;
}

/** Converts one dockerfile-ast instruction (also used for ONBUILD triggers). */
export function convertInstruction(ast: AstInstruction, file: string, escape: string, lineOverride?: number, hd?: HeredocScan): Instruction {
  const kw = ast.getKeyword().toUpperCase();
  const loc: Loc = { file, line: lineOverride ?? ast.getRange().start.line + 1 };
  const text = hd ? hd.raw.trim() : ast.getTextContent().replace(/\s*\\\r?\n\s*/g, ' ').trim();
  const rawArgs = ast.getRawArgumentsContent() ?? '';
  const flags = flagsOf(ast, kw, loc);
  if (hd && kw !== 'RUN' && kw !== 'COPY' && kw !== 'ADD' && kw !== 'ONBUILD') fail(loc, `${kw} does not take heredocs`);
  const args = hd ? hd.args : joinContinuations(rawArgs, escape).trim();
  const base = { loc, text };
  if (args === '' && kw !== 'HEALTHCHECK') fail(loc, `${kw} requires arguments`);
  switch (kw) {
    case 'FROM': {
      const w = splitWords(args, escape);
      if (w.length !== 1 && !(w.length === 3 && w[1]!.toUpperCase() === 'AS')) fail(loc, 'FROM takes an image and optionally AS <name>: FROM image [AS name]');
      const stageName = w[2]?.toLowerCase();
      if (stageName !== undefined && !/^[a-z][a-z0-9._-]*$/.test(stageName)) fail(loc, `invalid stage name ${JSON.stringify(w[2])}`);
      const platform = one(flags, 'platform', loc);
      return { ...base, kind: 'FROM', image: w[0]!, ...(stageName ? { stageName } : {}), ...(platform ? { platform } : {}) };
    }
    case 'ARG': {
      const words = splitWords(args, escape);
      return {
        ...base,
        kind: 'ARG',
        args: words.map((w) => {
          const eq = w.indexOf('=');
          const name = eq < 0 ? w : w.slice(0, eq);
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) fail(loc, `ARG: invalid name ${JSON.stringify(name)}`);
          return eq < 0 ? { name } : { name, default: w.slice(eq + 1) };
        }),
      };
    }
    case 'RUN': {
      const network = one(flags, 'network', loc);
      if (network !== undefined && !['default', 'host', 'none'].includes(network)) fail(loc, `RUN --network must be default, host or none, got ${JSON.stringify(network)}`);
      const security = one(flags, 'security', loc);
      if (security !== undefined && !['sandbox', 'insecure'].includes(security)) fail(loc, `RUN --security must be sandbox or insecure`);
      const mounts = flags.filter((f) => f.name === 'mount').map((f) => f.value ?? fail(loc, '--mount needs a value'));
      return { ...base, kind: 'RUN', cmd: commandForm(args), mounts, ...(network ? { network } : {}), ...(security ? { security } : {}), heredocs: hd?.heredocs ?? [] };
    }
    case 'COPY':
    case 'ADD': {
      const json = parseJsonArray(args);
      const words = json ?? splitWords(args, escape);
      if (words.length < 2) fail(loc, `${kw} requires at least one source and a destination`);
      const from = one(flags, 'from', loc);
      const chown = one(flags, 'chown', loc);
      const chmod = one(flags, 'chmod', loc);
      const checksum = one(flags, 'checksum', loc);
      const keepGitDir = one(flags, 'keep-git-dir', loc);
      return {
        ...base,
        kind: kw,
        sources: words.slice(0, -1),
        dest: words[words.length - 1]!,
        json: json !== undefined,
        ...(from ? { from } : {}),
        ...(chown ? { chown } : {}),
        ...(chmod ? { chmod } : {}),
        ...(checksum ? { checksum } : {}),
        ...(keepGitDir ? { keepGitDir } : {}),
        link: bool(flags, 'link', loc),
        ...(flags.some((f) => f.name === 'unpack') ? { unpack: bool(flags, 'unpack', loc) } : {}),
        parents: bool(flags, 'parents', loc),
        exclude: flags.filter((f) => f.name === 'exclude').map((f) => f.value ?? ''),
        heredocs: hd?.heredocs ?? [],
      };
    }
    case 'ENV':
      return { ...base, kind: 'ENV', pairs: keyValues(args, loc, 'ENV', escape, true) };
    case 'LABEL':
      // The legacy `LABEL key value` form too (BuildKit accepts it with a LegacyKeyValueFormat warning).
      return { ...base, kind: 'LABEL', pairs: keyValues(args, loc, 'LABEL', escape, true) };
    case 'WORKDIR':
      return { ...base, kind: 'WORKDIR', path: args };
    case 'USER': {
      if (splitWords(args, escape).length !== 1) fail(loc, 'USER takes exactly one argument: USER user[:group]');
      return { ...base, kind: 'USER', user: args };
    }
    case 'EXPOSE':
      return { ...base, kind: 'EXPOSE', ports: splitWords(args, escape) };
    case 'CMD':
    case 'ENTRYPOINT':
      return { ...base, kind: kw, cmd: commandForm(args) };
    case 'VOLUME': {
      const json = parseJsonArray(args);
      return { ...base, kind: 'VOLUME', paths: json ?? splitWords(args, escape), json: json !== undefined };
    }
    case 'SHELL': {
      const argv = parseJsonArray(args);
      if (!argv || argv.length === 0) fail(loc, 'SHELL requires the arguments to be in JSON form: SHELL ["executable", "param"]');
      return { ...base, kind: 'SHELL', argv };
    }
    case 'STOPSIGNAL': {
      if (splitWords(args, escape).length !== 1) fail(loc, 'STOPSIGNAL takes exactly one signal');
      return { ...base, kind: 'STOPSIGNAL', signal: args };
    }
    case 'HEALTHCHECK': {
      const first = args.split(/\s+/)[0]?.toUpperCase();
      if (first === 'NONE') {
        if (flags.length || args.trim().toUpperCase() !== 'NONE') fail(loc, 'HEALTHCHECK NONE takes no other arguments');
        return { ...base, kind: 'HEALTHCHECK', check: null };
      }
      if (first !== 'CMD') fail(loc, 'HEALTHCHECK must be NONE or CMD <command>');
      const cmd = commandForm(args.trim().slice(3));
      if (cmd.form === 'exec' ? cmd.argv.length === 0 : cmd.cmdline === '') fail(loc, 'missing command after HEALTHCHECK CMD');
      const d = (n: string) => {
        const v = one(flags, n, loc);
        return v === undefined ? undefined : durationNs(v, loc, n);
      };
      const retriesRaw = one(flags, 'retries', loc);
      const retries = retriesRaw === undefined ? undefined : Number(retriesRaw);
      if (retries !== undefined && !(Number.isInteger(retries) && retries >= 0)) fail(loc, `--retries must be a non-negative integer`);
      const check = { cmd, interval: d('interval'), timeout: d('timeout'), startPeriod: d('start-period'), startInterval: d('start-interval'), retries };
      // Zero values are left out, as BuildKit's omitempty config fields (0 = the default).
      for (const k of Object.keys(check) as (keyof typeof check)[]) if (check[k] === undefined || check[k] === 0) delete check[k];
      return { ...base, kind: 'HEALTHCHECK', check };
    }
    case 'ONBUILD': {
      const trig = args.split(/\s+/)[0]!.toUpperCase();
      if (trig === 'ONBUILD' || trig === 'FROM' || trig === 'MAINTAINER') fail(loc, `ONBUILD ${trig} is not allowed`);
      if (!(trig in KNOWN)) fail(loc, `ONBUILD: unknown instruction ${trig}`);
      // A heredoc trigger keeps its bodies: it is parsed again when a build starts FROM this image.
      return { ...base, kind: 'ONBUILD', trigger: hd ? hd.raw.trim().replace(/^ONBUILD\s+/i, '') : args };
    }
    case 'MAINTAINER':
      return { ...base, kind: 'MAINTAINER', name: args };
    default:
      return fail(loc, `unknown instruction: ${ast.getInstruction()}`, `known instructions: ${Object.keys(KNOWN).join(', ')}`);
  }
}

const KNOWN: Record<string, true> = Object.fromEntries(
  ['ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL', 'MAINTAINER', 'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR'].map((k) => [k, true]),
);

/**
 * The instructions of a Dockerfile text, heredoc bodies attached: instructions dockerfile-ast
 * saw inside a body it did not recognise (e.g. after `3<<IN`) are skipped.
 */
function instructionsOf(content: string, file: string, lineOverride?: number): { escape: string; instructions: Instruction[] } {
  const ast = DockerfileParser.parse(content);
  const escape = ast.getEscapeCharacter();
  const lines = content.split('\n');
  const out: Instruction[] = [];
  let consumed = -1;
  for (const a of ast.getInstructions()) {
    const first = a.getRange().start.line;
    if (first <= consumed) continue;
    const kw = a.getKeyword().toUpperCase();
    const loc: Loc = { file, line: lineOverride ?? first + 1 };
    let hd: HeredocScan | undefined;
    if (['RUN', 'COPY', 'ADD', 'ONBUILD'].includes(kw)) {
      const scan = scanHeredocs(lines, a, escape, loc);
      if (scan) {
        consumed = scan.lastLine;
        hd = { args: scan.args, heredocs: scan.heredocs, raw: lines.slice(first, scan.lastLine + 1).join('\n') };
      }
    }
    out.push(convertInstruction(a, file, escape, lineOverride, hd));
  }
  return { escape, instructions: out };
}

/**
 * BuildKit's parser directives (parser/directives.go): `# key=value` lines at the very top,
 * key case-insensitive (`syntax`, `escape`, `check`); the first line that is not one (an
 * unknown key, any other comment, a blank line, an instruction) ends them. A key given twice
 * and an escape other than `\` or `` ` `` are errors. `syntax` and `check` are accepted and
 * have no effect here (docs/builder.md). Returns the text for dockerfile-ast with every
 * `escape` line BuildKit does not honour blanked to `#`, so both agree on the escape char.
 */
function directives(content: string, file: string): string {
  const lines = content.split('\n');
  const seen = new Set<string>();
  let i = 0;
  for (; i < lines.length; i++) {
    const l = lines[i]!.replace(/\r$/, '');
    const m = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/.exec(l);
    const key = m?.[1]!.toLowerCase();
    if (!m || !['syntax', 'escape', 'check'].includes(key!)) break;
    if (seen.has(key!)) throw new HtvendError('INPUT', `${file}:${i + 1}: only one ${key} parser directive can be used`);
    seen.add(key!);
    if (key === 'escape' && m[2] !== '`' && m[2] !== '\\') throw new HtvendError('INPUT', `${file}:${i + 1}: invalid escape token '${m[2]}' does not match \` or \\`);
  }
  let changed = false;
  // Only the leading comment lines: dockerfile-ast looks no further (heredoc bodies stay as written).
  for (let j = i; j < lines.length && lines[j]!.startsWith('#'); j++) {
    if (/^#\s*escape\s*=/i.test(lines[j]!)) {
      lines[j] = '#';
      changed = true;
    }
  }
  return changed ? lines.join('\n') : content;
}

/** Parses a whole Dockerfile. `file` is the name used in error messages (e.g. `Dockerfile`). */
export function parseDockerfile(content: string, file = 'Dockerfile'): ParsedDockerfile {
  const { escape, instructions } = instructionsOf(directives(content, file), file);
  const globalArgs: ArgInstr[] = [];
  const stages: ParsedDockerfile['stages'] = [];
  for (const ins of instructions) {
    if (ins.kind === 'FROM') {
      stages.push({ from: ins as FromInstr, instructions: [] });
    } else if (stages.length === 0) {
      if (ins.kind !== 'ARG') throw new HtvendError('INPUT', `${file}:${ins.loc.line}: ${ins.kind} before the first FROM (only ARG may come before FROM)`);
      globalArgs.push(ins);
    } else {
      stages[stages.length - 1]!.instructions.push(ins);
    }
  }
  if (stages.length === 0) throw new HtvendError('INPUT', `${file}: no FROM instruction`, { hint: 'a Dockerfile must start with FROM (after optional ARGs)' });
  return { file, escape, globalArgs, stages };
}

/** Parses an ONBUILD trigger text as an instruction (line = the line of the FROM that triggers it). */
export function parseTrigger(trigger: string, file: string, line: number): Instruction {
  const [ins] = instructionsOf(trigger, file, line).instructions;
  if (!ins) throw new HtvendError('INPUT', `${file}:${line}: empty ONBUILD trigger`);
  return ins;
}
