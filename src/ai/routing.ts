/**
 * Which provider and model serve a request, from the request's `model` field: an explicit
 * `provider/model`, a bare provider name, or a bare model id whose shape names its provider
 * (family prefixes, and Ollama's `name:tag`).
 * @packageDocumentation
 */
import type { ResolvedConfig } from './config';
import { ChatError } from './types';

/** A provider name and the model id to send it. */
export interface Route {
  /** Configured name of the provider (a built-in name or a `compatible` entry's key). */
  provider: string;
  /** Model id as the provider expects it, without the `provider/` prefix. */
  model: string;
}

/** Bare model ids whose family identifies the provider. */
const PREFIX_RULES: Array<{ test: RegExp; provider: string }> = [
  { test: /^gemini-/, provider: 'gemini' },
  { test: /^gpt-/, provider: 'openai' },
  // The o-series: o1, o1-mini, o3-mini, o4-mini-high, …
  { test: /^o\d/, provider: 'openai' },
  { test: /^claude-/, provider: 'anthropic' },
  { test: /^grok-/, provider: 'xai' },
];

/**
 * Ollama names models `name:tag` (`llama3.2:3b`, `gpt-oss:20b`); no cloud provider's bare ids
 * contain a `:` (Bedrock's do, e.g. `…-v1:0`, but those start with a vendor and a dot, and are
 * asked for as `bedrock/…`). Checked before the family prefixes, so `gpt-oss:20b` is Ollama's.
 */
const OLLAMA_TAG = /^[a-z0-9][a-z0-9._-]*:[a-z0-9._-]+$/i;

/**
 * Resolve `model` to a route:
 * - `provider/model` → that provider (a configured name, a compatible name, or `echo`); the
 *   model may itself contain `/`, only the first one splits;
 * - a bare configured provider name → that provider with its default model;
 * - `name:tag` (`gpt-oss:20b`, `llama3.2:3b`) → ollama;
 * - `gemini-*` → gemini, `gpt-*` and `o<digit>*` → openai, `claude-*` → anthropic, `grok-*` → xai;
 * - any other bare id → the default provider with that model id;
 * - absent → the default provider with its default model.
 *
 * @throws {ChatError} `UNKNOWN_PROVIDER` when the provider named or implied is not configured;
 *   `NO_PROVIDER` when no model id can be determined (a provider without a default model).
 */
export function resolveRoute(model: string | undefined, config: ResolvedConfig): Route {
  if (model === undefined) return withDefaultModel(config.default, config);
  const slash = model.indexOf('/');
  if (slash >= 0) {
    const provider = model.slice(0, slash);
    const rest = model.slice(slash + 1);
    requireConfigured(provider, config, model);
    return rest ? { provider, model: rest } : withDefaultModel(provider, config);
  }
  if (config.providers[model]) return withDefaultModel(model, config);
  if (OLLAMA_TAG.test(model) && !/^[a-z]+\.[a-z]/i.test(model)) {
    requireConfigured('ollama', config, model);
    return { provider: 'ollama', model };
  }
  const rule = PREFIX_RULES.find((r) => r.test.test(model));
  if (rule) {
    requireConfigured(rule.provider, config, model);
    return { provider: rule.provider, model };
  }
  return { provider: config.default, model };
}

/** The provider with its default model. */
export function withDefaultModel(provider: string, config: ResolvedConfig): Route {
  const p = config.providers[provider];
  if (!p) throw unknownProvider(provider, config, provider);
  if (!p.defaultModel) {
    throw new ChatError('NO_PROVIDER', `provider "${provider}" has no default model; ask for "${provider}/<model>"`, { provider });
  }
  return { provider, model: p.defaultModel };
}

function requireConfigured(provider: string, config: ResolvedConfig, asked: string): void {
  if (!config.providers[provider]) throw unknownProvider(provider, config, asked);
}

function unknownProvider(provider: string, config: ResolvedConfig, asked: string): ChatError {
  return new ChatError(
    'UNKNOWN_PROVIDER',
    `model "${asked}" needs provider "${provider}", which is not configured (configured: ${Object.keys(config.providers).join(', ')})`,
    { provider },
  );
}
