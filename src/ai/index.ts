/**
 * AI chat provider routing layer: routes an editor's chat request to Gemini, OpenAI,
 * Anthropic, Ollama, any OpenAI-compatible server or the offline echo provider, and streams
 * the reply back as events.
 *
 * ```ts
 * import { ChatRouter, loadConfig } from './ai'
 * const router = new ChatRouter(loadConfig({ file: 'ai.json' }), { logger, registry })
 * server.handleStream('chat', async function* (payload, ctx) { yield* router.chat(payload, { signal: ctx.signal }) })
 * ```
 *
 * @packageDocumentation
 */
export { ChatRouter, type ChatRouterOptions, type ChatOptions } from './router';
export {
  ChatError,
  ChatRequestSchema,
  ChatMessageSchema,
  parseChatRequest,
  normalizeChatRequest,
  type ChatErrorCode,
  type ChatErrorOptions,
  type ChatEvent,
  type ChatStartEvent,
  type ChatDeltaEvent,
  type ChatFinishEvent,
  type ChatRequest,
  type ChatUsage,
  type NormalizedChatRequest,
  type ProviderEvent,
} from './types';
export {
  loadConfig,
  listProviders,
  readConfigFile,
  mergeConfig,
  ConfigError,
  ConfigFileSchema,
  DEFAULTS as CONFIG_DEFAULTS,
  BUILTIN_PROVIDER_NAMES,
  type ConfigInput,
  type LoadConfigOptions,
  type ProviderInfo,
  type ProviderKind,
  type ResolvedConfig,
  type ResolvedProvider,
  type RetryPolicy,
  type Timeouts,
} from './config';
export { resolveRoute, type Route } from './routing';
export { classifyError, parseRetryAfter, geminiRetryDelayMs, redact } from './errors';
export type { ClassifyContext, HeaderBag } from './errors';
export { backoffDelay } from './retry';
export { chatMetrics, METRIC_NAMES, type ChatMetrics } from './metrics';
export { createProvider, createEchoProvider, echoReply, type ChatProvider, type ProviderDeps } from './providers';
