/**
 * Provider factory: one {@link ChatProvider} per configured entry, chosen by kind.
 */
import type { ResolvedProvider } from '../config';
import { createAnthropicProvider } from './anthropic';
import { createEchoProvider } from './echo';
import { createGeminiProvider } from './gemini';
import { createOllamaProvider } from './ollama';
import { createOpenAIProvider } from './openai';
import { createOpenAICompatibleProvider } from './openai-compatible';
import type { ChatProvider, ProviderDeps } from './provider';

export type { ChatProvider, ProviderDeps } from './provider';
export { createAnthropicProvider, ANTHROPIC_DEFAULT_MAX_TOKENS } from './anthropic';
export { createEchoProvider, echoReply, echoChunks, countWords, ECHO_PREFIX } from './echo';
export { createGeminiProvider } from './gemini';
export { createOllamaProvider } from './ollama';
export { createOpenAIProvider } from './openai';
export { createOpenAICompatibleProvider } from './openai-compatible';

/** Create the provider for a resolved config entry. */
export function createProvider(cfg: ResolvedProvider, deps: ProviderDeps = {}): ChatProvider {
  switch (cfg.kind) {
    case 'gemini':
      return createGeminiProvider(cfg, deps);
    case 'openai':
      return createOpenAIProvider(cfg, deps);
    case 'anthropic':
      return createAnthropicProvider(cfg, deps);
    case 'openai-compatible':
      return createOpenAICompatibleProvider(cfg, deps);
    case 'ollama':
      return createOllamaProvider(cfg, deps);
    case 'echo':
      return createEchoProvider(cfg.name);
  }
}
