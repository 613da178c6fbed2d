/**
 * StoreConfig (the `--blobs-*` / `--dest.blobs-*` flags) → an open BlobStore.
 *
 * Remote backends are loaded on demand with `import()`: a filesystem-only run never loads the
 * AWS SDK or the registry client (start-up time), and each backend module stays independent.
 */
import { HtvendError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { BlobStore, StoreConfig } from './store.js';
import { openDirStore } from './dir/index.js';

export interface OpenStoreOptions {
  /** htvend's own environment (XDG_DATA_HOME, AWS_*, proxy and CA variables). */
  env?: Readonly<Record<string, string | undefined>> | undefined;
  log?: Logger | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Opens the store `cfg` names. Missing required settings are USAGE errors naming the flag
 * (`flagPrefix` is `--` or `--dest.`).
 */
export async function openStore(cfg: StoreConfig, opts: OpenStoreOptions = {}, flagPrefix = '--'): Promise<BlobStore> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? silentLogger;
  switch (cfg.backend) {
    case 'filesystem':
      try {
        return await openDirStore(cfg.dir, { env, signal: opts.signal });
      } catch (e) {
        // The dir store names the plain flag; `export`'s destination is `--dest.blobs-dir`.
        if (e instanceof HtvendError && flagPrefix !== '--' && e.hint?.includes('--blobs-dir')) {
          throw new HtvendError(e.code, e.message, { hint: e.hint.replace('--blobs-dir', `${flagPrefix}blobs-dir`), cause: e.cause, exitCode: e.exitCode });
        }
        throw e;
      }
    case 'registry': {
      if (!cfg.registry) throw new HtvendError('USAGE', `${flagPrefix}blobs-registry is required with ${flagPrefix}blobs-backend registry`, { hint: 'e.g. https://host/v2/<repo>/' });
      const { openRegistryStore } = await import('./registry/index.js');
      return openRegistryStore(cfg, { env, log, signal: opts.signal });
    }
    case 's3': {
      if (!cfg.bucket) throw new HtvendError('USAGE', `${flagPrefix}blobs-bucket is required with ${flagPrefix}blobs-backend s3`);
      const { openS3Store } = await import('./s3/index.js');
      return openS3Store(cfg, { env, log, signal: opts.signal });
    }
    default:
      throw new HtvendError('USAGE', `${flagPrefix}blobs-backend ${JSON.stringify((cfg as { backend: unknown }).backend)}: want filesystem, registry or s3`);
  }
}
