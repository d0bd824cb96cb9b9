/**
 * Provider factory: one {@link ChatProvider} per configured entry, chosen by kind. This is our
 * provider registry; the AI SDK's `createProviderRegistry` is not used because it resolves
 * `provider:model` strings to models only, while a route here also needs the provider's
 * capabilities, secrets for redaction, cooldown state and a hand-written Ollama adapter.
 * @packageDocumentation
 */
import type { ResolvedProvider } from '../config';
import { createAnthropicProvider } from './anthropic';
import { createAzureProvider } from './azure';
import { createBedrockProvider } from './bedrock';
import { createEchoProvider } from './echo';
import { createGeminiProvider } from './gemini';
import { createOllamaProvider } from './ollama';
import { createOpenAIProvider } from './openai';
import { createOpenAICompatibleProvider } from './openai-compatible';
import { createOpenRouterProvider } from './openrouter';
import type { ChatProvider, ProviderDeps } from './provider';
import { createVertexProvider } from './vertex';
import { createXaiProvider } from './xai';

export type { ChatProvider, ProviderCapabilities, ProviderDeps, StreamHooks } from './provider';
export { createAnthropicProvider, ANTHROPIC_DEFAULT_MAX_TOKENS } from './anthropic';
export { createAzureProvider } from './azure';
export { createBedrockProvider, readProfileCredentials, type AwsCredentials } from './bedrock';
export { createEchoProvider, echoReply, echoChunks, countWords, ECHO_PREFIX } from './echo';
export { createGeminiProvider } from './gemini';
export { createOllamaProvider, toOllamaBody } from './ollama';
export { createOpenAIProvider } from './openai';
export { createOpenAICompatibleProvider } from './openai-compatible';
export { createOpenRouterProvider } from './openrouter';
export { createVertexProvider } from './vertex';
export { createXaiProvider } from './xai';

/** Create the provider for a resolved config entry. */
export function createProvider(cfg: ResolvedProvider, deps: ProviderDeps = {}): ChatProvider {
  switch (cfg.kind) {
    case 'gemini':
      return createGeminiProvider(cfg, deps);
    case 'openai':
      return createOpenAIProvider(cfg, deps);
    case 'anthropic':
      return createAnthropicProvider(cfg, deps);
    case 'azure':
      return createAzureProvider(cfg, deps);
    case 'bedrock':
      return createBedrockProvider(cfg, deps);
    case 'vertex':
      return createVertexProvider(cfg, deps);
    case 'xai':
      return createXaiProvider(cfg, deps);
    case 'openrouter':
      return createOpenRouterProvider(cfg, deps);
    case 'openai-compatible':
      return createOpenAICompatibleProvider(cfg, deps);
    case 'ollama':
      return createOllamaProvider(cfg, deps);
    case 'echo':
      return createEchoProvider(cfg.name);
  }
}
