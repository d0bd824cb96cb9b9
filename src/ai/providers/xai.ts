/**
 * xAI (Grok) through `@ai-sdk/xai`: Chat Completions at `https://api.x.ai/v1`, Bearer key.
 * Reasoning text arrives as `reasoning_content` deltas; effort maps to xAI's `low`/`high`.
 * @packageDocumentation
 */
import { createXai } from '@ai-sdk/xai';
import { tappedFetch } from '../activity';
import type { ResolvedProvider } from '../config';
import { TERMINAL_FRAMES, aiSdkProvider } from './ai-sdk';
import { type ChatProvider, type ProviderDeps, secretsOf } from './provider';

/** Create the xAI provider (`XAI_API_KEY`, `XAI_BASE_URL`). */
export function createXaiProvider(cfg: ResolvedProvider, deps: ProviderDeps = {}): ChatProvider {
  const xai = createXai({ apiKey: cfg.apiKey ?? '', baseURL: cfg.baseURL, fetch: tappedFetch(deps.fetch) });
  return aiSdkProvider(
    {
      name: cfg.name,
      kind: 'xai',
      defaultModel: cfg.defaultModel,
      secrets: secretsOf(cfg),
      model: (id) => xai.chat(id),
      callOptions: (req) => {
        const r = req.reasoning;
        if (!r || r.enabled === false || r.effort === undefined) return {};
        return { providerOptions: { xai: { reasoningEffort: r.effort === 'low' ? 'low' : 'high' } } };
      },
      terminal: TERMINAL_FRAMES.openai,
    },
    deps,
  );
}
