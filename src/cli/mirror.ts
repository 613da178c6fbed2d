/**
 * `htvend mirror` wiring (commander only): flags → src/commands/mirror.ts. Docs: docs/mirror.md.
 */
import { Command } from 'commander';
import type { CommandKit, Opts } from './htvend.js';
import { addGlobals, addManifestFlags, storeConfig } from './htvend.js';
import { parseListenAddr } from './common.js';

/** Default plain-HTTP address: a fixed port, so the ready-made client configs in docs/mirror.md work as they are. */
export const MIRROR_DEFAULT_ADDR = '127.0.0.1:5000';

function addr(s: string, flag: string): string {
  const a = parseListenAddr(s, flag);
  return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

export function registerMirror(kit: CommandKit): void {
  const c = addManifestFlags(addGlobals(new Command('mirror')))
    .description('[htvend-ts] Serve the images recorded in the manifest as a read-only OCI registry mirror (containerd, k3s, podman, skopeo)')
    .option('-l, --listen-addr <addr>', 'Listen address for the plain HTTP registry endpoint', MIRROR_DEFAULT_ADDR)
    .option('--tls-listen-addr <addr>', 'Listen address for a TLS registry endpoint as well; none unless given')
    .option('--tls-cert-pem <file>', 'CA certificate PEM that signs the TLS endpoint\'s certificates (default: a CA made for this run)')
    .option('--tls-key-pem <file>', 'Key of --tls-cert-pem')
    .option('--tls-generate-if-missing', 'Generate and save --tls-cert-pem/--tls-key-pem if missing')
    .option('--tls-ca-out <file>', 'Write the CA certificate PEM here for clients to trust')
    .option('--default-registry <host>', 'Upstream registry of requests that do not name one with ns= (e.g. docker.io); default: the only recorded registry holding the repository')
    .action((o: Opts, cmd: Command) => {
      kit.withGlobals(cmd, o);
      kit.run.action = async (log) => {
        const { mirror } = await import('../commands/mirror.js');
        return mirror(
          {
            manifest: o['manifest'] as string,
            store: storeConfig(o, kit.env),
            listenAddr: addr(o['listenAddr'] as string, '--listen-addr'),
            tlsListenAddr: o['tlsListenAddr'] ? addr(o['tlsListenAddr'] as string, '--tls-listen-addr') : undefined,
            tlsCertPem: o['tlsCertPem'] as string | undefined,
            tlsKeyPem: o['tlsKeyPem'] as string | undefined,
            tlsGenerateIfMissing: Boolean(o['tlsGenerateIfMissing']),
            tlsCaOut: o['tlsCaOut'] as string | undefined,
            defaultRegistry: o['defaultRegistry'] as string | undefined,
          },
          { env: kit.env, log, reportCounters: kit.counters() },
        );
      };
    });
  kit.add(c);
}
