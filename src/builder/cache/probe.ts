/**
 * "A cache hit never hides a fetch" (SPEC §9): before a cached step is reused, every asset it
 * fetched when it ran is asked for again through the proxy, with a HEAD under a step identity
 * of its own. htvend answers it like any request (build mode: marks the assets.json entry as
 * requested, or records it if absent; offline: 404 when it is not there), and the control
 * channel then says what sha256 each URL has now.
 */
import { timed } from '../../util/timing.js';
import type { Dispatcher } from 'undici';
import { describeError } from '../../util/errors.js';
import type { SessionChannel } from './channel.js';
import type { CachedAsset } from './store.js';

export type ProbeResult = { reuse: true; assets: CachedAsset[] } | { reuse: false; reason: string };

/** HEADs in flight at once (small requests over keep-alive connections). */
const PARALLEL = 8;
const HEAD_TIMEOUT_MS = 120_000;

export async function probeAssets(assets: readonly CachedAsset[], channel: SessionChannel, probeId: string, dispatcher: Dispatcher, signal?: AbortSignal): Promise<ProbeResult> {
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < assets.length) {
      const a = assets[next++]!;
      try {
        const res = await timed(`probe HEAD ${a.key}`, () => dispatcher.request({ ...requestTarget(a.key), method: 'HEAD', signal: signal ?? null, headersTimeout: HEAD_TIMEOUT_MS, bodyTimeout: HEAD_TIMEOUT_MS }));
        await res.body.dump();
        if (res.statusCode === 404) failures.push(`${a.key} is not available (404 from the proxy)`);
        else if (res.statusCode !== 200) failures.push(`${a.key}: the proxy answered ${res.statusCode}`);
      } catch (e) {
        failures.push(`${a.key}: ${describeError(e)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, assets.length) }, worker));
  const now = await timed('probe report', () => channel.stepReport(probeId, signal));
  await timed('probe forget', () => channel.forget(probeId));
  if (failures.length) return { reuse: false, reason: failures[0]! + (failures.length > 1 ? ` (and ${failures.length - 1} more)` : '') };
  const seen = new Map(now.assets.map((a) => [a.key, a]));
  for (const a of assets) {
    const s = seen.get(a.key);
    if (!s || s.status === 'missing') return { reuse: false, reason: `${a.key} is not available` };
    if (s.sha256 !== a.sha256) return { reuse: false, reason: `${a.key} changed (sha256 ${a.sha256.slice(0, 12)}… when cached, ${s.sha256.slice(0, 12)}… now)` };
  }
  return { reuse: true, assets: assets.map((a) => ({ ...a, size: seen.get(a.key)?.size ?? a.size })) };
}

/**
 * Origin and path of an assets.json key exactly as the client wrote them: the key is the
 * request-target the proxy saw, and a URL parser would change it (`/repo/./Packages`, the
 * form apt uses for flat repositories, becomes `/repo/Packages`: another key, a 404).
 */
export function requestTarget(key: string): { origin: string; path: string } {
  const start = key.indexOf('//');
  if (start < 0) throw new Error(`${key}: not an absolute URL`);
  const slash = key.indexOf('/', start + 2);
  const query = key.indexOf('?', start + 2);
  const end = slash < 0 ? (query < 0 ? key.length : query) : query < 0 ? slash : Math.min(slash, query);
  const rest = key.slice(end);
  return { origin: key.slice(0, end), path: rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest };
}
