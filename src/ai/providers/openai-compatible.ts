/**
 * Any server speaking OpenAI Chat Completions (vLLM, llama.cpp, LM Studio, DeepSeek, …)
 * through `@ai-sdk/openai-compatible`. Several may be configured, each under its own name.
 * `reasoning_content` deltas (DeepSeek-R1 on vLLM) become reasoning events; effort is sent as
 * `reasoning_effort`.
 * @packageDocumentation
 */
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { tappedFetch } from '../activity';
import type { ResolvedProvider } from '../config';
import { TERMINAL_FRAMES, aiSdkProvider } from './ai-sdk';
import { openaiReasoning } from './openai';
import { type ChatProvider, type ProviderDeps, secretsOf } from './provider';

/** Create a compatible provider from its `providers.compatible.<name>` entry. */
export function createOpenAICompatibleProvider(cfg: ResolvedProvider, deps: ProviderDeps = {}): ChatProvider {
  if (!cfg.baseURL) throw new Error(`compatible provider ${cfg.name} has no baseURL`);
  const compatible = createOpenAICompatible({
    name: cfg.name,
    baseURL: cfg.baseURL,
    ...(cfg.apiKey ? { apiKey: cfg.apiKey } : {}),
    // Without it the SDK never asks for the usage chunk and reports no token counts.
    includeUsage: true,
    fetch: tappedFetch(deps.fetch),
  });
  return aiSdkProvider(
    {
      name: cfg.name,
      kind: 'openai-compatible',
      defaultModel: cfg.defaultModel,
      secrets: secretsOf(cfg),
      model: (id) => compatible.chatModel(id),
      callOptions: (req) => openaiReasoning(req, cfg.name),
      terminal: TERMINAL_FRAMES.openai,
      capabilities: { images: cfg.images ?? true, tools: cfg.tools ?? true },
    },
    deps,
  );
}
