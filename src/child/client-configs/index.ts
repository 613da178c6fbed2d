/**
 * Making each client trust htvend's CA and use its proxy even when the client's own config
 * file names another CA or proxy: environment variables where one beats the file
 * (env-vars.ts), else a copy of the user's file with our lines appended in the session's
 * private dir, named by the variable the client reads (files.ts).
 */
export { clientEnvOverrides, type ClientEnvInput } from './env-vars.js';
export { writeClientConfigs, userCurlrc, type ToolConfigPaths, type WriteClientConfigsOptions } from './files.js';
