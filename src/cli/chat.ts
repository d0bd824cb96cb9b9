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
import { NAME, resolveSocket } from './settings';

/**
 * Event fields the text mode reports on stderr that the base event types here do not declare yet.
 * TODO(merge): chat's ChatStartEvent.fallbackFrom / ChatToolCallEvent and `describeFallback`
 * (src/ai/report.ts) say the same; use them.
 */
interface ReportedFields {
  type: string;
  provider?: string;
  model?: string;
  fallbackFrom?: Array<{ provider: string; model: string; code: string }>;
  id?: string;
  name?: string;
  arguments?: string;
}

/** The stderr line for a text-mode event, if it has one: a fallback that answered, a tool call the CLI cannot run. */
export function stderrLine(ev: ReportedFields): string | undefined {
  if (ev.type === 'start' && ev.fallbackFrom?.length) {
    const failed = ev.fallbackFrom.map((f) => `${f.provider}/${f.model} failed (${f.code})`).join(', then ');
    return `${NAME}: fallback: ${failed}; answered by ${ev.provider}/${ev.model}`;
  }
  if (ev.type === 'tool-call') return `${NAME}: tool call ${ev.name} ${ev.arguments} (id ${ev.id})`;
  return undefined;
}

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
      } else {
        const line = stderrLine(ev as ReportedFields);
        if (line !== undefined) process.stderr.write(`${line}\n`);
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
