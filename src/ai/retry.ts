/**
 * Backoff between tries of one provider: exponential with full jitter, floored by the
 * provider's requested wait and capped by the policy. The router decides what to do when
 * the provider asks for more than the cap (fall back at once, or wait the full time).
 *
 * Hand-written rather than the AI SDK's retry (`streamText`'s `maxRetries`, which does read
 * `retry-after`/`retry-after-ms`): the SDK's wait ignores Gemini's RetryInfo, which comes only
 * in the body (see REFERENCE.md, AI SDK gaps), and retries inside one provider with no view
 * of the fallback chain, cooldowns or the chat's deadline.
 * @packageDocumentation
 */
import type { RetryPolicy } from './config';
import { ChatError } from './types';

/**
 * How long to wait after failed try number `attempt` (1-based).
 *
 * Exponential backoff with full jitter — a random wait in [0, min(max, base·2^(attempt-1))] —
 * so clients that failed together do not retry together. A wait the provider asked for
 * (`retry-after`, Gemini's RetryInfo) is a floor, since retrying sooner is refused anyway;
 * everything is capped at `maxDelayMs` so one provider cannot stall a chat for minutes.
 */
export function backoffDelay(attempt: number, policy: RetryPolicy, retryAfterMs?: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  const jittered = Math.floor(random() * ceiling);
  const wanted = retryAfterMs !== undefined ? Math.max(retryAfterMs, jittered) : jittered;
  return Math.min(wanted, policy.maxDelayMs);
}

/**
 * Sleep that ends early when `signal` aborts.
 * @throws {ChatError} `CANCELLED` if aborted.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new ChatError('CANCELLED', 'request cancelled'));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new ChatError('CANCELLED', 'request cancelled'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
