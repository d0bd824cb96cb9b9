/**
 * What a command-line client says about a chat, as data and one-line text, so every client
 * (the CLI, an editor's log) says the same: which providers failed before the one that
 * answered, and a chat error in its wire form for `--json` output.
 * @packageDocumentation
 */
import { IpcError } from '../errors';
import type { ChatStartEvent } from './types';

/**
 * The stderr line for a `start` event when a fallback answered, or undefined when the first
 * choice did: `fallback: openai/gpt-4o-mini failed (RATE_LIMITED); answered by anthropic/claude-sonnet-4-5`.
 * Several failures are listed in order, separated by `, then `.
 */
export function describeFallback(start: ChatStartEvent): string | undefined {
  if (!start.fallbackFrom?.length) return undefined;
  const failed = start.fallbackFrom.map((f) => `${f.provider}/${f.model} failed (${f.code})`).join(', then ');
  return `fallback: ${failed}; answered by ${start.provider}/${start.model}`;
}

/** One JSON line for a failed chat in `--json` mode, beside the event lines. */
export interface ErrorLine {
  /** Tells this line apart from the chat's event lines, whose `type` is the event's. */
  type: 'error';
  /** A chat error code (`RATE_LIMITED`, …) or an IPC one (`CONNECTION_LOST`, …) when the transport failed. */
  code: string;
  /** The error message, safe to show: keys scrubbed, no prompt. */
  message: string;
  /** Whether sending the same request again may succeed. */
  retryable: boolean;
  /** Configured name of the provider that failed, when one did. */
  provider?: string;
  /** The provider's HTTP status, when it sent one. */
  httpStatus?: number;
  /** How long the provider asked to wait before a retry, in milliseconds. */
  retryAfterMs?: number;
}

/**
 * The `--json` line for an error that ended a chat (an `IpcError` as the client received
 * it, whose `details` carry the chat error's provider, HTTP status and wait).
 */
export function errorLine(e: unknown): ErrorLine {
  if (e instanceof IpcError) {
    const d = (e.details ?? {}) as { provider?: unknown; httpStatus?: unknown; retryAfterMs?: unknown };
    return {
      type: 'error',
      code: e.code,
      message: e.message,
      retryable: e.retryable,
      ...(typeof d.provider === 'string' ? { provider: d.provider } : {}),
      ...(typeof d.httpStatus === 'number' ? { httpStatus: d.httpStatus } : {}),
      ...(typeof d.retryAfterMs === 'number' ? { retryAfterMs: d.retryAfterMs } : {}),
    };
  }
  return { type: 'error', code: 'HANDLER_ERROR', message: e instanceof Error ? e.message : String(e), retryable: false };
}
