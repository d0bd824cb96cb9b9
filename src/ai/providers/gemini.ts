/**
 * Google Gemini through `@ai-sdk/google`. The key travels in the `x-goog-api-key` header,
 * never in the URL.
 */
import { createGoogleGenerativeAI } from '@ai-sdk/google';
import type { ResolvedProvider } from '../config';
import { aiSdkProvider } from './ai-sdk';
import { type ChatProvider, type ProviderDeps, secretsOf } from './provider';

/** Create the Gemini provider from its config entry (`GEMINI_API_KEY`, `GEMINI_BASE_URL`). */
export function createGeminiProvider(cfg: ResolvedProvider, deps: ProviderDeps = {}): ChatProvider {
  const google = createGoogleGenerativeAI({
    // An explicit '' stops the SDK from reading GOOGLE_GENERATIVE_AI_API_KEY behind our back.
    apiKey: cfg.apiKey ?? '',
    baseURL: cfg.baseURL,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
  });
  return aiSdkProvider(
    { name: cfg.name, kind: 'gemini', defaultModel: cfg.defaultModel, secrets: secretsOf(cfg), model: (id) => google(id) },
    deps,
  );
}
