/**
 * The chat layer's vocabulary: the request schema, the events a chat streams, and the one
 * error type every failure is turned into.
 */
import { z } from 'zod';

/** One message of a conversation. */
export const ChatMessageSchema = z.strictObject({
  role: z.enum(['system', 'user', 'assistant']),
  content: z.string(),
});

/**
 * A chat request as sent by the editor. Strict: unknown keys are rejected, so a typo in a
 * field name fails loudly instead of being silently ignored.
 *
 * - `model`: `provider/model` (e.g. `openai/gpt-4o-mini`, `echo/any`), a bare model id routed
 *   by prefix (`gemini-*`, `gpt-*`, `o1`…, `claude-*`), a bare provider name, or absent for the
 *   configured default.
 * - `system`: system prompt; combined with any `system` messages.
 * - `temperature`: 0..2.
 * - `maxTokens`: upper bound on output tokens.
 */
export const ChatRequestSchema = z.strictObject({
  model: z.string().min(1).optional(),
  messages: z.array(ChatMessageSchema).min(1),
  system: z.string().optional(),
  temperature: z.number().min(0).max(2).optional(),
  maxTokens: z.number().int().positive().optional(),
});

/** A validated chat request. */
export type ChatRequest = z.infer<typeof ChatRequestSchema>;

/**
 * A chat request as providers receive it: every system instruction folded into `system`
 * (several providers accept only one, and only up front) and only user/assistant turns left
 * in `messages`.
 */
export interface NormalizedChatRequest {
  system?: string;
  messages: Array<{ role: 'user' | 'assistant'; content: string }>;
  temperature?: number;
  maxTokens?: number;
}

/** Token counts of one reply. Providers that report nothing give zeros. */
export interface ChatUsage {
  inputTokens: number;
  outputTokens: number;
}

/** First event of a successful chat: which provider and model are answering. */
export interface ChatStartEvent {
  type: 'start';
  provider: string;
  model: string;
}

/** A piece of the reply text. */
export interface ChatDeltaEvent {
  type: 'delta';
  text: string;
}

/**
 * Last event of a successful chat. `finishReason` is the AI SDK's unified reason (`stop`,
 * `length`, `content-filter`, `tool-calls`, `other`) or the provider's own word where it has no
 * unified equivalent.
 */
export interface ChatFinishEvent {
  type: 'finish';
  finishReason: string;
  usage: ChatUsage;
}

/** What `ChatRouter.chat` yields: `start`, then `delta`s, then `finish`. */
export type ChatEvent = ChatStartEvent | ChatDeltaEvent | ChatFinishEvent;

/** What a provider yields: the router adds `start` itself, once the first chunk arrived. */
export type ProviderEvent = ChatDeltaEvent | ChatFinishEvent;

/** Every kind of failure a chat can end with. */
export type ChatErrorCode =
  | 'bad_request'
  | 'auth'
  | 'rate_limited'
  | 'overloaded'
  | 'server_error'
  | 'timeout'
  | 'truncated'
  | 'network'
  | 'cancelled'
  | 'unknown_provider'
  | 'no_provider'
  | 'provider_error';

/** Options of {@link ChatError} besides code and message. */
export interface ChatErrorOptions {
  retryable?: boolean;
  provider?: string;
  httpStatus?: number;
  /** How long the provider asked us to wait before retrying. */
  retryAfterMs?: number;
}

/**
 * The only error the chat layer throws. `message` is safe to show and log: API keys are
 * scrubbed from it and it never contains the prompt.
 */
export class ChatError extends Error {
  override readonly name = 'ChatError';
  readonly code: ChatErrorCode;
  /** Whether trying again (same or another provider) may succeed. */
  readonly retryable: boolean;
  readonly provider?: string;
  readonly httpStatus?: number;
  readonly retryAfterMs?: number;

  constructor(code: ChatErrorCode, message: string, opts: ChatErrorOptions = {}) {
    super(message);
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.provider = opts.provider;
    this.httpStatus = opts.httpStatus;
    this.retryAfterMs = opts.retryAfterMs;
  }

  /** The wire form sent to the editor. */
  toJSON(): { code: ChatErrorCode; message: string; retryable: boolean; provider?: string; httpStatus?: number } {
    return { code: this.code, message: this.message, retryable: this.retryable, provider: this.provider, httpStatus: this.httpStatus };
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
 * @throws {ChatError} code `bad_request` naming every invalid field.
 */
export function parseChatRequest(payload: unknown): ChatRequest {
  const parsed = ChatRequestSchema.safeParse(payload);
  if (!parsed.success) throw new ChatError('bad_request', `invalid chat request: ${formatZodError(parsed.error)}`);
  return parsed.data;
}

/**
 * Fold system instructions into one `system` string and keep the conversation turns.
 * @throws {ChatError} `bad_request` when no user or assistant message is left.
 */
export function normalizeChatRequest(req: ChatRequest): NormalizedChatRequest {
  const systemParts = req.system !== undefined && req.system !== '' ? [req.system] : [];
  const messages: NormalizedChatRequest['messages'] = [];
  for (const m of req.messages) {
    if (m.role === 'system') systemParts.push(m.content);
    else messages.push({ role: m.role, content: m.content });
  }
  if (messages.length === 0) {
    throw new ChatError('bad_request', 'invalid chat request: messages: needs at least one user or assistant message');
  }
  return {
    ...(systemParts.length ? { system: systemParts.join('\n\n') } : {}),
    messages,
    ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
    ...(req.maxTokens !== undefined ? { maxTokens: req.maxTokens } : {}),
  };
}
