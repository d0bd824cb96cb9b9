/**
 * The chat layer's vocabulary: the request schema (text, images, tools, reasoning controls,
 * a per-request fallback list), the events a chat streams (text, reasoning, tool calls,
 * progress, finish with usage and timing), and the one error type every failure is turned
 * into, {@link ChatError}, an {@link IpcError} whose code is UPPER_SNAKE like every other code
 * on the wire. The schema is strict (an unknown field is a typo, reported by name) and treats
 * an explicit `null` for an optional field as absent, since the editor's UI sends both.
 * @packageDocumentation
 */
import { z } from 'zod';
import { IpcError } from '../errors';

/** An optional field (`null` is removed before validation, see {@link withoutNulls}). */
function opt<T extends z.ZodType>(schema: T) {
  return schema.optional();
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The editor's UI sends `null` for an optional field it leaves empty: drop those keys from the
 * request, its messages and its reasoning object, so `null` means absent and the TypeScript
 * types stay plain optional fields.
 */
export function withoutNulls(v: unknown): unknown {
  if (!isPlainObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === null) continue;
    if (k === 'messages' && Array.isArray(x)) out[k] = x.map((m) => (isPlainObject(m) ? dropNulls(m) : m));
    else if (k === 'reasoning' && isPlainObject(x)) out[k] = dropNulls(x);
    else out[k] = x;
  }
  return out;
}

function dropNulls(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== null));
}

/** Image types every provider that takes images accepts. */
export const IMAGE_MEDIA_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'] as const;

/** Largest image accepted, in base64 characters (about 15 MB of image). */
export const MAX_IMAGE_BASE64 = 20 * 1024 * 1024;

/** A text part of a message. */
export const TextPartSchema = z.strictObject({ type: z.literal('text'), text: z.string() });

/** An image part: base64 data (no `data:` URL prefix) and its media type. */
export const ImagePartSchema = z.strictObject({
  type: z.literal('image'),
  mediaType: z.enum(IMAGE_MEDIA_TYPES),
  data: z
    .string()
    .min(4)
    .max(MAX_IMAGE_BASE64)
    .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64 (no data: prefix)'),
});

/** A tool call the assistant made earlier in the conversation. */
export const ToolCallSchema = z.strictObject({
  id: z.string().min(1),
  name: z.string().min(1),
  /** Arguments as JSON text (as streamed) or as the parsed object. */
  arguments: z.union([z.string(), z.record(z.string(), z.unknown())]),
});

/** One message of a conversation. */
export const ChatMessageSchema = z.discriminatedUnion('role', [
  z.strictObject({ role: z.literal('system'), content: z.string() }),
  z.strictObject({ role: z.literal('user'), content: z.union([z.string(), z.array(z.union([TextPartSchema, ImagePartSchema])).min(1)]) }),
  z.strictObject({
    role: z.literal('assistant'),
    content: opt(z.string()),
    toolCalls: opt(z.array(ToolCallSchema).max(128)),
  }),
  z.strictObject({
    role: z.literal('tool'),
    /** The `id` of the assistant's tool call this answers. */
    toolCallId: z.string().min(1),
    /** The tool's name (Gemini and Ollama match results by name). */
    name: z.string().min(1),
    content: z.string(),
  }),
]);

/** A tool the model may call: name, description and JSON Schema of its arguments. */
export const ToolSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, "_" and "-", at most 64'),
  description: opt(z.string()),
  /** JSON Schema of the arguments object. */
  parameters: z.record(z.string(), z.unknown()).refine((s) => s.type === undefined || s.type === 'object', 'must describe an object'),
});

/** `auto` (model decides), `none`, `required` (some tool), or one named tool. */
export const ToolChoiceSchema = z.union([z.enum(['auto', 'none', 'required']), z.strictObject({ name: z.string().min(1) })]);

/**
 * Reasoning ("thinking") controls, mapped per provider: Anthropic `thinking` with a budget,
 * Gemini `thinkingConfig` (`includeThoughts`, `thinkingBudget`), OpenAI/Azure/xAI reasoning
 * effort, Ollama `think`, Bedrock `reasoningConfig`, OpenRouter `reasoning`.
 */
export const ReasoningSchema = z.strictObject({
  /** `false` turns reasoning off where the provider allows it; absent = the provider's default. */
  enabled: opt(z.boolean()),
  effort: opt(z.enum(['low', 'medium', 'high'])),
  /** Token budget for thinking (Anthropic, Gemini, Bedrock); at least 1024 on Anthropic. */
  budgetTokens: opt(z.number().int().min(0).max(1_000_000)),
});

/**
 * A chat request as sent by the editor. Strict: unknown keys are rejected, so a typo in a
 * field name fails loudly instead of being silently ignored. `null` for an optional field is
 * the same as leaving it out.
 *
 * - `model`: `provider/model` (e.g. `openai/gpt-4o-mini`, `echo/any`), a bare model id routed
 *   by rule (`gemini-*`, `gpt-*`, `o1`…, `claude-*`, `grok-*`, a `:` tag for Ollama), a bare
 *   provider name, or absent for the configured default.
 * - `models`: more models to try, in order, when the first fails before its first token
 *   (before the configured fallback chain), as OpenRouter's `models` does.
 * - `system`, `temperature` (0..2), `maxTokens`.
 * - `tools`, `toolChoice`: function calling; `reasoning`: thinking controls.
 * - `providerOptions`: passed as-is to the AI SDK provider under its key (e.g.
 *   `{"openrouter": {"provider": {"order": ["groq"]}}}`).
 */
const ChatRequestObject = z.strictObject({
  model: opt(z.string().min(1)),
  models: opt(z.array(z.string().min(1)).max(8)),
  messages: z.array(ChatMessageSchema).min(1),
  system: opt(z.string()),
  temperature: opt(z.number().min(0).max(2)),
  maxTokens: opt(z.number().int().positive()),
  tools: opt(z.array(ToolSchema).max(128)),
  toolChoice: opt(ToolChoiceSchema),
  reasoning: opt(ReasoningSchema),
  providerOptions: opt(z.record(z.string(), z.record(z.string(), z.unknown()))),
});

/** The request schema, with `null` for any optional field read as absent. */
export const ChatRequestSchema = z.preprocess(withoutNulls, ChatRequestObject);

/** A text part of a user message. */
export interface TextPart {
  /** Discriminator of {@link ContentPart}. */
  type: 'text';
  /** The text; parts of one message are joined without a separator. */
  text: string;
}

/** An image part of a user message: base64 data (no `data:` prefix) and its media type. */
export interface ImagePart {
  /** Discriminator of {@link ContentPart}. */
  type: 'image';
  /** `image/png`, `image/jpeg`, `image/gif` or `image/webp`: the types every image-capable provider accepts. */
  mediaType: (typeof IMAGE_MEDIA_TYPES)[number];
  /**
   * The image bytes in base64, without a `data:` URL prefix, at most 20 MiB of base64
   * (about 15 MB of image). Sent to a provider that does not take images, the chat fails with `BAD_REQUEST`.
   */
  data: string;
}

/** A text or image part of a user message. */
export type ContentPart = TextPart | ImagePart;

/** A tool call of an earlier assistant turn, as the editor sends it back. */
export interface ToolCallInput {
  /** The id the model gave the call (`tool-call` event `id`); the `tool` message answering it repeats it. */
  id: string;
  /** Name of the tool called, one of the request's `tools`. */
  name: string;
  /** JSON text (as streamed) or the parsed object. */
  arguments: string | Record<string, unknown>;
}

/** One message of a conversation, as the editor sends it. */
export type ChatMessage =
  | {
      /** An instruction; every system message (and the request's `system`) is folded into one, up front. */
      role: 'system';
      /** The instruction text. */
      content: string;
    }
  | {
      /** What the person wrote. */
      role: 'user';
      /** Plain text, or text and image parts (at least one). */
      content: string | ContentPart[];
    }
  | {
      /** An earlier reply of the model, sent back as conversation history. */
      role: 'assistant';
      /** The reply text; may be absent when the turn was only tool calls. */
      content?: string;
      /** The tool calls the model made in that turn (at most 128), each answered by a later `tool` message. */
      toolCalls?: ToolCallInput[];
    }
  | {
      /** The result of running a tool the model called. */
      role: 'tool';
      /** The `id` of the assistant's tool call this answers. */
      toolCallId: string;
      /** The tool's name; Gemini and Ollama match results to calls by name, not id. */
      name: string;
      /** The tool's output as text (serialise structured results to JSON yourself). */
      content: string;
    };

/**
 * A chat request, as the editor sends it and as validation returns it. Validation is strict: an
 * unknown field is rejected by name (a typo fails loudly), and `null` for an optional field is
 * the same as leaving it out. A payload that fails it ends the chat with `BAD_REQUEST` before
 * anything is sent to a provider.
 */
export interface ChatRequest {
  /**
   * Where to send the chat: `provider/model` (e.g. `openai/gpt-4o-mini`, `echo/any`), a bare
   * model id routed by its family (`gemini-*`, `gpt-*`, `o1`…, `claude-*`, `grok-*`, a `name:tag`
   * for Ollama), a bare provider name (its default model), or absent for the configured default.
   * A provider that is not configured fails the chat with `UNKNOWN_PROVIDER`.
   */
  model?: string;
  /**
   * Up to 8 more models, in the same forms as `model`, tried in order when the previous one fails
   * with a retryable error before its first token, before the configured fallback chain (like
   * OpenRouter's `models`). Once text has streamed a chat never switches provider, so the
   * editor never shows a reply spliced from two models.
   */
  models?: string[];
  /** The conversation, oldest first; at least one user or assistant message. */
  messages: ChatMessage[];
  /** A system instruction, placed before any system messages of `messages`. */
  system?: string;
  /** Sampling temperature, 0 to 2; absent = the provider's default. */
  temperature?: number;
  /** Cap on the reply's tokens; a reply cut by it finishes with `finishReason` `length`. */
  maxTokens?: number;
  /** Functions the model may call (at most 128); calls arrive as `tool-call-*` events. */
  tools?: ToolSpec[];
  /** Whether and which tool the model must call; absent = `auto`. */
  toolChoice?: ToolChoice;
  /** Reasoning ("thinking") controls, mapped to each provider's own parameter. */
  reasoning?: ReasoningOptions;
  /**
   * Passed as-is to the AI SDK provider under its key, for settings this API does not model,
   * e.g. `{"openrouter": {"provider": {"order": ["groq"]}}}`. Not validated here: the provider decides.
   */
  providerOptions?: Record<string, Record<string, unknown>>;
}

// The schema and the interface say the same: this fails to compile if they drift apart.
const _schemaMatchesType = (parsed: z.output<typeof ChatRequestObject>): ChatRequest => parsed;
void _schemaMatchesType;
/** A tool definition: name, description, JSON Schema of the arguments object. */
export interface ToolSpec {
  /** 1 to 64 letters, digits, `_` or `-`, the subset every provider accepts. */
  name: string;
  /** What the tool does and when to use it; the model reads this to decide whether to call it. */
  description?: string;
  /** JSON Schema of the arguments; its `type`, when given, must be `object`. */
  parameters: Record<string, unknown>;
}
/** Which tool the model may or must call: `auto`, `none`, `required`, or the named one. */
export type ToolChoice =
  | 'auto'
  | 'none'
  | 'required'
  | {
      /** The tool the model must call, one of the request's `tools`. */
      name: string;
    };
/** Reasoning controls (absent = the provider's default). */
export interface ReasoningOptions {
  /** `false` turns reasoning off where the provider allows it; `true` asks for it on models that make it optional. */
  enabled?: boolean;
  /** Effort level for providers that take one (OpenAI, Azure, xAI, OpenRouter). */
  effort?: 'low' | 'medium' | 'high';
  /** Token budget for thinking (Anthropic, Gemini, Bedrock); Anthropic requires at least 1024. */
  budgetTokens?: number;
}
/** A tool call of an earlier assistant turn, arguments as parsed JSON. */
export interface PriorToolCall {
  id: string;
  name: string;
  arguments: Record<string, unknown>;
}

/** A conversation turn as providers receive it. */
export type NormalizedMessage =
  | { role: 'user'; content: string | ContentPart[] }
  | { role: 'assistant'; content: string; toolCalls?: PriorToolCall[] }
  | { role: 'tool'; toolCallId: string; name: string; content: string };

/**
 * A chat request as providers receive it: every system instruction folded into `system`
 * (several providers accept only one, and only up front), the other turns in `messages`.
 */
export interface NormalizedChatRequest extends Pick<
  ChatRequest,
  'temperature' | 'maxTokens' | 'tools' | 'toolChoice' | 'reasoning' | 'providerOptions'
> {
  system?: string;
  messages: NormalizedMessage[];
}

/**
 * Token counts of one reply, as the provider reported them: a count the provider did not
 * send is absent, never guessed. `reasoningTokens` is part of `outputTokens`;
 * `cachedInputTokens` is part of `inputTokens`.
 */
export interface ChatUsage {
  /** Prompt tokens, the whole conversation included. */
  inputTokens?: number;
  /** Reply tokens, reasoning included. */
  outputTokens?: number;
  /** The part of `outputTokens` spent on reasoning. */
  reasoningTokens?: number;
  /** The part of `inputTokens` served from the provider's prompt cache (usually billed lower). */
  cachedInputTokens?: number;
}

/** A provider that failed before the one that answered, as `start` reports it. */
export interface FailedAttempt {
  /** Provider that failed. */
  provider: string;
  /** Model it was asked for. */
  model: string;
  /** Why it failed (its last try's error). */
  code: ChatErrorCode;
  /** The error message, safe to show: keys scrubbed, no prompt. */
  message: string;
}

/**
 * First event of a successful chat (after any `progress`): which provider and model are
 * answering, and the providers that failed before it (`fallbackFrom`, absent when the first
 * choice answered).
 */
export interface ChatStartEvent {
  /** Discriminator of {@link ChatEvent}. */
  type: 'start';
  /** Configured name of the provider answering. */
  provider: string;
  /** Model id sent to that provider. */
  model: string;
  /** Providers that failed before this one, in the order tried; absent when the first choice answered. */
  fallbackFrom?: FailedAttempt[];
}

/** A piece of the reply text. */
export interface ChatDeltaEvent {
  /** Discriminator of {@link ChatEvent}. */
  type: 'delta';
  /** The next piece of text; append it to the previous pieces. */
  text: string;
}

/** A piece of the model's reasoning ("thinking"); never part of the reply text. */
export interface ChatReasoningEvent {
  /** Discriminator of {@link ChatEvent}. */
  type: 'reasoning';
  /** The next piece of reasoning text, as the provider exposes it (some send only a summary). */
  text: string;
}

/** The model started a tool call. */
export interface ChatToolCallStartEvent {
  /** Discriminator of {@link ChatEvent}. */
  type: 'tool-call-start';
  /** Id of the call; its `tool-call-delta` and `tool-call` events carry the same id. */
  id: string;
  /** Name of the tool being called. */
  name: string;
}

/** More of a tool call's arguments (JSON text; concatenated they are the arguments). */
export interface ChatToolCallDeltaEvent {
  /** Discriminator of {@link ChatEvent}. */
  type: 'tool-call-delta';
  /** Id of the call these arguments belong to; several calls may stream interleaved. */
  id: string;
  /** The next piece of the arguments' JSON text; not valid JSON on its own. */
  argumentsDelta: string;
}

/** A complete tool call: run the tool, then send its result as a `tool` message. */
export interface ChatToolCallEvent {
  /** Discriminator of {@link ChatEvent}. */
  type: 'tool-call';
  /** Id of the call; send it back as `toolCallId` of the `tool` message with the result. */
  id: string;
  /** Name of the tool to run. */
  name: string;
  /** Arguments as JSON text. */
  arguments: string;
}

/**
 * A keep-alive telling the editor what is happening while nothing else is shown:
 * - `waiting`: the request is sent and the provider has not answered yet (queued);
 * - `working`: the provider is sending (keep-alives, hidden reasoning) but nothing to show;
 * - `retrying`: a try failed; the next starts after `delayMs` (or another provider next).
 */
export interface ChatProgressEvent {
  /** Discriminator of {@link ChatEvent}. */
  type: 'progress';
  /** What the chat is doing, see above. */
  state: 'waiting' | 'working' | 'retrying';
  /** Provider being waited for, or (`retrying`) the one that failed. */
  provider: string;
  /** Milliseconds since the chat started. */
  elapsedMs: number;
  /** `retrying` only: the try that failed, its error code, the wait before the next. */
  attempt?: number;
  /** `retrying` only: the error code of the try that failed. */
  code?: ChatErrorCode;
  /** `retrying` only: milliseconds before the next try (absent when the next provider is tried at once). */
  delayMs?: number;
}

/** When the first provider event and the first text arrived, from the answering try's start. */
export interface ChatTiming {
  /** Any event (reasoning, tool delta, keep-alive bytes) counts. */
  firstEventMs?: number;
  /** The first reply text (absent for a reply of only tool calls). */
  firstTextMs?: number;
  /** From the answering try's start to the end of its stream. */
  totalMs: number;
}

/**
 * Last event of a successful chat. `finishReason` is the AI SDK's unified reason (`stop`,
 * `length`, `content-filter`, `tool-calls`, `other`) or the provider's own word where it has no
 * unified equivalent. `responseId` is the provider's id of the response (OpenAI `chatcmpl-…`,
 * Anthropic `msg_…`, Gemini `responseId`, Bedrock request id), when it sent one.
 */
export interface ChatFinishEvent {
  /** Discriminator of {@link ChatEvent}. */
  type: 'finish';
  /** Why the model stopped, see above; `length` means `maxTokens` or the model's limit cut the reply. */
  finishReason: string;
  /** Token counts the provider reported; empty when it reported none. */
  usage: ChatUsage;
  /** The provider's id of the response, for its logs and support requests. */
  responseId?: string;
  /** When the first event and first text arrived; added by the router, absent from a provider's own event. */
  timing?: ChatTiming;
}

/**
 * What `ChatRouter.chat` yields: any `progress`, then `start`, then `delta`, `reasoning`,
 * tool-call and `progress` events, then `finish`.
 */
export type ChatEvent =
  | ChatStartEvent
  | ChatDeltaEvent
  | ChatReasoningEvent
  | ChatToolCallStartEvent
  | ChatToolCallDeltaEvent
  | ChatToolCallEvent
  | ChatProgressEvent
  | ChatFinishEvent;

/** What a provider yields: the router adds `start`, `progress` and `timing` itself. */
export type ProviderEvent =
  ChatDeltaEvent | ChatReasoningEvent | ChatToolCallStartEvent | ChatToolCallDeltaEvent | ChatToolCallEvent | ChatFinishEvent;

/**
 * Every kind of failure a chat can end with, UPPER_SNAKE on the wire like every IPC code. Each
 * value is a one-line meaning for people (CLI help, logs); the code itself is what a client
 * branches on, with `retryable` (on the error) telling whether sending the request again may help.
 */
export const CHAT_ERROR_CODES = {
  /** Not retryable: fix the request. The message names every invalid field (zod path). */
  BAD_REQUEST: 'the request is invalid, or asks for something the provider cannot do (e.g. images)',
  /** Not retryable: set or fix the provider's key (HTTP 401/402/403, billing errors). */
  AUTH: 'the provider refused the credentials (401/403, bad key, no key)',
  /**
   * Retryable after `retryAfterMs` (the router already waited and retried); not retryable when
   * the account is out of quota (OpenAI `insufficient_quota`). Starts a cooldown of the provider.
   */
  RATE_LIMITED: 'the provider asked us to slow down (429, 409); retryable unless out of quota',
  /** Retryable, usually after a short wait; starts a cooldown of the provider. */
  OVERLOADED: 'the provider is overloaded (503, 529)',
  /** Retryable, except HTTP 501 (the provider does not implement the call); starts a cooldown. */
  SERVER_ERROR: 'the provider failed (5xx, in-stream server error)',
  /**
   * Not retryable as is: shorten the conversation or pick a model with a longer context. The
   * router first tries the configured `contextFallback`, if any.
   */
  CONTEXT_LENGTH: 'the conversation is longer than the model accepts',
  /** Retryable: one of the configured {@link Timeouts} ran out (or the provider answered 408). */
  TIMEOUT: 'no first event, no next event, or no complete reply in time',
  /** Retryable: the connection closed mid-stream, so any text already shown is incomplete. */
  TRUNCATED: 'the stream ended before its terminal frame',
  /** Retryable: DNS, refused or reset connection, TLS; the message carries the system error code. */
  NETWORK: 'the provider could not be reached',
  /** Not retryable: the client cancelled the stream or disconnected, or the server is shutting down. */
  CANCELLED: 'the caller cancelled',
  /** Not retryable: configure the provider or fix the `model` prefix. */
  UNKNOWN_PROVIDER: 'the model names a provider that is not configured',
  /**
   * Not retryable: no configured candidate can serve the request (e.g. the provider has no default
   * model and the request named none). When every candidate is only cooling down, the chat fails
   * instead with the cooldown's own code (`RATE_LIMITED`, …), retryable.
   */
  NO_PROVIDER: 'no provider could serve the request',
  /** Not retryable: the provider's reply was malformed (not JSON, an over-long line, a nameless tool call). */
  PROVIDER_ERROR: 'the provider sent something we could not use',
} as const;

/** A chat error code. */
export type ChatErrorCode = keyof typeof CHAT_ERROR_CODES;

/** Options of {@link ChatError} besides code and message. */
export interface ChatErrorOptions {
  /** Whether the same request may succeed if sent again (default false); the router retries and falls back only on these. */
  retryable?: boolean;
  /** Configured name of the provider that failed, when one did. */
  provider?: string;
  /** The provider's HTTP status, when the failure came with one. */
  httpStatus?: number;
  /** How long the provider asked us to wait before retrying. */
  retryAfterMs?: number;
  /** The underlying error, kept for logs; never sent on the wire. */
  cause?: unknown;
}

/**
 * The only error the chat layer throws. `message` is safe to show and log: API keys are
 * scrubbed from it and it never contains the prompt. On the wire (`toJSON`) it is the
 * {@link IpcError} form, with `provider`, `httpStatus` and `retryAfterMs` in `details`.
 */
export class ChatError extends IpcError {
  declare readonly code: ChatErrorCode;
  /** Configured name of the provider that failed; absent for errors before any provider was tried (e.g. `BAD_REQUEST`). */
  readonly provider?: string;
  /** The provider's HTTP status, when the failure came with one. */
  readonly httpStatus?: number;
  /** How long the provider asked us to wait (its `retry-after`), in milliseconds; wait at least this before retrying. */
  readonly retryAfterMs?: number;

  constructor(code: ChatErrorCode, message: string, opts: ChatErrorOptions = {}) {
    const details = Object.fromEntries(
      Object.entries({ provider: opts.provider, httpStatus: opts.httpStatus, retryAfterMs: opts.retryAfterMs }).filter(
        ([, v]) => v !== undefined,
      ),
    );
    super(code, message, { retryable: opts.retryable ?? false, cause: opts.cause, ...(Object.keys(details).length ? { details } : {}) });
    this.name = 'ChatError';
    this.provider = opts.provider;
    this.httpStatus = opts.httpStatus;
    this.retryAfterMs = opts.retryAfterMs;
  }
}

/** `a.b[0].c` style path of a zod issue, for messages a person can act on. */
export function formatIssuePath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out || '(root)';
}

/** One line per zod issue, each naming the offending field. */
export function formatZodError(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      // Unrecognized keys are reported on the parent object; name the keys themselves.
      if (i.code === 'unrecognized_keys') {
        const keys = (i as { keys: string[] }).keys;
        return keys.map((k) => `${formatIssuePath([...i.path, k])}: unknown field`).join('; ');
      }
      return `${formatIssuePath(i.path)}: ${i.message}`;
    })
    .join('; ');
}

/**
 * Validate an untrusted chat payload.
 * @throws {ChatError} code `BAD_REQUEST` naming every invalid field.
 */
export function parseChatRequest(payload: unknown): ChatRequest {
  const parsed = ChatRequestSchema.safeParse(payload);
  if (!parsed.success) throw new ChatError('BAD_REQUEST', `invalid chat request: ${formatZodError(parsed.error)}`);
  return parsed.data;
}

/**
 * Fold system instructions into one `system` string, keep the conversation turns, parse
 * prior tool-call arguments and check that tool results answer a call.
 * @throws {ChatError} `BAD_REQUEST` when no user or assistant message is left, or a tool
 *   call's arguments are not a JSON object.
 */
export function normalizeChatRequest(req: ChatRequest): NormalizedChatRequest {
  const systemParts = req.system !== undefined && req.system !== '' ? [req.system] : [];
  const messages: NormalizedMessage[] = [];
  for (const [i, m] of req.messages.entries()) {
    if (m.role === 'system') systemParts.push(m.content);
    else if (m.role === 'user') messages.push({ role: 'user', content: m.content });
    else if (m.role === 'tool') messages.push({ role: 'tool', toolCallId: m.toolCallId, name: m.name, content: m.content });
    else {
      const toolCalls = m.toolCalls?.map((c, j) => ({
        id: c.id,
        name: c.name,
        arguments: parseArguments(c.arguments, `messages[${i}].toolCalls[${j}]`),
      }));
      messages.push({ role: 'assistant', content: m.content ?? '', ...(toolCalls?.length ? { toolCalls } : {}) });
    }
  }
  if (!messages.some((m) => m.role === 'user' || m.role === 'assistant')) {
    throw new ChatError('BAD_REQUEST', 'invalid chat request: messages: needs at least one user or assistant message');
  }
  const has = <K extends keyof ChatRequest>(k: K) => req[k] !== undefined;
  return {
    ...(systemParts.length ? { system: systemParts.join('\n\n') } : {}),
    messages,
    ...(has('temperature') ? { temperature: req.temperature } : {}),
    ...(has('maxTokens') ? { maxTokens: req.maxTokens } : {}),
    ...(req.tools?.length
      ? {
          tools: req.tools.map((t) => ({
            name: t.name,
            ...(t.description ? { description: t.description } : {}),
            parameters: t.parameters,
          })),
        }
      : {}),
    ...(has('toolChoice') ? { toolChoice: req.toolChoice } : {}),
    ...(has('reasoning') ? { reasoning: stripUndefined(req.reasoning!) as ReasoningOptions } : {}),
    ...(has('providerOptions') ? { providerOptions: req.providerOptions } : {}),
  };
}

function parseArguments(args: string | Record<string, unknown>, where: string): Record<string, unknown> {
  if (typeof args !== 'string') return args;
  let parsed: unknown;
  try {
    parsed = args.trim() === '' ? {} : JSON.parse(args);
  } catch {
    throw new ChatError('BAD_REQUEST', `invalid chat request: ${where}.arguments: not JSON`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ChatError('BAD_REQUEST', `invalid chat request: ${where}.arguments: not a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/** Whether a request carries an image anywhere. */
export function hasImages(req: NormalizedChatRequest): boolean {
  return req.messages.some((m) => m.role === 'user' && typeof m.content !== 'string' && m.content.some((p) => p.type === 'image'));
}

/** The text of a user message's content. */
export function textOfContent(content: string | ContentPart[]): string {
  return typeof content === 'string' ? content : content.map((p) => (p.type === 'text' ? p.text : '')).join('');
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
