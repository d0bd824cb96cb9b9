/**
 * Anthropic through `@ai-sdk/anthropic` (Messages API, `x-api-key` header). Reasoning maps to
 * extended thinking (`thinking: {type: "enabled", budget_tokens}`); `thinking_delta`s become
 * reasoning events, `input_json_delta`s tool-call argument deltas.
 * @packageDocumentation
 */
import { createAnthropic } from '@ai-sdk/anthropic';
import { tappedFetch } from '../activity';
import type { ResolvedProvider } from '../config';
import { TERMINAL_FRAMES, aiSdkProvider, budgetFor } from './ai-sdk';
import { type ChatProvider, type ProviderDeps, secretsOf } from './provider';

/**
 * `max_tokens` is mandatory on the Messages API. Without one from the request the SDK guesses
 * per model and, for a model it does not know, warns and asks for 128k; a fixed, modest
 * default keeps chat replies bounded and behaviour the same for every model id.
 */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 8192;

/** Anthropic's smallest thinking budget. */
export const ANTHROPIC_MIN_THINKING_BUDGET = 1024;

/** Create the Anthropic provider from its config entry (`ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`). */
export function createAnthropicProvider(cfg: ResolvedProvider, deps: ProviderDeps = {}): ChatProvider {
  const anthropic = createAnthropic({ apiKey: cfg.apiKey ?? '', baseURL: cfg.baseURL, fetch: tappedFetch(deps.fetch) });
  return aiSdkProvider(
    {
      name: cfg.name,
      kind: 'anthropic',
      defaultModel: cfg.defaultModel,
      secrets: secretsOf(cfg),
      terminal: TERMINAL_FRAMES.anthropic,
      model: (id) => anthropic(id),
      callOptions: (req) => {
        const r = req.reasoning;
        const thinking =
          r === undefined
            ? undefined
            : r.enabled === false
              ? { type: 'disabled' }
              : { type: 'enabled', budgetTokens: Math.max(ANTHROPIC_MIN_THINKING_BUDGET, budgetFor(r)) };
        return {
          ...(req.maxTokens === undefined ? { maxOutputTokens: ANTHROPIC_DEFAULT_MAX_TOKENS } : {}),
          ...(thinking ? { providerOptions: { anthropic: { thinking } } } : {}),
        };
      },
    },
    deps,
  );
}
