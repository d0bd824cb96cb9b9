/**
 * OpenAI through `@ai-sdk/openai`, on the Chat Completions API (`openai.chat(model)`):
 * `openai(model)` would call the Responses API, which compatible servers and proxies lack.
 */
import { createOpenAI } from '@ai-sdk/openai';
import type { ResolvedProvider } from '../config';
import { aiSdkProvider } from './ai-sdk';
import { type ChatProvider, type ProviderDeps, secretsOf } from './provider';

/** Create the OpenAI provider from its config entry (`OPENAI_API_KEY`, `OPENAI_BASE_URL`). */
export function createOpenAIProvider(cfg: ResolvedProvider, deps: ProviderDeps = {}): ChatProvider {
  const openai = createOpenAI({
    apiKey: cfg.apiKey ?? '',
    baseURL: cfg.baseURL,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
  });
  return aiSdkProvider(
    { name: cfg.name, kind: 'openai', defaultModel: cfg.defaultModel, secrets: secretsOf(cfg), model: (id) => openai.chat(id) },
    deps,
  );
}
