/**
 * Mirror test harness: images recorded the way docs/mirror.md tells users to (`htvend build
 * -- skopeo copy …`), a running `htvend mirror`, and a private containerd.
 *
 * Recording: the busybox images live in a real docker-registry on 127.0.0.1, reached under
 * the made-up name `registry.test:PORT` (test/helpers/name-proxy.ts), so skopeo sends its
 * traffic through htvend. The registry and the name proxy are then stopped: anything the
 * clients get afterwards comes from the mirror.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { TestContext } from 'node:test';
import { startBusyboxRegistry } from '../helpers/busybox-image.js';
import { startNameProxy } from '../helpers/name-proxy.js';
import { cliCommand, run } from '../helpers/cli.js';

export interface Recorded {
  dir: string;
  manifest: string;
  blobs: string;
  /** `registry.test:PORT`: the upstream name recorded in assets.json. */
  upstream: string;
  /** Whether busybox:latest is a two-platform index (arm64 busybox available). */
  multiArch: boolean;
  /** sha256 hex of the recorded `busybox:latest` and `single:v1` manifests. */
  indexDigest: string;
  singleDigest: string;
  /** htvend's environment without proxies (PATH, HOME). */
  env: NodeJS.ProcessEnv;
  assets: Record<string, { Sha256: string; Headers: Record<string, string> }>;
}

export async function recordImages(t: Pick<TestContext, 'after'>, dir: string): Promise<Recorded> {
  const bb = await startBusyboxRegistry(t, { tls: true, tlsNames: ['registry.test'], multiArch: true });
  const certs = join(dir, 'certs');
  await mkdir(certs);
  await writeFile(join(certs, 'ca.crt'), bb.registry.caPem!);
  // A second, single-manifest image: skopeo without --all copies only this machine's platform.
  const copy = await run(['skopeo', 'copy', '-q', '--src-cert-dir', certs, '--dest-cert-dir', certs, `docker://${bb.ref}`, `docker://${bb.registry.host}/single:v1`]);
  if (copy.code !== 0) throw new Error(`skopeo copy single: ${copy.stderr}`);
  const port = bb.registry.host.split(':')[1]!;
  const upstream = `registry.test:${port}`;
  const names = await startNameProxy(t, ['registry.test']);
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], HOME: join(dir, 'home'), LANG: 'C.UTF-8' };
  await mkdir(env['HOME']!);
  const manifest = join(dir, 'assets.json');
  const blobs = join(dir, 'blobs');
  const script = [
    `skopeo copy --all -q docker://${upstream}/busybox:latest oci:${dir}/recorded:busybox`,
    `skopeo copy -q docker://${upstream}/single:v1 oci:${dir}/recorded-single:single`,
  ].join(' && ');
  // htvend's own upstream: through the name proxy, trusting the registry's certificate.
  const rec = await run([...cliCommand('htvend'), 'build', '-m', manifest, '--blobs-dir', blobs, '--', 'sh', '-c', script], {
    env: { ...env, HTTPS_PROXY: names.url, SSL_CERT_FILE: bb.registry.caFile },
    timeoutMs: 120_000,
  });
  if (rec.code !== 0) throw new Error(`recording failed (${rec.code}): ${rec.stderr}`);
  await bb.registry.stop();
  await names.stop();
  const assets = JSON.parse(await readFile(manifest, 'utf8')) as Recorded['assets'];
  const digestOf = (key: string) => {
    const e = assets[key];
    if (!e) throw new Error(`not recorded: ${key}; have ${Object.keys(assets).join(', ')}`);
    return e.Sha256;
  };
  return {
    dir,
    manifest,
    blobs,
    upstream,
    multiArch: bb.arm64,
    indexDigest: digestOf(`https://${upstream}/v2/busybox/manifests/latest`),
    singleDigest: digestOf(`https://${upstream}/v2/single/manifests/v1`),
    env,
    assets,
  };
}

export interface MirrorProcess {
  url: string;
  hostPort: string;
  tlsUrl?: string | undefined;
  stderr: () => string;
  stop(): Promise<void>;
}

/** Starts `htvend mirror ARGS…` on 127.0.0.1:0 and waits for its "serving" line. */
export async function startMirrorCli(t: Pick<TestContext, 'after'>, r: Recorded, args: string[] = [], blobs = r.blobs): Promise<MirrorProcess> {
  const child: ChildProcess = spawn(cliCommand('htvend')[0]!, [...cliCommand('htvend').slice(1), 'mirror', '-m', r.manifest, '--blobs-dir', blobs, '-l', '127.0.0.1:0', ...args], {
    env: r.env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const exited = once(child, 'exit');
  const ready = new Promise<RegExpExecArray>((resolve, reject) => {
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      const m = /on (http:\/\/([\d.]+:\d+))(?: and (https:\/\/[\d.]+:\d+))?/.exec(stderr);
      if (m) resolve(m);
    });
    void exited.then(() => reject(new Error(`htvend mirror exited: ${stderr}`)));
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exited;
  };
  t.after(stop);
  const m = await ready;
  return { url: m[1]!, hostPort: m[2]!, tlsUrl: m[3], stderr: () => stderr, stop };
}

export interface Containerd {
  address: string;
  ctr(args: string[]): ReturnType<typeof run>;
}

/** A private containerd (own root, state and socket; CRI off), stopped when the test ends. */
export async function startContainerd(t: Pick<TestContext, 'after'>, dir: string): Promise<Containerd> {
  const address = join(dir, 'containerd.sock');
  const cfg = join(dir, 'containerd.toml');
  await writeFile(
    cfg,
    ['version = 2', `root = "${dir}/root"`, `state = "${dir}/state"`, 'disabled_plugins = ["io.containerd.grpc.v1.cri"]', '[grpc]', `  address = "${address}"`, '[ttrpc]', `  address = "${address}.ttrpc"`, ''].join('\n'),
  );
  const child = spawn('containerd', ['-c', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  const exited = once(child, 'exit');
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  });
  const ctr = (args: string[]) => run(['ctr', '--address', address, ...args], { timeoutMs: 60_000 });
  for (let i = 0; ; i++) {
    if ((await ctr(['version'])).code === 0) break;
    if (i > 100 || child.exitCode !== null) throw new Error(`containerd did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { address, ctr };
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
