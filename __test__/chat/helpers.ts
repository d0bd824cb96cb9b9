/**
 * Shared setup for the end-to-end chat tests: the mock providers, a real IpcServer with the
 * chat backend on a temporary socket, a real IpcClient, and a way to run the CLI as a child
 * process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { type ChatEvent, type ConfigInput, loadConfig } from '../../src/ai';
import { attachChatBackend, CHAT_METHOD, type ChatBackend } from '../../src/backend';
import { IpcError } from '../../src/errors';
import { IpcClient } from '../../src/ipc/client';
import { IpcServer } from '../../src/ipc/server';
import { FAST, KEYS, type Mocks, envFor, startMocks, stopMocks } from '../ai/helpers';

export { KEYS, type Mocks, within } from '../ai/helpers';

/** Repository root, for running the CLI from source. */
export const ROOT = path.resolve(__dirname, '..', '..');
export const CLI = path.join(ROOT, 'src', 'cli.ts');

type Teardown = { teardown(fn: () => void | Promise<void>): void };

/** A directory removed at teardown; socket paths live in it. */
export function tempDir(t: Teardown, prefix = 'lapce-chat-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Every mock provider, stopped at teardown. */
export async function mocks(t: Teardown): Promise<Mocks> {
  const m = await startMocks();
  t.teardown(() => stopMocks(m));
  return m;
}

/**
 * The config file (overrides layer) for the mocks: the two compatible servers, fast retries,
 * and `extra` on top (its `retry`/`timeouts` merged field by field).
 */
export function mockConfigInput(m: Mocks, extra: ConfigInput = {}): ConfigInput {
  return {
    ...FAST,
    ...extra,
    retry: { ...FAST.retry, ...extra.retry },
    timeouts: { ...FAST.timeouts, ...extra.timeouts },
    providers: {
      compatible: {
        local: { baseURL: `${m.local.origin}/v1`, models: ['qwen2.5-coder'] },
        other: { baseURL: `${m.other.origin}/api/v1`, apiKey: KEYS.other, models: ['mixtral'] },
      },
      ...extra.providers,
    },
  };
}

/** A running server with the chat backend, and a client connected to it. */
export interface Backend {
  server: IpcServer;
  client: IpcClient;
  backend: ChatBackend;
  socketPath: string;
}

/** Start an IpcServer with the chat backend over the mocks, and connect a client. Both close at teardown. */
export async function startBackend(t: Teardown, m: Mocks, extra: ConfigInput = {}): Promise<Backend> {
  const socketPath = path.join(tempDir(t), 'ai.sock');
  const logger = pino({ level: 'silent' });
  const config = loadConfig({ env: envFor(m), overrides: mockConfigInput(m, extra) });
  const server = new IpcServer({ socketPath, logger });
  const backend = attachChatBackend(server, { config, logger });
  await server.listen();
  const client = await IpcClient.connect(socketPath);
  t.teardown(async () => {
    client.close();
    await server.close({ deadlineMs: 1000 });
  });
  return { server, client, backend, socketPath };
}

/** What a chat stream delivered: its events (progress apart, finish timing apart), the text, and the typed error it ended with. */
export interface Collected {
  events: ChatEvent[];
  all: ChatEvent[];
  text: string;
  error?: IpcError;
}

/** Run one chat through the IPC client to the end (or its error). */
export async function chatOverIpc(client: IpcClient, payload: unknown): Promise<Collected> {
  const all: ChatEvent[] = [];
  const sorted = () => {
    const events = all.flatMap((ev): ChatEvent[] => {
      if (ev.type === 'progress') return [];
      if (ev.type === 'finish') {
        const { timing: _t, ...rest } = ev;
        return [rest];
      }
      return [ev];
    });
    return { events, all, text: textOf(events) };
  };
  try {
    for await (const ev of client.stream<ChatEvent>(CHAT_METHOD, payload)) all.push(ev);
  } catch (e) {
    if (!(e instanceof IpcError)) throw e;
    return { ...sorted(), error: e };
  }
  return sorted();
}

export function textOf(events: ChatEvent[]): string {
  return events.map((e) => (e.type === 'delta' ? e.text : '')).join('');
}

/** A chat payload with one user message. */
export function ask(model: string | undefined, content = 'Say hello', extra: Record<string, unknown> = {}) {
  return { ...(model !== undefined ? { model } : {}), messages: [{ role: 'user', content }], ...extra };
}

// ─── the CLI as a child process ──────────────────────────────────────────────

/** This environment without any provider setting, so children never see a real key or endpoint. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const providerVar =
    /^(GEMINI|OPENAI|ANTHROPIC|AZURE|XAI|OPENROUTER|GOOGLE_VERTEX|AWS|BEDROCK)_|^OLLAMA_HOST$|^LAPCE_AI_|^GOOGLE_APPLICATION_CREDENTIALS$/;
  for (const [k, v] of Object.entries(process.env)) if (!providerVar.test(k)) env[k] = v;
  // No implicit config file from the user's home either.
  env.XDG_CONFIG_HOME = path.join(os.tmpdir(), 'lapce-chat-test-no-config');
  return { ...env, ...extra };
}

/** Result of a finished CLI run. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Spawn `node --import=tsx src/cli.ts ...args`; `input`, if given, is its stdin. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv, input?: string): ChildProcess {
  const child = spawn(process.execPath, ['--import=tsx', CLI, ...args], {
    cwd: ROOT,
    env,
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (input !== undefined) child.stdin!.end(input);
  return child;
}

/** Run the CLI to completion. */
export function runCli(args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<CliResult> {
  return finished(spawnCli(args, env, input));
}

/** Collect a child's output until it exits. */
export function finished(child: ChildProcess): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Resolves with everything written to `stream` so far once it contains `needle`; rejects if the child exits first. */
export function waitForOutput(child: ChildProcess, stream: 'stdout' | 'stderr', needle: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (b: Buffer) => {
      seen += b.toString();
      if (seen.includes(needle)) {
        child[stream]?.off('data', onData);
        child.off('exit', onExit);
        resolve(seen);
      }
    };
    const onExit = (code: number | null) => reject(new Error(`child exited (${code}) before printing ${JSON.stringify(needle)}:\n${seen}`));
    child[stream]?.on('data', onData);
    child.once('exit', onExit);
  });
}
