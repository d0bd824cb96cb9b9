/**
 * OpenRouter through `@openrouter/ai-sdk-provider` (its own AI SDK provider, Chat Completions
 * at `https://openrouter.ai/api/v1`). Reasoning maps to OpenRouter's `reasoning` object
 * (`effort`, `max_tokens`, `enabled`); the configured `routing` and a request's
 * `providerOptions.openrouter` (e.g. `{"provider": {"order": ["groq"]}}`) pass through to the
 * request body. OpenRouter sends `: OPENROUTER PROCESSING` comments while queued: activity.
 * @packageDocumentation
 */
import { createOpenRouter } from '@openrouter/ai-sdk-provider';
import { tappedFetch } from '../activity';
import type { ResolvedProvider } from '../config';
import { type LanguageModelV3, TERMINAL_FRAMES, aiSdkProvider, budgetFor } from './ai-sdk';
import { type ChatProvider, type ProviderDeps, secretsOf } from './provider';

/** Create the OpenRouter provider (`OPENROUTER_API_KEY`, `OPENROUTER_BASE_URL`). */
export function createOpenRouterProvider(cfg: ResolvedProvider, deps: ProviderDeps = {}): ChatProvider {
  const openrouter = createOpenRouter({
    apiKey: cfg.apiKey ?? '',
    baseURL: cfg.baseURL,
    fetch: tappedFetch(deps.fetch),
    compatibility: 'strict',
  });
  return aiSdkProvider(
    {
      name: cfg.name,
      kind: 'openrouter',
      defaultModel: cfg.defaultModel,
      secrets: secretsOf(cfg),
      model: (id) => openrouter.chat(id, { usage: { include: true } }) as unknown as LanguageModelV3,
      callOptions: (req) => {
        const options: Record<string, unknown> = {};
        if (cfg.openrouter?.routing) options.provider = cfg.openrouter.routing;
        const r = req.reasoning;
        if (r) {
          options.reasoning =
            r.enabled === false
              ? { enabled: false }
              : r.budgetTokens !== undefined
                ? { max_tokens: budgetFor(r) }
                : { effort: r.effort ?? 'medium' };
        }
        return Object.keys(options).length ? { providerOptions: { openrouter: options } } : {};
      },
      terminal: TERMINAL_FRAMES.openai,
    },
    deps,
  );
}
