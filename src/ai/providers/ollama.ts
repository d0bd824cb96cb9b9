/**
 * Ollama over its native API (`POST {host}/api/chat`, NDJSON), written by hand: the native
 * endpoint reports errors in-band as `{"error": "…"}` lines under HTTP 200 and marks the end
 * with `done: true`, and both must be checked to tell a finished reply from a broken one.
 */
import { classifyError, errorForStatus, truncatedError } from '../errors';
import type { ResolvedProvider } from '../config';
import { ChatError, type NormalizedChatRequest, type ProviderEvent } from '../types';
import type { ChatProvider, ProviderDeps } from './provider';

/** One NDJSON line of `/api/chat`. */
interface OllamaChatLine {
  message?: { role?: string; content?: string };
  done?: boolean;
  done_reason?: string;
  prompt_eval_count?: number;
  eval_count?: number;
  error?: string;
}

/** Error bodies are small; a misbehaving server must not make us buffer megabytes. */
const MAX_ERROR_BODY = 16 * 1024;

/** Create the Ollama provider (`OLLAMA_HOST`, default `http://127.0.0.1:11434`). */
export function createOllamaProvider(cfg: ResolvedProvider, deps: ProviderDeps = {}): ChatProvider {
  const name = cfg.name;
  const url = `${cfg.baseURL ?? 'http://127.0.0.1:11434'}/api/chat`;
  const ctx = { provider: name, secrets: [] };
  return {
    name,
    kind: 'ollama',
    defaultModel: cfg.defaultModel,
    async *stream(req: NormalizedChatRequest, model: string, signal: AbortSignal): AsyncGenerator<ProviderEvent> {
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
      let buffered = '';
      try {
        for (;;) {
          let chunk: Awaited<ReturnType<typeof reader.read>>;
          try {
            chunk = await reader.read();
          } catch (e) {
            const err = classifyError(e, ctx);
            // The server answered 200 and the body then died: the reply is cut short.
            throw err.code === 'network' ? truncatedError(name, 'connection closed mid-stream') : err;
          }
          if (chunk.done) {
            // A final line without a newline still counts.
            if (buffered.trim()) {
              const ev = parseLine(buffered, name);
              buffered = '';
              if (ev) {
                yield ev;
                if (ev.type === 'finish') return;
              }
            }
            throw truncatedError(name, 'no line with "done": true');
          }
          buffered += chunk.value;
          let nl: number;
          while ((nl = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, nl);
            buffered = buffered.slice(nl + 1);
            const ev = parseLine(line, name);
            if (!ev) continue;
            yield ev;
            if (ev.type === 'finish') return;
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
  const messages: Array<{ role: string; content: string }> = [];
  if (req.system !== undefined) messages.push({ role: 'system', content: req.system });
  messages.push(...req.messages);
  const options: Record<string, number> = {};
  if (req.temperature !== undefined) options.temperature = req.temperature;
  if (req.maxTokens !== undefined) options.num_predict = req.maxTokens;
  return { model, messages, stream: true, ...(Object.keys(options).length ? { options } : {}) };
}

function parseLine(line: string, provider: string): ProviderEvent | undefined {
  if (!line.trim()) return undefined;
  let obj: OllamaChatLine;
  try {
    obj = JSON.parse(line) as OllamaChatLine;
  } catch {
    throw new ChatError('provider_error', `${provider} sent a line that is not JSON`, { provider });
  }
  if (typeof obj.error === 'string') {
    // In-band failure under HTTP 200, typically the model runner dying: worth one more try.
    throw new ChatError('server_error', `${provider} stream error: ${obj.error}`, { provider, retryable: true });
  }
  if (obj.done === true) {
    return {
      type: 'finish',
      finishReason: obj.done_reason === 'stop' || obj.done_reason === 'length' ? obj.done_reason : (obj.done_reason ?? 'stop'),
      usage: { inputTokens: obj.prompt_eval_count ?? 0, outputTokens: obj.eval_count ?? 0 },
    };
  }
  const text = obj.message?.content;
  return text ? { type: 'delta', text } : undefined;
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
