/** Tiny helper to run a host tool (mount, umount, getfattr, cp) and fail with its stderr. */
import { spawn } from 'node:child_process';
import { HtvendError } from '../../util/errors.js';

export interface ToolResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs `argv`, collecting output. Rejects only when the tool cannot be started. */
export function runTool(argv: string[], signal?: AbortSignal): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], ...(signal ? { signal } : {}) });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (e) => reject(new HtvendError(signal?.aborted ? 'ABORTED' : 'IO', `cannot run ${argv[0]}: ${e.message}`, { cause: e })));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: stderr.trim() }));
  });
}

/** Runs `argv` and throws an IO error naming `what` on a non-zero exit. */
export async function mustRunTool(argv: string[], what: string, signal?: AbortSignal): Promise<Buffer> {
  const r = await runTool(argv, signal);
  if (r.code !== 0) throw new HtvendError('IO', `${what}: ${argv[0]} exited with ${r.code}${r.stderr ? `: ${r.stderr}` : ''}`);
  return r.stdout;
}
