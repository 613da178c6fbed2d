/** Go-style Prometheus-like counters, written by `--github-output-path` as `name=value`. */
export const COUNTER_NAMES = [
  'htvend_missing_asset_total', // offline requests that could not be served: not in assets.json, or blob missing (Go's name)
  'htvend_missing_blob_total', // the part of those listed in assets.json whose blob is not in the store
  'htvend_recorded_total', // responses recorded into the store + manifest
  'htvend_replayed_total', // responses served from the store
  'htvend_passthrough_total', // requests passed upstream unrecorded
  'htvend_dummy_ok_total', // offline --dummy-ok-response answers
  'htvend_denied_total', // offline non-GET/HEAD requests refused
  'htvend_record_failed_total', // recordings aborted (upstream reset, store failure)
  'htvend_integrity_failed_total', // replays cut because the blob did not match its digest (corrupt), not counted as replayed
  'htvend_upstream_bytes_total', // body bytes received from upstream servers
  'htvend_replayed_bytes_total', // body bytes served from the store
] as const;

export type CounterName = (typeof COUNTER_NAMES)[number];

export class Counters {
  private readonly values = new Map<CounterName, number>(COUNTER_NAMES.map((n) => [n, 0]));

  add(name: CounterName, n = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + n);
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.values);
  }
}
