/**
 * The AI chat backend end to end, with the library API, offline and without keys:
 *
 * 1. this process starts an IpcServer on a temporary socket, with the chat backend on the
 *    built-in echo provider;
 * 2. it runs itself again as a separate client process, which streams a chat through a real
 *    IpcClient and prints the reply as it arrives;
 * 3. it prints a one-line metrics summary and shuts the server down.
 *
 * Run: `npm run demo` (or `node --import=tsx examples/demo.ts [prompt]`). The same job from the
 * command line is `lapce-ai-ipc demo`, or `lapce-ai-ipc serve` plus `lapce-ai-ipc chat "…"`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { type ChatEvent, loadConfig } from '../src/ai';
import { attachChatBackend, CHAT_METHOD } from '../src/backend';
import { formatStatsLine, summarizeMetrics } from '../src/cli';
import { IpcClient } from '../src/ipc/client';
import { IpcServer } from '../src/ipc/server';

/** Set in the child: the socket to connect to. */
const CLIENT_ENV = 'LAPCE_AI_DEMO_SOCKET';

async function server(prompt: string): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lapce-ai-demo-'));
  const socketPath = path.join(dir, 'ai.sock');
  const logger = pino({ level: 'warn' });
  const server = new IpcServer({ socketPath, logger });
  // `env: {}`: ignore any provider keys in the environment, so the demo never goes online and
  // the echo provider is the default.
  attachChatBackend(server, { config: loadConfig({ env: {} }), logger });
  await server.listen();
  console.log(`server: listening on ${socketPath} (pid ${process.pid})`);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, [...process.execArgv, __filename, prompt], {
        env: { ...process.env, [CLIENT_ENV]: socketPath },
        stdio: 'inherit',
      });
      child.on('error', reject);
      child.on('close', resolve);
    });
    if (code !== 0) throw new Error(`client exited with status ${code}`);
    console.log(formatStatsLine(summarizeMetrics(await server.metrics())));
  } finally {
    await server.close({ deadlineMs: 1000 });
    rmSync(dir, { recursive: true, force: true });
  }
  console.log('server: shut down cleanly');
}

async function client(socketPath: string, prompt: string): Promise<void> {
  const client = await IpcClient.connect(socketPath, { name: 'demo-client' });
  try {
    process.stdout.write(`client (pid ${process.pid}): `);
    for await (const ev of client.stream<ChatEvent>(CHAT_METHOD, { model: 'echo', messages: [{ role: 'user', content: prompt }] })) {
      if (ev.type === 'start') process.stdout.write(`[${ev.provider}/${ev.model}] `);
      else if (ev.type === 'delta') process.stdout.write(ev.text);
      else
        process.stdout.write(`\nclient: finished (${ev.finishReason}), ${ev.usage.inputTokens} tokens in, ${ev.usage.outputTokens} out\n`);
    }
  } finally {
    client.close();
  }
}

const prompt = process.argv.slice(2).join(' ') || 'Hello from the lapce-ai-ipc demo!';
const socket = process.env[CLIENT_ENV];
(socket ? client(socket, prompt) : server(prompt)).catch((e: Error) => {
  console.error(`demo failed: ${e.message}`);
  process.exitCode = 1;
});
