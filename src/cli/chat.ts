/**
 * `lapce-ai-ipc chat`: send one prompt and stream the reply to stdout as it arrives.
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import type { ChatEvent } from '../ai/types';
import { CHAT_METHOD } from '../backend';
import type { IpcClient } from '../ipc/client';
import { connect } from './connect';
import { CliError } from './errors';
import { errorJson } from './format';
import { resolveSocket } from './settings';

/** Options of `chat`, as commander parses them. */
export interface ChatCliOptions {
  socket?: string;
  model?: string;
  system?: string;
  temperature?: number;
  maxTokens?: number;
  json?: boolean;
}

/**
 * The line `chat --json` prints when the chat fails (after any events that did arrive): the
 * error's wire form, flat, with the provider details a chat error carries.
 * TODO(merge): chat's `errorLine` (src/ai/report.ts, branch chat) builds this same shape; use it.
 */
export interface ChatErrorEvent {
  type: 'error';
  code: string;
  message: string;
  retryable: boolean;
  provider?: string;
  httpStatus?: number;
  retryAfterMs?: number;
}

function errorEvent(e: unknown): ChatErrorEvent {
  const { code, message, retryable, details } = errorJson(e);
  const d = (details ?? {}) as { provider?: unknown; httpStatus?: unknown; retryAfterMs?: unknown };
  return {
    type: 'error',
    code,
    message,
    retryable,
    ...(typeof d.provider === 'string' ? { provider: d.provider } : {}),
    ...(typeof d.httpStatus === 'number' ? { httpStatus: d.httpStatus } : {}),
    ...(typeof d.retryAfterMs === 'number' ? { retryAfterMs: d.retryAfterMs } : {}),
  };
}

/** Send one prompt; with `--json` every event (and a final error event on failure) is a JSON line. */
export async function chat(promptWords: string[], opts: ChatCliOptions): Promise<void> {
  try {
    await run(promptWords, opts);
  } catch (e) {
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(errorEvent(e))}\n`);
    }
    throw e;
  }
}

async function run(promptWords: string[], opts: ChatCliOptions): Promise<void> {
  const prompt = promptWords.length === 1 && promptWords[0] === '-' ? readFileSync(0, 'utf8') : promptWords.join(' ');
  const client: IpcClient = await connect(resolveSocket(opts.socket));
  const request = {
    ...(opts.model !== undefined ? { model: opts.model } : {}),
    messages: [{ role: 'user', content: prompt }],
    ...(opts.system !== undefined ? { system: opts.system } : {}),
    ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
    ...(opts.maxTokens !== undefined ? { maxTokens: opts.maxTokens } : {}),
  };
  // Ctrl-C cancels the stream, which aborts the provider's request on the server.
  const interrupt = new AbortController();
  const onSigint = () => interrupt.abort();
  process.once('SIGINT', onSigint);
  let midLine = false;
  try {
    for await (const ev of client.stream<ChatEvent>(CHAT_METHOD, request, { signal: interrupt.signal })) {
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(ev)}\n`);
      } else if (ev.type === 'delta') {
        process.stdout.write(ev.text);
        midLine = !ev.text.endsWith('\n');
      }
    }
    if (!opts.json) process.stdout.write('\n');
  } catch (e) {
    // Keep the partial reply on its own line, so the error does not look like part of it.
    if (midLine) process.stdout.write('\n');
    if (interrupt.signal.aborted) throw new CliError('CANCELLED', 'interrupted', { exitCode: 130, cause: e });
    throw e;
  } finally {
    process.removeListener('SIGINT', onSigint);
    client.close();
  }
}
