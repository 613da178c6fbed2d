/**
 * `htvend mirror`: serve the images recorded in assets.json to registry clients (containerd,
 * k3s, podman, skopeo) configured with a registry mirror, with no proxy variables and no
 * network. Read-only: the manifest and the store are never written. See docs/mirror.md.
 */
import { HtvendError } from '../util/errors.js';
import type { StoreConfig } from '../store/store.js';
import { openStore } from '../store/open.js';
import { Manifest } from '../manifest/manifest.js';
import { writeFileAtomic } from '../manifest/atomic.js';
import { loadOrCreateCa } from '../tls/ca.js';
import { untilSignalled } from '../child/run.js';
import { MirrorCatalog } from '../mirror/catalog.js';
import { startMirror } from '../mirror/server.js';
import type { CommandContext } from './build.js';

export interface MirrorCommandOptions {
  manifest: string;
  store: StoreConfig;
  listenAddr: string;
  tlsListenAddr?: string | undefined;
  tlsCertPem?: string | undefined;
  tlsKeyPem?: string | undefined;
  tlsGenerateIfMissing: boolean;
  /** Where to write the CA certificate PEM for clients (TLS listener only). */
  tlsCaOut?: string | undefined;
  /** Upstream registry for requests without `ns=` (e.g. `docker.io`). */
  defaultRegistry?: string | undefined;
}

/** Serves until SIGINT/SIGTERM (or `ctx.signal`); resolves with the exit code (0). */
export async function mirror(o: MirrorCommandOptions, ctx: CommandContext): Promise<number> {
  const { log, env, signal } = ctx;
  const usesTls = Boolean(o.tlsListenAddr);
  if (!usesTls && (o.tlsCaOut || o.tlsCertPem || o.tlsKeyPem)) {
    throw new HtvendError('USAGE', '--tls-cert-pem, --tls-key-pem and --tls-ca-out only apply with --tls-listen-addr');
  }
  const manifest = await Manifest.open(o.manifest, { mode: 'read', log, signal });
  try {
    const catalog = new MirrorCatalog(manifest.entries(), o.defaultRegistry);
    if (catalog.repositories === 0) log.warn(`${o.manifest} holds no registry URLs (…/v2/<name>/manifests|blobs/…): every pull will be a 404`);
    const store = await openStore(o.store, { env, log, signal });
    try {
      const ca = usesTls ? await loadOrCreateCa({ certPemPath: o.tlsCertPem, keyPemPath: o.tlsKeyPem, generateIfMissing: o.tlsGenerateIfMissing, signal }) : undefined;
      if (ca && o.tlsCaOut) await writeFileAtomic(o.tlsCaOut, ca.certPem, { mode: 0o644, signal });
      const running = await startMirror({ catalog, store, log, listenAddr: o.listenAddr, tlsListenAddr: o.tlsListenAddr, ca, signal });
      try {
        log.info(`mirror serving ${catalog.repositories} repositor${catalog.repositories === 1 ? 'y' : 'ies'} from ${o.manifest} on ${running.url}${running.tlsUrl ? ` and ${running.tlsUrl}` : ''}; stop with SIGINT/SIGTERM`);
        if (ca) log.info(`mirror TLS: clients must trust the CA ${o.tlsCaOut ?? o.tlsCertPem ?? '(per-run; pass --tls-ca-out FILE to write it out)'}`);
        await untilSignalled(signal);
      } finally {
        await running.close();
      }
      const missing = running.missing();
      const c = running.counters();
      log.info(`mirror: ${c['htvend_replayed_total'] ?? 0} response(s) served, ${missing.length} unrecorded request(s)`);
      for (const m of missing) log.warn(`not recorded: ${m}`);
      await ctx.reportCounters?.({ htvend_missing_asset_total: 0, ...c });
      return 0;
    } finally {
      await store.close?.();
    }
  } finally {
    await manifest.close();
  }
}
