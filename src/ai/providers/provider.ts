/**
 * The contract between the router and a provider module: a provider streams
 * {@link ProviderEvent}s for a normalized request, reports raw activity through
 * {@link StreamHooks}, says what it can take ({@link ProviderCapabilities}), and throws only
 * `ChatError`s with its name set and secrets scrubbed.
 * @packageDocumentation
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
  /** What the provider accepts; the router refuses other requests with `BAD_REQUEST` before sending. */
  readonly capabilities: ProviderCapabilities;
  stream(req: NormalizedChatRequest, model: string, signal: AbortSignal, hooks?: StreamHooks): AsyncIterable<ProviderEvent>;
}

/** What a provider can take in a request. */
export interface ProviderCapabilities {
  images: boolean;
  tools: boolean;
}

/** Callbacks of one stream. */
export interface StreamHooks {
  /**
   * Bytes arrived from the provider (any event, keep-alives included), whether or not they
   * make an event: the router's first-event and between-events timers count it.
   */
  onActivity?(): void;
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
  return [cfg.apiKey, cfg.bedrock?.secretAccessKey, cfg.bedrock?.sessionToken].filter((s): s is string => s !== undefined);
}
