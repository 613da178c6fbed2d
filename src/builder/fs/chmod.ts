/**
 * `COPY --chmod` modes: octal (`755`) or chmod(1) symbolic notation (`+x`, `u=rwX,go=rX`,
 * `g=u`; Dockerfile 1.14), with BuildKit's semantics (tonistiigi/dchapes-mode parsed with
 * umask 0: a clause without "who" applies to all). A symbolic mode depends on each file's own
 * mode and kind (`X`, `g=u`), so it is a function; an octal one is just the number.
 */

/** New permission bits from the old ones (`X` looks at `isDir` and the old execute bits). */
export type ChmodFn = (mode: number, isDir: boolean) => number;

export type Chmod = number | ChmodFn;

export function applyChmod(chmod: Chmod, mode: number, isDir: boolean): number {
  return typeof chmod === 'number' ? chmod : chmod(mode & 0o7777, isDir);
}

/**
 * One step of a symbolic mode, in the model of BSD setmode(3), which BuildKit's parser follows:
 * set or clear a bit mask, set a mask only if the file is a directory or was executable (`X`),
 * or copy one class's current rwx bits onto the classes named (`g=u`, `o-g`).
 */
type Step =
  | { op: '+' | '-' | 'X'; bits: number }
  | { op: 'copy'; from: 'u' | 'g' | 'o'; to: number; clear: boolean; set: boolean };

const SUID = 0o4000;
const SGID = 0o2000;
const STICKY = 0o1000;
/** Every bit but the sticky one: what `a` names. */
const STANDARD = 0o6777;
const WHO = { a: STANDARD, u: SUID | 0o700, g: SGID | 0o070, o: 0o007 } as const;
const SHIFT = { u: 6, g: 3, o: 0 } as const;
const TRIPLETS = [0o700, 0o070, 0o007];

/**
 * Parses a symbolic mode: comma-separated clauses `[ugoa]*([-+=][rwxXstugo]*)+`, as
 * BuildKit's (setmode-derived) parser reads them with umask 0: no "who" means all classes;
 * `s` counts only with u or g (or no who), `t` only with u, g, a or no who; `X` is tested
 * against the file's mode before the whole --chmod, not the one the earlier clauses made.
 * Returns undefined when `s` is not one (the caller reports it).
 */
export function parseSymbolicMode(s: string): ChmodFn | undefined {
  const steps: Step[] = [];
  const add = (op: '+' | '-' | '=' | 'X', who: number, arg: number) => {
    if (op === '=') {
      steps.push({ op: '-', bits: who || STANDARD });
      op = '+';
    }
    steps.push({ op, bits: who ? who & arg : arg });
  };
  let i = 0;
  let equalDone = false;
  for (;;) {
    let who = 0;
    for (; i < s.length && s[i]! in WHO; i++) who |= WHO[s[i] as keyof typeof WHO];
    for (;;) {
      const op = s[i++];
      if (op !== '+' && op !== '-' && op !== '=') return undefined;
      if (op === '=') equalDone = false;
      who &= ~STICKY;
      let perm = 0;
      let permX = 0;
      const special = who === 0 || (who & ~0o007) !== 0;
      for (; ; i++) {
        const c = s[i];
        if (c === 'r') perm |= 0o444;
        else if (c === 'w') perm |= 0o222;
        else if (c === 'x') perm |= 0o111;
        else if (c === 'X') {
          if (op === '-') perm |= 0o111;
          else permX = 0o111;
        } else if (c === 's') {
          if (special) perm |= SUID | SGID;
        } else if (c === 't') {
          // a quirk kept for fidelity: `t` narrows the clause's "who" to the sticky bit
          if (special) {
            who |= STICKY;
            perm |= STICKY;
          }
        } else if (c === 'u' || c === 'g' || c === 'o') {
          if (perm) add(op, who, perm);
          perm = 0;
          if (op === '=') equalDone = true;
          if (permX) add('X', who, permX);
          permX = 0;
          const to = who ? (who & 0o400 ? 0o700 : 0) | (who & 0o040 ? 0o070 : 0) | (who & 0o004 ? 0o007 : 0) : 0o777;
          steps.push({ op: 'copy', from: c, to, clear: op !== '+', set: op !== '-' });
        } else {
          if (perm || (op === '=' && !equalDone)) {
            if (op === '=') equalDone = true;
            add(op, who, perm);
          }
          if (permX) add('X', who, permX);
          break;
        }
      }
      if (i >= s.length) return apply(steps);
      if (s[i] === ',') break;
    }
    i++;
  }
}

function apply(steps: readonly Step[]): ChmodFn {
  return (mode, isDir) => {
    const before = mode & 0o7777;
    let cur = before;
    for (const st of steps) {
      if (st.op !== 'copy') {
        if (st.op === '+' || (st.op === 'X' && (isDir || (before & 0o111) !== 0))) cur |= st.bits;
        else if (st.op === '-') cur &= ~st.bits;
      } else {
        const value = (cur >> SHIFT[st.from]) & 7;
        for (const t of TRIPLETS) {
          if (!(st.to & t)) continue;
          const spread = value * (t / 7);
          if (st.clear) cur &= ~(st.set ? t : spread);
          if (st.set) cur |= spread;
        }
      }
    }
    return cur & 0o7777;
  };
}
