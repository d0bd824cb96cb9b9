/**
 * Adapter from an AI SDK language model (`@ai-sdk/provider` v3 interface) to
 * {@link ChatProvider}, shared by every provider except Ollama and echo. It builds the SDK
 * prompt (text, images as file parts, assistant tool calls, tool results), tools and tool
 * choice, and maps the SDK's stream parts to our events: text, reasoning, tool-call start /
 * argument deltas / complete, and a finish with usage (reasoning and cached tokens included)
 * and the provider's response id.
 *
 * It calls the model's `doStream` directly instead of `streamText`: the raw stream parts carry
 * the provider's own finish reason (needed to tell a truncated stream from a finished one) and
 * its warnings (which `streamText` would print to the console), and nothing retries behind the
 * router's back. `streamText`'s own retry (`maxRetries`) is not used because it retries only
 * before the response and does not know our fallback chain, cooldowns or the chat's overall
 * deadline; and its chunk timeout (`timeout.chunkMs`, reset per model stream part in `ai`
 * 6.0.326's `streamText`) counts only parts, not the keep-alive bytes that `tappedFetch` sees,
 * so a model thinking silently behind Anthropic pings or OpenRouter comments would time out.
 * @packageDocumentation
 */
import type { LanguageModelV3, LanguageModelV3CallOptions, LanguageModelV3Prompt } from '@ai-sdk/provider';
import { TerminalMarker, tapRequests } from '../activity';
export { GOOGLE_STREAM_ERROR, TERMINAL_FRAMES } from '../activity';
import type { ProviderKind } from '../config';
import { classifyError, truncatedError } from '../errors';
import { ChatError, type NormalizedChatRequest, type ProviderEvent } from '../types';
import type { ChatProvider, ProviderCapabilities, ProviderDeps, StreamHooks } from './provider';

export type { LanguageModelV3 };
type CallOptions = LanguageModelV3CallOptions;

/** Per-call options a provider module adds: a default output cap, provider options (reasoning). */
export interface ExtraCallOptions {
  maxOutputTokens?: number;
  providerOptions?: Record<string, Record<string, unknown>>;
}

/** Options of {@link aiSdkProvider}. */
export interface AiSdkProviderOptions {
  name: string;
  kind: ProviderKind;
  defaultModel?: string;
  /** Secrets to scrub from error text (the provider's key). */
  secrets: string[];
  /** Model instance for a model id. Must be a provider instance, never a bare string id. */
  model: (modelId: string) => LanguageModelV3;
  /** Extra per-call options: reasoning controls, a default `maxOutputTokens` the API requires. */
  callOptions?: (req: NormalizedChatRequest) => ExtraCallOptions;
  /**
   * The provider's terminal frame ({@link TERMINAL_FRAMES}): OpenAI-wire streams (OpenAI,
   * Azure, xAI, OpenRouter, compatible) end with `data: [DONE]` after the usage chunk,
   * Anthropic with `message_stop`, Bedrock with its `metadata` event. A stream that ends
   * without it was cut short, whatever the SDK reports. Gemini has none (its last chunk
   * carries the finish reason).
   */
  terminal?: RegExp;
  /** Where the raw bytes name an in-stream error's kind that the SDK drops (Bedrock's `:exception-type`). */
  errorType?: RegExp;
  /** An in-stream error object the SDK does not surface at all (groups: code, message, status), e.g. {@link GOOGLE_STREAM_ERROR}. */
  streamError?: RegExp;
  capabilities?: Partial<ProviderCapabilities>;
}

/** Build the SDK prompt: system, user text and images, assistant text and tool calls, tool results. */
export function toPrompt(req: NormalizedChatRequest): LanguageModelV3Prompt {
  const prompt: LanguageModelV3Prompt = [];
  if (req.system !== undefined) prompt.push({ role: 'system', content: req.system });
  for (const m of req.messages) {
    if (m.role === 'user') {
      const parts = typeof m.content === 'string' ? [{ type: 'text' as const, text: m.content }] : m.content;
      prompt.push({
        role: 'user',
        content: parts.map((p) =>
          p.type === 'text' ? { type: 'text', text: p.text } : { type: 'file', mediaType: p.mediaType, data: p.data },
        ),
      });
    } else if (m.role === 'assistant') {
      const content: Extract<LanguageModelV3Prompt[number], { role: 'assistant' }>['content'] = [];
      if (m.content) content.push({ type: 'text', text: m.content });
      for (const c of m.toolCalls ?? []) content.push({ type: 'tool-call', toolCallId: c.id, toolName: c.name, input: c.arguments });
      prompt.push({ role: 'assistant', content });
    } else {
      const part = {
        type: 'tool-result' as const,
        toolCallId: m.toolCallId,
        toolName: m.name,
        output: { type: 'text' as const, value: m.content },
      };
      const last = prompt.at(-1);
      // Results of parallel calls belong in one tool turn (Anthropic and Gemini require it).
      if (last?.role === 'tool') last.content.push(part);
      else prompt.push({ role: 'tool', content: [part] });
    }
  }
  return prompt;
}

/** Tools and tool choice in the SDK's form. */
export function toTools(req: NormalizedChatRequest): Pick<CallOptions, 'tools' | 'toolChoice'> {
  if (!req.tools?.length) return {};
  const tools: CallOptions['tools'] = req.tools.map((t) => ({
    type: 'function',
    name: t.name,
    ...(t.description !== undefined ? { description: t.description } : {}),
    inputSchema: t.parameters as Parameters<typeof JSON.stringify>[0],
  }));
  const c = req.toolChoice;
  const toolChoice: CallOptions['toolChoice'] =
    c === undefined ? undefined : typeof c === 'string' ? { type: c } : { type: 'tool', toolName: c.name };
  return { tools, ...(toolChoice ? { toolChoice } : {}) };
}

/** Default thinking budgets for an effort, where the provider takes a budget. */
export function budgetFor(r: { effort?: string; budgetTokens?: number }): number {
  if (r.budgetTokens !== undefined) return r.budgetTokens;
  return r.effort === 'low' ? 1024 : r.effort === 'high' ? 16_384 : 4096;
}

/** Merge provider options: ours first, then the request's own `providerOptions`. */
export function mergeProviderOptions(
  ...layers: Array<Record<string, Record<string, unknown>> | undefined>
): CallOptions['providerOptions'] {
  const out: Record<string, Record<string, unknown>> = {};
  for (const layer of layers) for (const [k, v] of Object.entries(layer ?? {})) out[k] = { ...out[k], ...v };
  return Object.keys(out).length ? (out as CallOptions['providerOptions']) : undefined;
}

const RESPONSE_ID_HEADERS = ['x-request-id', 'request-id', 'x-amzn-requestid', 'apim-request-id'];

/** A {@link ChatProvider} over an AI SDK model factory. */
export function aiSdkProvider(opts: AiSdkProviderOptions, deps: ProviderDeps = {}): ChatProvider {
  const ctx = { provider: opts.name, secrets: opts.secrets };
  return {
    name: opts.name,
    kind: opts.kind,
    defaultModel: opts.defaultModel,
    capabilities: { images: true, tools: true, ...opts.capabilities },
    async *stream(
      req: NormalizedChatRequest,
      modelId: string,
      signal: AbortSignal,
      hooks: StreamHooks = {},
    ): AsyncGenerator<ProviderEvent> {
      const terminal = opts.terminal ? new TerminalMarker(opts.terminal) : undefined;
      const errorType = opts.errorType ? new TerminalMarker(opts.errorType) : undefined;
      const streamError = opts.streamError ? new TerminalMarker(opts.streamError) : undefined;
      const tap = {
        onBytes(chunk: Uint8Array) {
          hooks.onActivity?.();
          terminal?.feed(chunk);
          errorType?.feed(chunk);
          streamError?.feed(chunk);
        },
      };
      const extra = opts.callOptions?.(req) ?? {};
      let result: Awaited<ReturnType<LanguageModelV3['doStream']>>;
      try {
        tapRequests(signal, tap);
        result = await opts.model(modelId).doStream({
          prompt: toPrompt(req),
          ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
          ...(req.maxTokens !== undefined ? { maxOutputTokens: req.maxTokens } : {}),
          ...toTools(req),
          ...(extra.maxOutputTokens !== undefined ? { maxOutputTokens: extra.maxOutputTokens } : {}),
          providerOptions: mergeProviderOptions(extra.providerOptions, req.providerOptions),
          abortSignal: signal,
        });
      } catch (e) {
        throw classifyError(e, ctx);
      }
      const headers = result.response?.headers ?? {};
      let responseId = RESPONSE_ID_HEADERS.map((h) => headers[h]).find((v) => v);
      const started = new Set<string>();
      const reader = result.stream.getReader();
      try {
        for (;;) {
          let next: Awaited<ReturnType<typeof reader.read>>;
          try {
            next = await reader.read();
          } catch (e) {
            throw midStream(classifyError(e, ctx));
          }
          if (next.done) throw truncatedError(opts.name, 'no finish event');
          const part = next.value;
          switch (part.type) {
            case 'text-delta':
              // OpenAI opens with an empty delta; it is not a token.
              if (part.delta) yield { type: 'delta', text: part.delta };
              break;
            case 'reasoning-delta':
              if (part.delta) yield { type: 'reasoning', text: part.delta };
              break;
            case 'tool-input-start':
              started.add(part.id);
              yield { type: 'tool-call-start', id: part.id, name: part.toolName };
              break;
            case 'tool-input-delta':
              if (part.delta) yield { type: 'tool-call-delta', id: part.id, argumentsDelta: part.delta };
              break;
            case 'tool-call': {
              // Gemini and Bedrock may deliver a call whole, without input-start/-delta parts.
              if (!started.has(part.toolCallId)) {
                started.add(part.toolCallId);
                yield { type: 'tool-call-start', id: part.toolCallId, name: part.toolName };
                if (part.input) yield { type: 'tool-call-delta', id: part.toolCallId, argumentsDelta: part.input };
              }
              yield { type: 'tool-call', id: part.toolCallId, name: part.toolName, arguments: part.input || '{}' };
              break;
            }
            case 'response-metadata':
              if (part.id) responseId = part.id;
              break;
            case 'error':
              // Mid-stream errors: an APICallError (Gemini), an SDK error, or the provider's bare
              // error object with no HTTP status (Anthropic, OpenAI, Bedrock exceptions).
              throw midStream(
                classifyError(
                  errorType?.captured && part.error && typeof part.error === 'object' && !(part.error instanceof Error)
                    ? { ...part.error, type: errorType.captured }
                    : part.error,
                  ctx,
                ),
              );
            case 'stream-start':
              if (part.warnings.length) deps.logger?.debug({ provider: opts.name, warnings: part.warnings }, 'AI SDK warnings');
              break;
            case 'finish': {
              const { unified, raw } = part.finishReason;
              // The SDKs start from { unified: 'other', raw: undefined } and only update it when
              // the provider's terminal frame arrives, so an untouched reason means the stream
              // was cut short (or Gemini sent an unframed error the SSE parser skipped).
              if (raw === undefined && (unified === 'other' || unified === 'error')) {
                const m = streamError?.match;
                if (m) throw classifyError({ code: Number(m[1]), message: JSON.parse(`"${m[2]}"`), status: m[3] }, ctx);
                throw truncatedError(opts.name, 'stream closed before the final frame');
              }
              const u = part.usage;
              // The finish reason came, but not the terminal frame: the stream was cut after it
              // (before OpenAI's usage chunk and [DONE], Anthropic's message_stop, Bedrock's
              // metadata). Never report that as complete, nor usage the provider did not send.
              if (terminal && !terminal.seen) {
                throw truncatedError(opts.name, 'stream ended after the finish reason, before its terminal frame');
              }
              if (unified === 'error')
                throw new ChatError('PROVIDER_ERROR', `${opts.name} finished with an error (${raw})`, { provider: opts.name });
              yield {
                type: 'finish',
                finishReason: unified === 'other' && raw ? raw : unified,
                usage: definedOnly({
                  inputTokens: u.inputTokens.total,
                  outputTokens: u.outputTokens.total,
                  reasoningTokens: u.outputTokens.reasoning,
                  cachedInputTokens: u.inputTokens.cacheRead,
                }),
                ...(responseId ? { responseId } : {}),
              };
              return;
            }
            default:
              // text/reasoning start and end, sources, files, raw chunks: nothing to show.
              break;
          }
        }
      } finally {
        // Ends the HTTP body when the consumer stops early; a no-op after a normal finish.
        reader.cancel().catch(() => {});
      }
    },
  };
}

/** The response had begun (HTTP 200): a connection that dies now cuts the reply short. */
function midStream(err: ChatError): ChatError {
  return err.code === 'NETWORK' ? truncatedError(err.provider, `connection closed mid-stream (${err.message})`) : err;
}

function definedOnly<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
