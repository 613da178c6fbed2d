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

const CLASS_SHIFT = { u: 6, g: 3, o: 0 } as const;

/**
 * Parses a symbolic mode: comma-separated clauses `[ugoa]*([-+=]([rwxXst]*|[ugo]))+`.
 * Returns undefined when `s` is not one (the caller reports it).
 */
export function parseSymbolicMode(s: string): ChmodFn | undefined {
  const clauses = s.split(',');
  const steps: { who: string; op: '+' | '-' | '='; perms: string }[] = [];
  for (const c of clauses) {
    const m = /^([ugoa]*)((?:[-+=](?:[rwxXst]*|[ugo]))+)$/.exec(c);
    if (!m) return undefined;
    const who = m[1]!.includes('a') || m[1] === '' ? 'ugo' : m[1]!;
    for (const a of m[2]!.matchAll(/([-+=])([rwxXst]*|[ugo])/g)) steps.push({ who, op: a[1] as '+' | '-' | '=', perms: a[2]! });
  }
  return (mode, isDir) => {
    let cur = mode & 0o7777;
    for (const { who, op, perms } of steps) {
      let rwx = 0; // the rwx bits, as an "other" triplet, replicated per class below
      let special = 0;
      if (perms.length === 1 && 'ugo'.includes(perms)) rwx = (cur >> CLASS_SHIFT[perms as 'u' | 'g' | 'o']) & 7;
      else
        for (const p of perms) {
          if (p === 'r') rwx |= 4;
          else if (p === 'w') rwx |= 2;
          else if (p === 'x') rwx |= 1;
          else if (p === 'X') rwx |= isDir || (cur & 0o111) !== 0 ? 1 : 0;
          else if (p === 's') special |= (who.includes('u') ? 0o4000 : 0) | (who.includes('g') ? 0o2000 : 0);
          else if (p === 't') special |= 0o1000;
        }
      let bits = special;
      let classMask = 0;
      for (const w of who) {
        const sh = CLASS_SHIFT[w as 'u' | 'g' | 'o'];
        bits |= rwx << sh;
        classMask |= 7 << sh;
      }
      if (op === '+') cur |= bits;
      else if (op === '-') cur &= ~bits;
      else {
        // `=` clears the classes named (their setuid/setgid too) before setting.
        const clear = classMask | (who.includes('u') ? 0o4000 : 0) | (who.includes('g') ? 0o2000 : 0) | (who === 'ugo' ? 0o1000 : 0);
        cur = (cur & ~clear) | bits;
      }
    }
    return cur & 0o7777;
  };
}
