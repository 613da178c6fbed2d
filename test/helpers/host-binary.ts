/**
 * Puts a dynamically linked host program into a test rootfs with the shared libraries `ldd`
 * names, at the same paths, so a RUN step can use a tool busybox lacks (e.g. setfattr).
 */
import { execFileSync } from 'node:child_process';
import { chmod, copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export async function addHostBinary(rootfs: string, program: string): Promise<void> {
  const libs = execFileSync('ldd', [program], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(l)?.[1])
    .filter((p): p is string => p !== undefined);
  for (const p of [program, ...libs]) {
    await mkdir(join(rootfs, dirname(p)), { recursive: true });
    await copyFile(p, join(rootfs, p)); // follows symlinks (ld-linux is one on Debian)
    await chmod(join(rootfs, p), 0o755);
  }
}
