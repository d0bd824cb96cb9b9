/**
 * Turning whatever a provider, the AI SDK or the network threw into a {@link ChatError}:
 * HTTP statuses, error objects that arrive in mid-stream, network failures and aborts, plus
 * the provider's requested retry delay. Every message surfaced is scrubbed of API keys.
 *
 * The AI SDK's error classes come from `@ai-sdk/provider` (what the provider packages throw);
 * the `ai` package is not needed for them.
 * @packageDocumentation
 */
import { APICallError, InvalidResponseDataError, LoadAPIKeyError } from '@ai-sdk/provider';
import { ChatError, type ChatErrorCode } from './types';

/** Context for classification. */
export interface ClassifyContext {
  /** Provider name, attached to the error. */
  provider?: string;
  /** Secrets to scrub from any text surfaced (the provider's API key, at least). */
  secrets?: readonly string[];
}

const REDACTED = '[REDACTED]';

/**
 * Remove secrets from text: every known secret verbatim, plus the shapes keys take in URLs
 * and headers, in case a proxy or SDK echoes a key we were not told about.
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) {
    // Very short strings would shred ordinary words; real keys are far longer.
    if (s.length >= 6) out = out.split(s).join(REDACTED);
  }
  return out
    .replace(/([?&](?:key|api_key|apikey|access_token)=)[^&\s"']+/gi, `$1${REDACTED}`)
    .replace(/(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/g, `$1${REDACTED}`)
    .replace(/\b(sk-[A-Za-z0-9_-]{3})[A-Za-z0-9_-]{8,}/g, `$1${REDACTED}`)
    .replace(/\bAIza[0-9A-Za-z_-]{20,}/g, REDACTED);
}

/** HTTP status → error code and retryability. */
export function codeForStatus(status: number): { code: ChatErrorCode; retryable: boolean } {
  // 402: out of credit (OpenRouter); like Anthropic's billing_error, no retry fixes it.
  if (status === 401 || status === 402 || status === 403) return { code: 'AUTH', retryable: false };
  // 408 is the server giving up waiting for us, which a new request usually cures.
  if (status === 408) return { code: 'TIMEOUT', retryable: true };
  // 409: OpenAI and Anthropic use it for transient lock conflicts; their own SDKs retry it.
  if (status === 409 || status === 429) return { code: 'RATE_LIMITED', retryable: true };
  // 529 is Anthropic's "overloaded".
  if (status === 503 || status === 529) return { code: 'OVERLOADED', retryable: true };
  if (status >= 500) return { code: 'SERVER_ERROR', retryable: status !== 501 };
  return { code: 'BAD_REQUEST', retryable: false };
}

/** Anthropic `error.type` (HTTP body or mid-stream `event: error`) → error code. */
const ANTHROPIC_TYPES: Record<string, { code: ChatErrorCode; retryable: boolean }> = {
  invalid_request_error: { code: 'BAD_REQUEST', retryable: false },
  request_too_large: { code: 'BAD_REQUEST', retryable: false },
  not_found_error: { code: 'BAD_REQUEST', retryable: false },
  authentication_error: { code: 'AUTH', retryable: false },
  permission_error: { code: 'AUTH', retryable: false },
  billing_error: { code: 'AUTH', retryable: false },
  rate_limit_error: { code: 'RATE_LIMITED', retryable: true },
  api_error: { code: 'SERVER_ERROR', retryable: true },
  overloaded_error: { code: 'OVERLOADED', retryable: true },
  timeout_error: { code: 'TIMEOUT', retryable: true },
};

/** OpenAI `error.type` / `error.code` of a mid-stream error object → error code. */
const OPENAI_TYPES: Record<string, { code: ChatErrorCode; retryable: boolean }> = {
  server_error: { code: 'SERVER_ERROR', retryable: true },
  invalid_request_error: { code: 'BAD_REQUEST', retryable: false },
  rate_limit_exceeded: { code: 'RATE_LIMITED', retryable: true },
  requests: { code: 'RATE_LIMITED', retryable: true },
  tokens: { code: 'RATE_LIMITED', retryable: true },
  // Out of credit: a 429 that no amount of waiting fixes.
  insufficient_quota: { code: 'RATE_LIMITED', retryable: false },
};

/**
 * Bedrock exception types (`:exception-type` of an event-stream frame, `x-amzn-errortype`
 * or `__type` of an error body) → error code.
 */
const BEDROCK_TYPES: Record<string, { code: ChatErrorCode; retryable: boolean }> = {
  throttlingException: { code: 'RATE_LIMITED', retryable: true },
  ThrottlingException: { code: 'RATE_LIMITED', retryable: true },
  serviceUnavailableException: { code: 'OVERLOADED', retryable: true },
  ServiceUnavailableException: { code: 'OVERLOADED', retryable: true },
  modelNotReadyException: { code: 'OVERLOADED', retryable: true },
  internalServerException: { code: 'SERVER_ERROR', retryable: true },
  InternalServerException: { code: 'SERVER_ERROR', retryable: true },
  modelStreamErrorException: { code: 'SERVER_ERROR', retryable: true },
  validationException: { code: 'BAD_REQUEST', retryable: false },
  ValidationException: { code: 'BAD_REQUEST', retryable: false },
  AccessDeniedException: { code: 'AUTH', retryable: false },
  UnrecognizedClientException: { code: 'AUTH', retryable: false },
};

/**
 * Whether an error text says the prompt is longer than the model's context (OpenAI
 * `context_length_exceeded`, Anthropic "prompt is too long", Gemini "exceeds the maximum
 * number of tokens", Bedrock "Input is too long", Ollama/llama.cpp "context length").
 */
export function isContextLengthMessage(text: string): boolean {
  return /context_length_exceeded|context length|context window|prompt is too long|input is too long|maximum context|exceeds the maximum number of tokens|too many tokens/i.test(
    text,
  );
}

/** google.rpc status names (Gemini bodies and mid-stream errors) → HTTP status. */
const GOOGLE_STATUS: Record<string, number> = {
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 400,
  OUT_OF_RANGE: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  RESOURCE_EXHAUSTED: 429,
  CANCELLED: 499,
  INTERNAL: 500,
  UNKNOWN: 500,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
};

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ConnectionRefused',
  'ConnectionClosed',
  'FailedToOpenSocket',
]);

export type HeaderBag = Headers | Record<string, string | undefined> | undefined;

function header(headers: HeaderBag, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const bag = headers as Record<string, string | undefined>;
  for (const k of Object.keys(bag)) if (k.toLowerCase() === name) return bag[k];
  return undefined;
}

/**
 * Requested retry delay from `retry-after-ms` (milliseconds, OpenAI) or `retry-after`
 * (seconds or an HTTP date). Undefined when absent or unparseable.
 */
export function parseRetryAfter(headers: HeaderBag, now: number = Date.now()): number | undefined {
  const ms = header(headers, 'retry-after-ms');
  if (ms !== undefined) {
    const v = Number(ms);
    if (Number.isFinite(v) && v >= 0) return v;
  }
  const ra = header(headers, 'retry-after');
  if (ra === undefined || ra.trim() === '') return undefined;
  const secs = Number(ra);
  if (Number.isFinite(secs)) return secs >= 0 ? secs * 1000 : undefined;
  const at = Date.parse(ra);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Gemini's retry delay, which comes only in the body: the `google.rpc.RetryInfo` entry of
 * `error.details[]`, whose `retryDelay` is a protobuf Duration string such as `"45.8s"`.
 */
export function geminiRetryDelayMs(body: unknown): number | undefined {
  const details = (body as { error?: { details?: unknown } } | undefined)?.error?.details;
  if (!Array.isArray(details)) return undefined;
  for (const d of details) {
    if (d?.['@type'] !== 'type.googleapis.com/google.rpc.RetryInfo') continue;
    const m = /^(\d+(?:\.\d+)?)s$/.exec(String(d.retryDelay ?? '').trim());
    if (m) return Math.round(Number(m[1]) * 1000);
  }
  return undefined;
}

function parseBody(err: APICallError): unknown {
  if (err.data !== undefined) return err.data;
  if (!err.responseBody) return undefined;
  try {
    return JSON.parse(err.responseBody);
  } catch {
    return undefined;
  }
}

function isAbortError(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  return name === 'AbortError' || name === 'ResponseAborted';
}

/** The first `code` found along an error's `cause` chain. */
function causeCode(err: unknown): string | undefined {
  const seen = new Set<unknown>();
  for (let e = err; e && typeof e === 'object' && !seen.has(e); e = (e as { cause?: unknown }).cause) {
    seen.add(e);
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/**
 * Build the error for an HTTP error response. Used directly by hand-written providers and for
 * the AI SDK's `APICallError`.
 */
export function errorForStatus(status: number, detail: string, ctx: ClassifyContext & { headers?: HeaderBag; body?: unknown }): ChatError {
  let { code, retryable } = codeForStatus(status);
  const errBody = (ctx.body as { error?: { type?: unknown; details?: unknown } } | undefined)?.error;
  const reasons = Array.isArray(errBody?.details) ? errBody.details.map((d: { reason?: unknown } | null) => d?.reason) : [];
  // Gemini answers a bad key with 400; only the ErrorInfo reason says it is an auth failure.
  if (reasons.includes('API_KEY_INVALID') || reasons.includes('API_KEY_SERVICE_BLOCKED')) {
    code = 'AUTH';
    retryable = false;
  }
  if (errBody?.type === 'insufficient_quota') retryable = false;
  const errCode = (errBody as { code?: unknown } | undefined)?.code;
  if (code === 'BAD_REQUEST' && (errCode === 'context_length_exceeded' || isContextLengthMessage(detail))) code = 'CONTEXT_LENGTH';
  const retryAfterMs = parseRetryAfter(ctx.headers) ?? geminiRetryDelayMs(ctx.body);
  const message = redact(`${ctx.provider ?? 'provider'} returned HTTP ${status}${detail ? `: ${detail}` : ''}`, ctx.secrets);
  return new ChatError(code, message, { retryable, provider: ctx.provider, httpStatus: status, retryAfterMs });
}

/**
 * Classify an error object the provider sent inside a 200 stream (no HTTP status):
 * Anthropic `{ type: 'overloaded_error', message }`, OpenAI `{ message, type, code }`,
 * Gemini `{ code, status, message }`.
 */
export function classifyStreamError(obj: unknown, ctx: ClassifyContext): ChatError {
  const o = (obj ?? {}) as { type?: unknown; code?: unknown; status?: unknown; message?: unknown; error?: unknown };
  // Some senders wrap it once more: { error: { … } } or { type: 'error', error: { … } }.
  if (o.error && typeof o.error === 'object') return classifyStreamError(o.error, ctx);
  const message = typeof o.message === 'string' ? o.message : safeStringify(obj);
  const mapped = lookup(o.code, ANTHROPIC_TYPES, OPENAI_TYPES, BEDROCK_TYPES) ??
    lookup(o.type, ANTHROPIC_TYPES, OPENAI_TYPES, BEDROCK_TYPES) ??
    (typeof o.code === 'number' ? codeForStatus(o.code) : undefined) ??
    (lookup(o.status, GOOGLE_STATUS) !== undefined ? codeForStatus(lookup(o.status, GOOGLE_STATUS)!) : undefined) ?? {
      code: 'PROVIDER_ERROR' as const,
      retryable: false,
    };
  const kind = typeof o.type === 'string' ? o.type : typeof o.status === 'string' ? o.status : undefined;
  return new ChatError(
    mapped.code === 'BAD_REQUEST' && isContextLengthMessage(message) ? 'CONTEXT_LENGTH' : mapped.code,
    redact(`${ctx.provider ?? 'provider'} stream error${kind ? ` (${kind})` : ''}: ${message}`, ctx.secrets),
    { retryable: mapped.retryable, provider: ctx.provider },
  );
}

/** A stream that stopped without its terminal frame. Retryable: the next try usually completes. */
export function truncatedError(provider: string | undefined, detail: string): ChatError {
  return new ChatError('TRUNCATED', `${provider ?? 'provider'} stream ended early: ${detail}`, { retryable: true, provider });
}

/**
 * Classify anything thrown while talking to a provider.
 *
 * Order matters: an `APICallError` may wrap a network failure, and a stream that dies after
 * HTTP 200 surfaces as an `APICallError` with status 200 whose cause is the socket error.
 */
export function classifyError(err: unknown, ctx: ClassifyContext = {}): ChatError {
  const provider = ctx.provider;
  if (err instanceof ChatError) {
    const message = redact(err.message, ctx.secrets);
    if (message === err.message && (err.provider || !provider)) return err;
    return new ChatError(err.code, message, {
      retryable: err.retryable,
      provider: err.provider ?? provider,
      httpStatus: err.httpStatus,
      retryAfterMs: err.retryAfterMs,
    });
  }
  if (isAbortError(err)) return new ChatError('CANCELLED', 'request cancelled', { provider });
  if (
    LoadAPIKeyError.isInstance(err) ||
    (err instanceof Error && /AWS credential provider failed|AWS SigV4 authentication requires/.test(err.message))
  ) {
    const detail = LoadAPIKeyError.isInstance(err)
      ? 'no usable API key configured'
      : redact(err instanceof Error ? err.message : '', ctx.secrets);
    return new ChatError('AUTH', `${provider ?? 'provider'}: ${detail}`, { provider });
  }
  if (APICallError.isInstance(err)) {
    const status = err.statusCode;
    if (status !== undefined && (status < 200 || status >= 300)) {
      return errorForStatus(status, err.message, { ...ctx, headers: err.responseHeaders, body: parseBody(err) });
    }
    const code = causeCode(err.cause);
    if (status !== undefined) {
      // HTTP 200 and then the body failed: the connection died mid-stream.
      return truncatedError(provider, redact(`${err.message}${code ? ` (${code})` : ''}`, ctx.secrets));
    }
    return new ChatError('NETWORK', redact(`${provider ?? 'provider'} unreachable: ${err.message}`, ctx.secrets), {
      retryable: true,
      provider,
    });
  }
  // @ai-sdk/openai-compatible reports a stream that stopped before its finish_reason this way.
  if (InvalidResponseDataError.isInstance(err) && /without a finish reason/i.test(err.message)) {
    return truncatedError(provider, err.message);
  }
  const code = causeCode(err);
  if ((code && NETWORK_CODES.has(code)) || (err instanceof TypeError && /fetch failed|terminated/i.test(err.message))) {
    const detail = err instanceof Error ? err.message : String(err);
    return new ChatError('NETWORK', redact(`${provider ?? 'provider'} unreachable: ${detail}${code ? ` (${code})` : ''}`, ctx.secrets), {
      retryable: true,
      provider,
    });
  }
  if (err instanceof Error) {
    return new ChatError('PROVIDER_ERROR', redact(`${provider ?? 'provider'} failed: ${err.message}`, ctx.secrets), { provider });
  }
  // Plain objects: the SDKs hand mid-stream error payloads through as-is.
  return classifyStreamError(err, ctx);
}

/** Own-property lookup, so a payload saying `"type": "constructor"` finds nothing. */
function lookup<T>(key: unknown, ...tables: Array<Record<string, T>>): T | undefined {
  if (typeof key !== 'string') return undefined;
  for (const t of tables) if (Object.hasOwn(t, key)) return t[key];
  return undefined;
}

function safeStringify(v: unknown): string {
  try {
    return typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  } catch {
    return String(v);
  }
}
