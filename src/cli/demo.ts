/**
 * `lapce-ai-ipc demo` (and `npm run demo`): the main job on a fresh machine, offline. A server on a
 * temporary socket with the echo provider; a chat from a separate process through the real client
 * (this CLI's `chat`); the reply; a metrics line; a clean shutdown. Ignores provider keys in the
 * environment, so it never goes online.
 * @packageDocumentation
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../ai/config';
import { attachChatBackend } from '../backend';
import { IpcServer } from '../ipc/server';
import { CliError } from './errors';
import { createCliLogger } from './logger';
import { formatStatsLine, summarizeMetrics } from './metrics-summary';
import { NAME } from './settings';

/** Options of `demo`. */
export interface DemoOptions {
  prompt: string;
  logLevel?: string;
  pretty?: boolean;
}

/** Run the demo. */
export async function demo(opts: DemoOptions): Promise<void> {
  // Quiet by default: the demo's output is the conversation, not the server's log.
  const logger = createCliLogger({ level: opts.logLevel ?? 'warn', pretty: opts.pretty });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lapce-ai-demo-'));
  const socketPath = path.join(dir, 'ai.sock');
  const server = new IpcServer({ socketPath, logger });
  try {
    attachChatBackend(server, { config: loadConfig({ env: {} }), logger });
    await server.listen();
    process.stdout.write(`server: listening on ${socketPath} (pid ${process.pid}), provider: echo (offline, no key needed)\n`);
    process.stdout.write(`client: ${NAME} chat --model echo ${JSON.stringify(opts.prompt)}\n`);
    process.stdout.write('reply:  ');
    const code = await runSelf(['chat', '--socket', socketPath, '--model', 'echo', opts.prompt]);
    if (code !== 0) throw new CliError('HANDLER_ERROR', `the chat client exited with status ${code}`);
    process.stdout.write(`${formatStatsLine(summarizeMetrics(await server.metrics()))}\n`);
  } finally {
    await server.close({ deadlineMs: 1000 });
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write('server: shut down cleanly\n');
}

/** Run this CLI's entry in a child process (same node flags, so it works from source under tsx too); its stdout streams into ours. */
function runSelf(args: string[]): Promise<number> {
  const entry = path.join(__dirname, '..', `cli${path.extname(__filename)}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, entry, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.on('data', (b: Buffer) => process.stdout.write(b));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
