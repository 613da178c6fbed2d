/**
 * Benchmark: pull of a single-layer image (default 200 MiB, incompressible) with skopeo,
 * straight from docker-registry vs through `htvend mirror`, in the same run (docs/mirror.md).
 *
 *   bash bench/mirror-bench.sh [--mib 200] [--rounds 3]
 *
 * The image is pushed to a TLS docker-registry, recorded with `htvend build -- skopeo copy`
 * (through the name-mapping proxy of the tests), then pulled `--rounds` times from each side
 * into a fresh `dir:` destination, alternating. Both endpoints speak TLS (skopeo trusts the
 * registry's certificate / the mirror's written-out CA); the mirror's plain-HTTP endpoint is
 * timed as well. Prints best-of times and the ratio registry ÷ mirror (mark ≥ 0.7).
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { once } from 'node:events';
import { startRegistry } from '../test/helpers/registry-server.js';
import { startNameProxy } from '../test/helpers/name-proxy.js';
import { cliCommand } from '../test/helpers/cli.js';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '200' }, rounds: { type: 'string', default: '3' } } });
const MiB = 1024 * 1024;
const size = Number(values.mib) * MiB;
const rounds = Number(values.rounds);

const cleanups: (() => unknown)[] = [];
const ctx = { after: (fn: () => unknown) => void cleanups.push(fn) };

function sh(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code, stderr }));
  });
}

async function must(argv: string[], env?: NodeJS.ProcessEnv): Promise<void> {
  const r = await sh(argv, env);
  if (r.code !== 0) throw new Error(`${argv.join(' ')}: exit ${r.code}: ${r.stderr}`);
}

/** An OCI layout with one image: a `size`-byte random layer (uncompressed tar media type; skopeo to dir: never unpacks it). */
async function writeLayout(dir: string): Promise<void> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const tmp = join(blobs, 'layer.tmp');
  const hash = createHash('sha256');
  const out = createWriteStream(tmp);
  for (let done = 0; done < size; done += 4 * MiB) {
    const chunk = randomBytes(Math.min(4 * MiB, size - done));
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  const layer = hash.digest('hex');
  await rename(tmp, join(blobs, layer));
  const put = async (obj: unknown) => {
    const b = Buffer.from(JSON.stringify(obj));
    const d = createHash('sha256').update(b).digest('hex');
    await writeFile(join(blobs, d), b);
    return { digest: `sha256:${d}`, size: b.length };
  };
  const config = await put({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${layer}`] }, config: {} });
  const manifest = await put({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layer}`, size }],
  });
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }] }));
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'htvend-mirror-bench-'));
  cleanups.push(() => rm(work, { recursive: true, force: true }));
  await writeLayout(join(work, 'layout'));
  const reg = await startRegistry(ctx, { tls: true, tlsNames: ['registry.test'] });
  const certs = join(work, 'registry-certs');
  await mkdir(certs);
  await writeFile(join(certs, 'ca.crt'), reg.caPem!);
  await must(['skopeo', 'copy', '-q', '--dest-cert-dir', certs, `oci:${join(work, 'layout')}:v1`, `docker://${reg.host}/big:v1`]);

  // Record the pull as a user would: htvend build -- skopeo copy (upstream reached by name).
  const names = await startNameProxy(ctx, ['registry.test']);
  const upstream = `registry.test:${reg.host.split(':')[1]}`;
  const env = { PATH: process.env['PATH'], HOME: work };
  const manifest = join(work, 'assets.json');
  const blobs = join(work, 'blobs');
  await must([...cliCommand('htvend'), 'build', '-m', manifest, '--blobs-dir', blobs, '--', 'skopeo', 'copy', '-q', `docker://${upstream}/big:v1`, `dir:${join(work, 'recorded')}`], {
    ...env,
    HTTPS_PROXY: names.url,
    SSL_CERT_FILE: reg.caFile,
  });
  await rm(join(work, 'recorded'), { recursive: true });

  const mirrorCerts = join(work, 'mirror-certs');
  await mkdir(mirrorCerts);
  const mirror = spawn(cliCommand('htvend')[0]!, [...cliCommand('htvend').slice(1), 'mirror', '-m', manifest, '--blobs-dir', blobs, '-l', '127.0.0.1:0', '--tls-listen-addr', '127.0.0.1:0', '--tls-ca-out', join(mirrorCerts, 'ca.crt')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  cleanups.push(() => mirror.kill('SIGTERM'));
  const urls = await new Promise<RegExpExecArray>((resolve, reject) => {
    let err = '';
    mirror.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      const m = /on http:\/\/([\d.]+:\d+) and https:\/\/([\d.]+:\d+)/.exec(err);
      if (m) resolve(m);
    });
    mirror.on('exit', () => reject(new Error(`mirror exited: ${err}`)));
  });
  const [, plainHost, tlsHost] = urls as unknown as [string, string, string];

  const pulls: Record<string, string[]> = {
    registry: ['--src-cert-dir', certs, `docker://${reg.host}/big:v1`],
    'mirror TLS': ['--src-cert-dir', mirrorCerts, `docker://${tlsHost}/big:v1`],
    'mirror plain HTTP': ['--src-tls-verify=false', `docker://${plainHost}/big:v1`],
  };
  const best: Record<string, number> = {};
  for (let r = 0; r < rounds; r++) {
    for (const [name, args] of r % 2 ? Object.entries(pulls).reverse() : Object.entries(pulls)) {
      const dest = join(work, `pull-${r}`);
      const t0 = process.hrtime.bigint();
      await must(['skopeo', 'copy', '-q', ...args, `dir:${dest}`], env);
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      await rm(dest, { recursive: true });
      best[name] = Math.min(best[name] ?? Infinity, s);
      console.log(`round ${r + 1} ${name}: ${s.toFixed(2)} s (${(size / MiB / s).toFixed(0)} MiB/s)`);
    }
  }
  console.log(`\nskopeo pull of a ${values.mib} MiB single-layer image, best of ${rounds}:`);
  for (const [k, v] of Object.entries(best)) console.log(`  ${k.padEnd(18)} ${v.toFixed(2)} s`);
  console.log(`ratio registry ÷ mirror (TLS both): ${(best['registry']! / best['mirror TLS']!).toFixed(2)} (mark >= 0.7)`);
  console.log(`ratio registry (TLS) ÷ mirror (plain HTTP): ${(best['registry']! / best['mirror plain HTTP']!).toFixed(2)}`);
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const c of cleanups.reverse()) await c();
  });
