/**
 * AI chat provider routing layer: routes an editor's chat request to Gemini, OpenAI,
 * Anthropic, Azure OpenAI, Bedrock, Vertex AI, xAI, OpenRouter, Ollama, any OpenAI-compatible
 * server or the offline echo provider, and streams the reply back as events (text, reasoning,
 * tool calls, progress, finish with usage and timing).
 *
 * ```ts
 * import { ChatRouter, loadConfig } from './ai'
 * const router = new ChatRouter(loadConfig({ file: 'ai.json' }), { logger, registry })
 * server.handleStream('chat', async function* (payload, ctx) { yield* router.chat(payload, { signal: ctx.signal }) })
 * ```
 *
 * @packageDocumentation
 */
export { ChatRouter, type ChatRouterOptions, type ChatOptions, type Cooldown } from './router';
export {
  CHAT_ERROR_CODES,
  ChatError,
  ChatRequestSchema,
  ChatMessageSchema,
  IMAGE_MEDIA_TYPES,
  parseChatRequest,
  normalizeChatRequest,
  type ChatErrorCode,
  type ChatErrorOptions,
  type ChatEvent,
  type ChatStartEvent,
  type ChatDeltaEvent,
  type ChatReasoningEvent,
  type ChatToolCallStartEvent,
  type ChatToolCallDeltaEvent,
  type ChatToolCallEvent,
  type ChatProgressEvent,
  type ChatFinishEvent,
  type ChatTiming,
  type ChatRequest,
  type ChatUsage,
  type ContentPart,
  type TextPart,
  type ImagePart,
  type ChatMessage,
  type ToolCallInput,
  type FailedAttempt,
  type NormalizedChatRequest,
  type NormalizedMessage,
  type PriorToolCall,
  type ProviderEvent,
  type ReasoningOptions,
  type ToolChoice,
  type ToolSpec,
} from './types';
export { describeFallback, errorLine, type ErrorLine } from './report';
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
  type CooldownPolicy,
  type ResolvedProvider,
  type RetryPolicy,
  type Timeouts,
} from './config';
export { resolveRoute, type Route } from './routing';
export { classifyError, parseRetryAfter, geminiRetryDelayMs, redact, isContextLengthMessage } from './errors';
export type { ClassifyContext, HeaderBag } from './errors';
export { backoffDelay } from './retry';
export { chatMetrics, METRIC_NAMES, type ChatMetrics } from './metrics';
export {
  createProvider,
  createEchoProvider,
  echoReply,
  readProfileCredentials,
  type AwsCredentials,
  type ChatProvider,
  type ProviderCapabilities,
  type ProviderDeps,
  type StreamHooks,
} from './providers';
