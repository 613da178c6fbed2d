/** The OCI distribution client: see client.ts. */
export { RegistryClient, type RegistryClientOptions, type CallOptions } from './client.js';
export { BlobUpload, DEFAULT_CHUNK_SIZE, type UploadResult } from './upload.js';
export { parseImageReference, formatImageReference, manifestReference, DOCKER_HUB_HOST, type ImageReference } from './reference.js';
export { hostPlatform, parsePlatform, formatPlatform, platformMatches, selectPlatform } from './platform.js';
export { credentialsFromAuthFiles, parseChallenges, type Credentials } from './auth.js';
export { createTransport, type Env, type TransportOptions } from './transport.js';
export * from './types.js';
