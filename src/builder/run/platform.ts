/**
 * Foreign-architecture RUN steps execute through binfmt_misc + qemu-user-static (registered
 * with the F flag, so the interpreter works inside the container's rootfs). We only check that
 * the handler is there, to fail with a useful message instead of "exec format error".
 */
import { readFile } from 'node:fs/promises';
import { arch } from 'node:os';
import { HtvendError } from '../../util/errors.js';
import type { OciPlatform } from './types.js';

const NODE_TO_OCI: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
const OCI_TO_QEMU: Record<string, string> = { amd64: 'x86_64', arm64: 'aarch64', arm: 'arm', '386': 'i386', ppc64le: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** The host's OCI architecture name. */
export function hostArchitecture(): string {
  return NODE_TO_OCI[arch()] ?? arch();
}

/** Throws when `platform` cannot run here (different OS, or no enabled qemu binfmt handler). */
export async function checkPlatform(platform: OciPlatform, where: string): Promise<void> {
  if (platform.os && platform.os !== 'linux') throw new HtvendError('INPUT', `${where}: cannot RUN for os ${platform.os} (only linux)`);
  if (!platform.architecture || platform.architecture === hostArchitecture()) return;
  const qemu = OCI_TO_QEMU[platform.architecture] ?? platform.architecture;
  const status = await readFile(`/proc/sys/fs/binfmt_misc/qemu-${qemu}`, 'utf8').catch(() => '');
  if (!status.startsWith('enabled')) {
    throw new HtvendError('INPUT', `${where}: RUN for linux/${platform.architecture} needs qemu-${qemu} registered in binfmt_misc`, {
      hint: '`htvend doctor` shows what is missing (packages qemu-user-static binfmt-support; binfmt_misc mounted and qemu enabled)',
    });
  }
}
