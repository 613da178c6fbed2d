/**
 * The session's private temp dir (SPEC §4): one 0700 directory holding the CA PEM, the
 * PKCS#12 truststore and the `-t` directories, removed when the session ends — normally,
 * on an error, or on SIGINT/SIGTERM (the commands turn those into a normal unwind). A
 * synchronous `exit` hook is the last resort for paths that skip the unwind (e.g.
 * `process.exit` from elsewhere); only SIGKILL can leave it behind.
 */
import { rmSync, chmodSync, readdirSync, lstatSync } from 'node:fs';
import { mkdtemp, chmod, rm, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HtvendError, describeError } from '../util/errors.js';
import { writePkcs12Truststore } from '../tls/truststore.js';
import { isEnvName, type ToolConfigPaths } from './env.js';
import { writeClientConfigs } from './client-configs/index.js';

export interface PrivateDir {
  readonly path: string;
  /** Removes the directory and everything in it (idempotent). */
  remove(): Promise<void>;
  /** Synchronous variant, for a forced exit where no await is possible. */
  removeSync(): void;
}

/** Makes dirs writable again so a child's read-only trees cannot block removal (as the Go tool does). */
function makeRemovable(dir: string): void {
  try {
    chmodSync(dir, 0o700);
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (lstatSync(p).isDirectory()) makeRemovable(p);
    }
  } catch {
    // best effort: rm reports what really cannot be removed
  }
}

/** Creates `$TMPDIR/htvend-XXXXXX` with mode 0700. */
export async function makePrivateDir(): Promise<PrivateDir> {
  let path: string;
  try {
    path = await mkdtemp(join(tmpdir(), 'htvend-'));
    await chmod(path, 0o700);
  } catch (e) {
    throw new HtvendError('IO', `cannot create a private temp dir under ${tmpdir()}: ${describeError(e)}`, { cause: e });
  }
  let removed = false;
  const onExit = () => {
    if (removed) return;
    removed = true;
    makeRemovable(path);
    rmSync(path, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  return {
    path,
    removeSync: onExit,
    async remove() {
      if (removed) return;
      removed = true;
      process.removeListener('exit', onExit);
      makeRemovable(path);
      await rm(path, { recursive: true, force: true });
    },
  };
}

export interface ChildFiles {
  caPemPath: string;
  truststorePath: string | undefined;
  toolConfigs: ToolConfigPaths | undefined;
  tempDirs: Array<[string, string]>;
}

export interface WriteChildFilesOptions {
  caPem: string;
  /** Write the PKCS#12 truststore (needed when any jks var is set or Java options are on). */
  truststore: boolean;
  /** `-t` names; each gets `<dir>/tmp/<NAME>` (0755, like the Go tool). */
  tempDirNames: readonly string[];
  /**
   * Write the rc files of clients whose own rc file beats every variable (wget, curl, apt),
   * each the user's file plus our CA (and proxy, given `proxyUrl`) lines: see client-configs/.
   */
  toolConfigs?: { parentEnv: Readonly<Record<string, string | undefined>>; proxyUrl?: string | undefined } | undefined;
  signal?: AbortSignal | undefined;
}

/** Writes the CA PEM (`cacerts.pem`), the truststore (`truststore.p12`), tool configs and the `-t` dirs into `dir`. */
export async function writeChildFiles(dir: string, o: WriteChildFilesOptions): Promise<ChildFiles> {
  for (const n of o.tempDirNames) {
    if (!isEnvName(n)) throw new HtvendError('USAGE', `--with-temp-dir ${JSON.stringify(n)}: not a valid environment variable name`);
  }
  const caPemPath = join(dir, 'cacerts.pem');
  await writeFile(caPemPath, o.caPem, { mode: 0o444, signal: o.signal });
  let truststorePath: string | undefined;
  if (o.truststore) {
    truststorePath = join(dir, 'truststore.p12');
    await writePkcs12Truststore(truststorePath, o.caPem, { signal: o.signal });
  }
  let toolConfigs: ToolConfigPaths | undefined;
  if (o.toolConfigs) toolConfigs = await writeClientConfigs({ dir, caPemPath, proxyUrl: o.toolConfigs.proxyUrl, parentEnv: o.toolConfigs.parentEnv, signal: o.signal });
  const tempDirs: Array<[string, string]> = [];
  if (o.tempDirNames.length) await mkdir(join(dir, 'tmp'), { mode: 0o700 });
  for (const n of new Set(o.tempDirNames)) {
    const p = join(dir, 'tmp', n);
    await mkdir(p, { mode: 0o755 });
    tempDirs.push([n, p]);
  }
  return { caPemPath, truststorePath, toolConfigs, tempDirs };
}
