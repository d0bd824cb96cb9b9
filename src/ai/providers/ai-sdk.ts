/**
 * Adapter from an AI SDK language model to {@link ChatProvider}, shared by the Gemini, OpenAI,
 * Anthropic and OpenAI-compatible providers.
 *
 * It calls the model's `doStream` directly instead of `streamText`: the raw stream parts carry
 * the provider's own finish reason (needed to tell a truncated stream from a finished one) and
 * its warnings (which `streamText` would print to the console), and nothing retries behind the
 * router's back — the AI SDK's `maxRetries` belongs to `streamText`, which we do not use.
 */
import type { LanguageModel } from 'ai';
import { classifyError, truncatedError } from '../errors';
import type { ProviderKind } from '../config';
import { ChatError, type NormalizedChatRequest, type ProviderEvent } from '../types';
import type { ChatProvider, ProviderDeps } from './provider';

/** The AI SDK's current model interface (the `LanguageModel` union minus strings and V2). */
export type LanguageModelV3 = Extract<LanguageModel, { specificationVersion: 'v3' }>;
type CallOptions = Parameters<LanguageModelV3['doStream']>[0];

/** Options of {@link aiSdkProvider}. */
export interface AiSdkProviderOptions {
  name: string;
  kind: ProviderKind;
  defaultModel?: string;
  /** Secrets to scrub from error text (the provider's key). */
  secrets: string[];
  /** Model instance for a model id. Must be a provider instance, never a bare string id. */
  model: (modelId: string) => LanguageModelV3;
  /** Extra per-call options, e.g. a default `maxOutputTokens` the API requires. */
  callOptions?: (req: NormalizedChatRequest) => Partial<CallOptions>;
}

/** Build the SDK prompt. Text only: the request schema carries nothing else. */
export function toPrompt(req: NormalizedChatRequest): CallOptions['prompt'] {
  const prompt: CallOptions['prompt'] = [];
  if (req.system !== undefined) prompt.push({ role: 'system', content: req.system });
  for (const m of req.messages) prompt.push({ role: m.role, content: [{ type: 'text', text: m.content }] });
  return prompt;
}

/** A {@link ChatProvider} over an AI SDK model factory. */
export function aiSdkProvider(opts: AiSdkProviderOptions, deps: ProviderDeps = {}): ChatProvider {
  const ctx = { provider: opts.name, secrets: opts.secrets };
  return {
    name: opts.name,
    kind: opts.kind,
    defaultModel: opts.defaultModel,
    async *stream(req: NormalizedChatRequest, modelId: string, signal: AbortSignal): AsyncGenerator<ProviderEvent> {
      let result: Awaited<ReturnType<LanguageModelV3['doStream']>>;
      try {
        result = await opts.model(modelId).doStream({
          prompt: toPrompt(req),
          ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
          ...(req.maxTokens !== undefined ? { maxOutputTokens: req.maxTokens } : {}),
          ...opts.callOptions?.(req),
          abortSignal: signal,
        });
      } catch (e) {
        throw classifyError(e, ctx);
      }
      const reader = result.stream.getReader();
      try {
        for (;;) {
          let next: Awaited<ReturnType<typeof reader.read>>;
          try {
            next = await reader.read();
          } catch (e) {
            throw classifyError(e, ctx);
          }
          if (next.done) throw truncatedError(opts.name, 'no finish event');
          const part = next.value;
          switch (part.type) {
            case 'text-delta':
              // OpenAI opens with an empty delta; it is not a token.
              if (part.delta) yield { type: 'delta', text: part.delta };
              break;
            case 'error':
              // Mid-stream errors: an APICallError (Gemini), an SDK error, or the provider's bare
              // error object with no HTTP status (Anthropic, OpenAI).
              throw classifyError(part.error, ctx);
            case 'stream-start':
              if (part.warnings.length) deps.logger?.debug({ provider: opts.name, warnings: part.warnings }, 'AI SDK warnings');
              break;
            case 'finish': {
              const { unified, raw } = part.finishReason;
              // The SDKs start from { unified: 'other', raw: undefined } and only update it when
              // the provider's terminal frame arrives, so an untouched reason means the stream
              // was cut short (or Gemini sent an unframed error the SSE parser skipped).
              if (raw === undefined && (unified === 'other' || unified === 'error')) {
                throw truncatedError(opts.name, 'stream closed before the final frame');
              }
              if (unified === 'error')
                throw new ChatError('provider_error', `${opts.name} finished with an error (${raw})`, { provider: opts.name });
              yield {
                type: 'finish',
                finishReason: unified === 'other' && raw ? raw : unified,
                usage: {
                  inputTokens: part.usage.inputTokens.total ?? 0,
                  outputTokens: part.usage.outputTokens.total ?? 0,
                },
              };
              return;
            }
            default:
              // Reasoning, tool and metadata parts: not part of a text chat reply.
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
