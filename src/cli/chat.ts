/**
 * `lapce-ai-ipc chat`: send one prompt and stream the reply to stdout as it arrives.
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import { describeFallback, errorLine } from '../ai/report';
import type { ChatEvent } from '../ai/types';
import { CHAT_METHOD } from '../backend';
import type { IpcClient } from '../ipc/client';
import { connect } from './connect';
import { CliError } from './errors';
import { NAME, resolveSocket } from './settings';

/** The stderr line for a text-mode event, if it has one: a fallback that answered, a tool call the CLI cannot run. */
export function stderrLine(ev: ChatEvent): string | undefined {
  if (ev.type === 'start') {
    const fallback = describeFallback(ev);
    return fallback === undefined ? undefined : `${NAME}: ${fallback}`;
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

/** Send one prompt; with `--json` every event (and a final error event on failure) is a JSON line. */
export async function chat(promptWords: string[], opts: ChatCliOptions): Promise<void> {
  try {
    await run(promptWords, opts);
  } catch (e) {
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(errorLine(e))}\n`);
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
        const line = stderrLine(ev);
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
