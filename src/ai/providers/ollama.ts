/**
 * Ollama over its native API (`POST {host}/api/chat`, NDJSON), written by hand: the native
 * endpoint reports errors in-band as `{"error": "…"}` lines under HTTP 200 and marks the end
 * with `done: true`, and both must be checked to tell a finished reply from a broken one. The
 * `done: true` line may carry the last piece of content, so it is read as content first.
 * Thinking arrives in `message.thinking` (on by default for thinking-capable models; the
 * request's `think` turns it on, off, or to an effort), tool calls whole in
 * `message.tool_calls` (arguments as an object), images as base64 strings in `images`.
 * @packageDocumentation
 */
import { classifyError, errorForStatus, truncatedError } from '../errors';
import type { ResolvedProvider } from '../config';
import { ChatError, type NormalizedChatRequest, type ProviderEvent } from '../types';
import type { ChatProvider, ProviderDeps, StreamHooks } from './provider';

/** One tool call in an Ollama message. */
interface OllamaToolCall {
  id?: string;
  function?: { index?: number; name?: string; arguments?: unknown };
}

/** One NDJSON line of `/api/chat`. */
interface OllamaChatLine {
  message?: { role?: string; content?: string; thinking?: string; tool_calls?: OllamaToolCall[] };
  done?: boolean;
  done_reason?: string;
  prompt_eval_count?: number;
  eval_count?: number;
  error?: string;
}

/** State of one stream: tool calls seen, to number them and to report `tool-calls`. */
interface LineState {
  toolCalls: number;
}

/** Error bodies are small; a misbehaving server must not make us buffer megabytes. */
const MAX_ERROR_BODY = 16 * 1024;
/** Longest NDJSON line buffered while waiting for its newline. */
const MAX_LINE = 8 * 1024 * 1024;

/** Create the Ollama provider (`OLLAMA_HOST`, default `http://127.0.0.1:11434`). */
export function createOllamaProvider(cfg: ResolvedProvider, deps: ProviderDeps = {}): ChatProvider {
  const name = cfg.name;
  const url = `${cfg.baseURL ?? 'http://127.0.0.1:11434'}/api/chat`;
  const ctx = { provider: name, secrets: [] };
  return {
    name,
    kind: 'ollama',
    defaultModel: cfg.defaultModel,
    capabilities: { images: true, tools: true },
    async *stream(req: NormalizedChatRequest, model: string, signal: AbortSignal, hooks: StreamHooks = {}): AsyncGenerator<ProviderEvent> {
      const doFetch = deps.fetch ?? fetch;
      let res: Response;
      try {
        res = await doFetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' },
          body: JSON.stringify(toOllamaBody(req, model)),
          signal,
        });
      } catch (e) {
        throw classifyError(e, ctx);
      }
      if (!res.ok) throw await httpError(res, ctx);
      if (!res.body) throw truncatedError(name, 'empty response body');

      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      const state: LineState = { toolCalls: 0 };
      let buffered = '';
      try {
        for (;;) {
          let chunk: Awaited<ReturnType<typeof reader.read>>;
          try {
            chunk = await reader.read();
          } catch (e) {
            const err = classifyError(e, ctx);
            // The server answered 200 and the body then died: the reply is cut short.
            throw err.code === 'NETWORK' ? truncatedError(name, 'connection closed mid-stream') : err;
          }
          if (chunk.done) {
            // A final line without a newline still counts.
            if (buffered.trim()) {
              const events = parseLine(buffered, name, state);
              buffered = '';
              for (const ev of events) {
                yield ev;
                if (ev.type === 'finish') return;
              }
            }
            throw truncatedError(name, 'no line with "done": true');
          }
          hooks.onActivity?.();
          buffered += chunk.value;
          if (buffered.length > MAX_LINE && buffered.indexOf('\n') < 0) {
            throw new ChatError('PROVIDER_ERROR', `${name} sent a line longer than ${MAX_LINE} characters`, { provider: name });
          }
          let nl: number;
          while ((nl = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, nl);
            buffered = buffered.slice(nl + 1);
            for (const ev of parseLine(line, name, state)) {
              yield ev;
              if (ev.type === 'finish') return;
            }
          }
        }
      } finally {
        // Closes the connection if we stop before the server does.
        reader.cancel().catch(() => {});
      }
    },
  };
}

/** The request body of `/api/chat`. */
export function toOllamaBody(req: NormalizedChatRequest, model: string): Record<string, unknown> {
  const messages: Array<Record<string, unknown>> = [];
  if (req.system !== undefined) messages.push({ role: 'system', content: req.system });
  for (const m of req.messages) {
    if (m.role === 'user') {
      if (typeof m.content === 'string') messages.push({ role: 'user', content: m.content });
      else {
        const images = m.content.flatMap((p) => (p.type === 'image' ? [p.data] : []));
        const text = m.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
        messages.push({ role: 'user', content: text, ...(images.length ? { images } : {}) });
      }
    } else if (m.role === 'assistant') {
      const tool_calls = m.toolCalls?.map((c) => ({ function: { name: c.name, arguments: c.arguments } }));
      messages.push({ role: 'assistant', content: m.content, ...(tool_calls ? { tool_calls } : {}) });
    } else {
      messages.push({ role: 'tool', content: m.content, tool_name: m.name });
    }
  }
  const options: Record<string, number> = {};
  if (req.temperature !== undefined) options.temperature = req.temperature;
  if (req.maxTokens !== undefined) options.num_predict = req.maxTokens;
  const tools = req.tools?.map((t) => ({
    type: 'function',
    function: { name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), parameters: t.parameters },
  }));
  // Ollama has no tool_choice: "none" is honoured by sending no tools; a forced tool cannot be.
  const sendTools = tools && req.toolChoice !== 'none';
  const r = req.reasoning;
  const think = r === undefined ? undefined : r.enabled === false ? false : (r.effort ?? true);
  return {
    model,
    messages,
    stream: true,
    ...(sendTools ? { tools } : {}),
    ...(think !== undefined ? { think } : {}),
    ...(Object.keys(options).length ? { options } : {}),
  };
}

/** The events of one NDJSON line: thinking, content, tool calls, then (on `done`) the finish. */
function parseLine(line: string, provider: string, state: LineState): ProviderEvent[] {
  if (!line.trim()) return [];
  let obj: OllamaChatLine;
  try {
    obj = JSON.parse(line) as OllamaChatLine;
  } catch {
    throw new ChatError('PROVIDER_ERROR', `${provider} sent a line that is not JSON`, { provider });
  }
  if (typeof obj.error === 'string') {
    // In-band failure under HTTP 200, typically the model runner dying: worth one more try.
    throw new ChatError('SERVER_ERROR', `${provider} stream error: ${obj.error}`, { provider, retryable: true });
  }
  const events: ProviderEvent[] = [];
  const msg = obj.message;
  if (typeof msg?.thinking === 'string' && msg.thinking) events.push({ type: 'reasoning', text: msg.thinking });
  // The done line may carry the last piece of content: read it before finishing.
  if (typeof msg?.content === 'string' && msg.content) events.push({ type: 'delta', text: msg.content });
  for (const call of Array.isArray(msg?.tool_calls) ? msg.tool_calls : []) {
    const fn = call?.function;
    if (typeof fn?.name !== 'string') throw new ChatError('PROVIDER_ERROR', `${provider} sent a tool call without a name`, { provider });
    // Older Ollama versions send no id; number the calls so each one is addressable.
    const id = typeof call.id === 'string' && call.id ? call.id : `call_${state.toolCalls}`;
    state.toolCalls++;
    const args = typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments ?? {});
    events.push(
      { type: 'tool-call-start', id, name: fn.name },
      { type: 'tool-call-delta', id, argumentsDelta: args },
      { type: 'tool-call', id, name: fn.name, arguments: args },
    );
  }
  if (obj.done === true) {
    const reason = obj.done_reason ?? 'stop';
    events.push({
      type: 'finish',
      finishReason: state.toolCalls > 0 && reason === 'stop' ? 'tool-calls' : reason,
      usage: Object.fromEntries(
        Object.entries({ inputTokens: obj.prompt_eval_count, outputTokens: obj.eval_count }).filter(([, v]) => typeof v === 'number'),
      ),
    });
  }
  return events;
}

async function httpError(res: Response, ctx: { provider: string; secrets: string[] }): Promise<ChatError> {
  const text = await readAtMost(res, MAX_ERROR_BODY);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const detail = typeof (body as { error?: unknown })?.error === 'string' ? (body as { error: string }).error : text.slice(0, 500);
  return errorForStatus(res.status, detail, { ...ctx, headers: res.headers, body });
}

/** The first `limit` bytes of a body as text; whatever is left is discarded unread. */
async function readAtMost(res: Response, limit: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      size += value.byteLength;
    }
  } catch {
    // The status alone is enough to classify.
  } finally {
    reader.cancel().catch(() => {});
  }
  return Buffer.concat(parts).subarray(0, limit).toString('utf8');
}
