/**
 * The contract between the router and a provider module.
 */
import type { Logger } from 'pino';
import type { ProviderKind, ResolvedProvider } from '../config';
import type { NormalizedChatRequest, ProviderEvent } from '../types';

/**
 * A chat backend. `stream` yields `delta`s and ends with exactly one `finish`; anything else
 * (HTTP error, error frame, truncation) is thrown as a `ChatError` with `provider` set and
 * secrets scrubbed. Aborting `signal` must abort the HTTP request; so must ending the
 * iteration early (`return()`).
 */
export interface ChatProvider {
  /** Configured name (`openai`, `echo`, or a compatible provider's name). */
  readonly name: string;
  readonly kind: ProviderKind;
  /** Model used when the request names none. */
  readonly defaultModel?: string;
  stream(req: NormalizedChatRequest, model: string, signal: AbortSignal): AsyncIterable<ProviderEvent>;
}

/** What provider factories get from the router besides their own config entry. */
export interface ProviderDeps {
  /** `fetch` to use for HTTP (tests and proxies); global `fetch` when absent. */
  fetch?: typeof fetch;
  /** For debug-level notes such as SDK warnings; never given prompts or keys. */
  logger?: Logger;
}

/** The secrets of a provider entry, for scrubbing error text. */
export function secretsOf(cfg: ResolvedProvider): string[] {
  return cfg.apiKey ? [cfg.apiKey] : [];
}
