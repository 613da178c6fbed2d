/**
 * The part of undici the registry client and the cache probes use: the env-proxy agent and
 * `request`. `import 'undici'` evaluates all of undici (fetch, WebSocket, cookies, caches,
 * mocks: 125-140 ms here, docs/build-cache.md "Warm path"); these
 * files are the ~35 ms of it we need (mostly the HTTP/1 client and its llhttp wasm). undici
 * 7 has no `exports` map, so its lib/ files are public paths; the version is pinned in
 * package.json. `fetch` (ADD <url>) is imported from 'undici' where it is used, on demand.
 *
 * The classes are the same module instances `import 'undici'` gives, so dispatchers made
 * here and there are interchangeable.
 */
import { createRequire } from 'node:module';
import type { Dispatcher, EnvHttpProxyAgent as EnvHttpProxyAgentType } from 'undici';

const require = createRequire(import.meta.url);

interface UndiciParts {
  EnvHttpProxyAgent: typeof EnvHttpProxyAgentType;
  parseURL(url: string | URL): URL;
}

let parts: UndiciParts | undefined;
function load(): UndiciParts {
  if (parts) return parts;
  const DispatcherClass = require('undici/lib/dispatcher/dispatcher') as { prototype: object };
  // What undici's index.js does: the request/stream/... methods live on Dispatcher.prototype.
  Object.assign(DispatcherClass.prototype, require('undici/lib/api'));
  const EnvHttpProxyAgent = require('undici/lib/dispatcher/env-http-proxy-agent') as typeof EnvHttpProxyAgentType;
  const util = require('undici/lib/core/util') as { parseURL(url: string | URL): URL };
  return (parts = { EnvHttpProxyAgent, parseURL: util.parseURL });
}

export function newEnvHttpProxyAgent(opts: ConstructorParameters<typeof EnvHttpProxyAgentType>[0]): EnvHttpProxyAgentType {
  return new (load().EnvHttpProxyAgent)(opts);
}

export type RequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & {
  method?: Dispatcher.HttpMethod;
  dispatcher: Dispatcher;
};

/** undici's top-level `request(url, opts)` (index.js makeDispatcher), with a required dispatcher. */
export function request(url: string | URL, opts: RequestOptions): Promise<Dispatcher.ResponseData> {
  const u = load().parseURL(url);
  const { dispatcher, ...rest } = opts;
  return dispatcher.request({
    ...rest,
    origin: u.origin,
    path: u.search ? `${u.pathname}${u.search}` : u.pathname,
    method: opts.method || (opts.body ? 'PUT' : 'GET'),
  } as Dispatcher.RequestOptions);
}
