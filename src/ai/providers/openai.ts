/**
 * OpenAI through `@ai-sdk/openai`, on the Chat Completions API (`openai.chat(model)`):
 * `openai(model)` would call the Responses API, which compatible servers and proxies lack.
 * Reasoning maps to `reasoningEffort` (OpenAI streams no reasoning text on Chat Completions;
 * it reports reasoning tokens in usage, and the router's `progress` events cover the silence).
 * @packageDocumentation
 */
import { createOpenAI } from '@ai-sdk/openai';
import { tappedFetch } from '../activity';
import type { ResolvedProvider } from '../config';
import type { NormalizedChatRequest } from '../types';
import { TERMINAL_FRAMES, aiSdkProvider } from './ai-sdk';
import { type ChatProvider, type ProviderDeps, secretsOf } from './provider';

/** `reasoningEffort` for a request, under the given provider-options key. */
export function openaiReasoning(req: NormalizedChatRequest, key = 'openai'): { providerOptions?: Record<string, Record<string, unknown>> } {
  const r = req.reasoning;
  if (!r || r.enabled === false) return {};
  return { providerOptions: { [key]: { reasoningEffort: r.effort ?? 'medium' } } };
}

/** Create the OpenAI provider from its config entry (`OPENAI_API_KEY`, `OPENAI_BASE_URL`). */
export function createOpenAIProvider(cfg: ResolvedProvider, deps: ProviderDeps = {}): ChatProvider {
  const openai = createOpenAI({ apiKey: cfg.apiKey ?? '', baseURL: cfg.baseURL, fetch: tappedFetch(deps.fetch) });
  return aiSdkProvider(
    {
      name: cfg.name,
      kind: 'openai',
      defaultModel: cfg.defaultModel,
      secrets: secretsOf(cfg),
      model: (id) => openai.chat(id),
      callOptions: (req) => openaiReasoning(req),
      terminal: TERMINAL_FRAMES.openai,
    },
    deps,
  );
}
