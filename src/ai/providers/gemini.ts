/**
 * Google Gemini through `@ai-sdk/google`. The key travels in the `x-goog-api-key` header,
 * never in the URL. Reasoning maps to `thinkingConfig` (`includeThoughts`, `thinkingBudget`);
 * thought parts become reasoning events, `functionCall` parts tool calls.
 * @packageDocumentation
 */
import { createGoogleGenerativeAI } from '@ai-sdk/google';
import { tappedFetch } from '../activity';
import type { ResolvedProvider } from '../config';
import type { NormalizedChatRequest } from '../types';
import { GOOGLE_STREAM_ERROR, aiSdkProvider, budgetFor } from './ai-sdk';
import { type ChatProvider, type ProviderDeps, secretsOf } from './provider';

/** `thinkingConfig` for a request, under the given provider-options key (`google`, `vertex`). */
export function geminiThinking(req: NormalizedChatRequest, keys: string[]): { providerOptions?: Record<string, Record<string, unknown>> } {
  const r = req.reasoning;
  if (!r) return {};
  const thinkingConfig =
    r.enabled === false
      ? { thinkingBudget: 0, includeThoughts: false }
      : { includeThoughts: true, ...(r.budgetTokens !== undefined || r.effort !== undefined ? { thinkingBudget: budgetFor(r) } : {}) };
  return { providerOptions: Object.fromEntries(keys.map((k) => [k, { thinkingConfig }])) };
}

/** Create the Gemini provider from its config entry (`GEMINI_API_KEY`, `GEMINI_BASE_URL`). */
export function createGeminiProvider(cfg: ResolvedProvider, deps: ProviderDeps = {}): ChatProvider {
  const google = createGoogleGenerativeAI({
    // An explicit '' stops the SDK from reading GOOGLE_GENERATIVE_AI_API_KEY behind our back.
    apiKey: cfg.apiKey ?? '',
    baseURL: cfg.baseURL,
    fetch: tappedFetch(deps.fetch),
  });
  return aiSdkProvider(
    {
      name: cfg.name,
      kind: 'gemini',
      defaultModel: cfg.defaultModel,
      secrets: secretsOf(cfg),
      streamError: GOOGLE_STREAM_ERROR,
      model: (id) => google(id),
      callOptions: (req) => geminiThinking(req, ['google']),
    },
    deps,
  );
}
