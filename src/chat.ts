/**
 * lapce-ai-ipc/chat: the AI chat backend that runs on the IPC server.
 *
 * {@link attachChatBackend} adds the `chat` stream and the `providers` method to an `IpcServer`;
 * {@link loadConfig} reads the providers (Gemini, OpenAI, Anthropic, OpenAI-compatible, Ollama, the
 * offline `echo`) from the environment and a JSON file; the chat events and errors are typed here.
 * @example
 * ```ts
 * import { IpcServer } from 'lapce-ai-ipc';
 * import { attachChatBackend, loadConfig } from 'lapce-ai-ipc/chat';
 *
 * const server = new IpcServer({ socketPath: '/run/user/1000/ai.sock' });
 * attachChatBackend(server, { config: loadConfig({ file: 'ai.json' }) });
 * await server.listen();
 * ```
 * @packageDocumentation
 * @module lapce-ai-ipc/chat
 */
export { attachChatBackend, createChatBackend, CHAT_METHOD, PROVIDERS_METHOD } from './backend';
export type { ChatBackend, ChatBackendOptions, ProvidersReply } from './backend';
export { ChatRouter } from './ai/router';
export type { ChatRouterOptions, ChatOptions, Cooldown } from './ai/router';
export type { Route } from './ai/routing';
export { ChatError, CHAT_ERROR_CODES } from './ai/types';
export type {
  ChatErrorCode,
  ChatErrorOptions,
  ChatEvent,
  ChatStartEvent,
  ChatDeltaEvent,
  ChatReasoningEvent,
  ChatToolCallStartEvent,
  ChatToolCallDeltaEvent,
  ChatToolCallEvent,
  ChatProgressEvent,
  ChatFinishEvent,
  ChatTiming,
  ChatRequest,
  ChatMessage,
  ContentPart,
  TextPart,
  ImagePart,
  ToolCallInput,
  ToolSpec,
  ToolChoice,
  ReasoningOptions,
  ChatUsage,
  FailedAttempt,
} from './ai/types';
export { describeFallback, errorLine } from './ai/report';
export type { ErrorLine } from './ai/report';
export { loadConfig, listProviders, ConfigError, BUILTIN_PROVIDER_NAMES } from './ai/config';
export type {
  ConfigInput,
  LoadConfigOptions,
  ProviderInfo,
  ProviderKind,
  ResolvedConfig,
  ResolvedProvider,
  RetryPolicy,
  CooldownPolicy,
  Timeouts,
} from './ai/config';
export { METRIC_NAMES as CHAT_METRIC_NAMES } from './ai/metrics';
