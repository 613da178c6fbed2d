/**
 * The per-step root filesystem: an overlayfs with the stage's rootfs as lowerdir and a fresh
 * upperdir, so the step's changes are exactly the upperdir. redirect_dir/metacopy/index are
 * forced off: with them on, a renamed directory or a chmod'ed file would be recorded as an
 * xattr pointing into the lower layer instead of real content, which a layer cannot express.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { HtvendError } from '../../util/errors.js';
import { mustRunTool, runTool } from './exec.js';
import { inUserNamespace } from '../rootless/enter.js';

export interface OverlayDirs {
  upper: string;
  work: string;
  merged: string;
}

/** Creates upper/work/merged under `dir` and mounts the overlay on merged. */
export async function mountOverlay(lowerdirs: string[], dir: string, signal?: AbortSignal): Promise<OverlayDirs> {
  const d: OverlayDirs = { upper: join(dir, 'upper'), work: join(dir, 'work'), merged: join(dir, 'merged') };
  for (const p of [d.upper, d.work, d.merged]) await mkdir(p, { recursive: true, mode: 0o755 });
  for (const l of lowerdirs) {
    if (/[:,]/.test(l)) throw new HtvendError('INTERNAL', `rootfs path ${l} contains ':' or ',' and cannot be an overlay lowerdir`);
  }
  const base = `lowerdir=${lowerdirs.join(':')},upperdir=${d.upper},workdir=${d.work}`;
  // Older kernels reject unknown options: retry with fewer (they default to off there anyway).
  // `volatile` (Linux ≥ 5.10): no syncs to the upper fs — neither the step's fsyncs nor the
  // syncfs at unmount (0.3 s after a 500 MiB write). The upper dir is scratch: a crash fails the build anyway.
  // In a user namespace (rootless) overlayfs needs `userxattr`: its markers go to user.overlay.*.
  const ns = inUserNamespace() ? ',userxattr' : '';
  let last = '';
  for (const extra0 of [',redirect_dir=off,metacopy=off,index=off,volatile', ',redirect_dir=off,metacopy=off,index=off', ',redirect_dir=off,index=off', '']) {
    const extra = ns + extra0;
    const r = await runTool(['mount', '-t', 'overlay', 'overlay', '-o', base + extra, d.merged], signal);
    if (r.code === 0) return d;
    last = r.stderr;
  }
  throw new HtvendError('IO', `cannot mount overlayfs for the RUN step: ${last}`, { hint: '`htvend doctor` checks overlay mounts and the other prerequisites' });
}

/** Unmounts the overlay (lazily if something still holds it, so cleanup never hangs). */
export async function unmountOverlay(merged: string): Promise<void> {
  const r = await runTool(['umount', merged]);
  if (r.code !== 0) await mustRunTool(['umount', '-l', merged], `unmounting ${merged}`);
}

let overlayUsable: Promise<boolean> | undefined;

/**
 * Whether overlayfs can be mounted here (probed once per process); `forced` (from
 * `BUILD_IMG_SNAPSHOT`) skips the probe. When the kernel refuses the mount (EPERM in a user
 * namespace without overlay support, EINVAL for `userxattr` before Linux 5.11, no overlay
 * module…) the RUN steps fall back to the copy snapshot (snapshot-copy.ts), which gives the
 * same layers, and one line on stderr says so. `BUILD_IMG_OVERLAY_REFUSE=1` makes the probe
 * act as if the kernel had refused (tests of the fallback; docs/rootless.md).
 */
export function canUseOverlay(probeDir: string, forced?: 'overlay' | 'copy', warn: (line: string) => void = (l) => process.stderr.write(l + '\n')): Promise<boolean> {
  if (forced === 'copy') return Promise.resolve(false);
  if (forced === 'overlay') return Promise.resolve(true);
  overlayUsable ??= (async () => {
    let why: string;
    if (process.env.BUILD_IMG_OVERLAY_REFUSE === '1') {
      why = 'BUILD_IMG_OVERLAY_REFUSE=1';
    } else {
      const lower = join(probeDir, 'probe-lower');
      await mkdir(lower, { recursive: true });
      try {
        const d = await mountOverlay([lower], join(probeDir, 'probe'));
        await unmountOverlay(d.merged);
        return true;
      } catch (e) {
        why = (e as Error).message.replace(/\s+/g, ' ').trim();
      }
    }
    const where = inUserNamespace() ? ' in the user namespace' : '';
    warn(`build-img-with-proxy: warning: overlayfs refused${where} (${why}); RUN steps use the copy snapshot (same layers, slower)`);
    return false;
  })();
  return overlayUsable;
}
