/**
 * The library as a user's program uses it, through the package's public entries only:
 * `lapce-ai-ipc` (IPC server and client) and `lapce-ai-ipc/chat` (the chat backend).
 *
 * One process, offline: a server with two handlers and the chat backend on the echo provider, a
 * client making a request, reading a stream and a chat, then a clean shutdown. CI compiles this
 * file against the installed tarballs (module node16, nodenext and bundler) and runs it.
 *
 * In a clone: `node --import=tsx examples/library.ts`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { IpcClient, IpcServer } from 'lapce-ai-ipc';
import type { HandlerContext } from 'lapce-ai-ipc';
import { attachChatBackend, CHAT_METHOD, loadConfig } from 'lapce-ai-ipc/chat';
import type { ChatEvent, ChatRequest } from 'lapce-ai-ipc/chat';

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lapce-example-'));
  const socketPath = path.join(dir, 'example.sock');
  const server = new IpcServer({ socketPath });
  server.handle('add', ({ a, b }: { a: number; b: number }) => a + b);
  server.handleStream('count', async function* ({ n }: { n: number }, ctx: HandlerContext) {
    for (let i = 0; i < n && !ctx.signal.aborted; i++) yield i;
  });
  // `env: {}`: ignore provider keys in the environment, so the echo provider answers offline.
  attachChatBackend(server, { config: loadConfig({ env: {} }) });
  await server.listen();

  const client = await IpcClient.connect(socketPath);
  try {
    const sum = await client.request<number>('add', { a: 1, b: 2 });
    const counted: number[] = [];
    for await (const i of client.stream<number>('count', { n: 3 })) counted.push(i);
    const request: ChatRequest = { model: 'echo', messages: [{ role: 'user', content: 'hi' }] };
    let reply = '';
    for await (const ev of client.stream<ChatEvent>(CHAT_METHOD, request)) if (ev.type === 'delta') reply += ev.text;
    console.log(JSON.stringify({ sum, counted, reply }));
  } finally {
    client.close();
    await server.close({ deadlineMs: 1000 });
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
