/**
 * Prometheus metrics of the chat layer: tries, failures by code, tokens, time to first event
 * and to first text, fallbacks, and per-provider cooldowns (a gauge of the seconds left, and
 * a counter of cooldowns started).
 * @packageDocumentation
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The metric objects the router updates. */
export interface ChatMetrics {
  /** Tries sent to a provider (each retry and fallback counts). */
  requests: Counter<'provider'>;
  /** Failed tries, by error code. */
  errors: Counter<'provider' | 'code'>;
  /** Tokens reported by providers; `direction` is `in` (prompt), `out` (reply), `reasoning`, `cached`. */
  tokens: Counter<'provider' | 'direction'>;
  /** Seconds from sending a try to its first text. */
  firstToken: Histogram<'provider'>;
  /** Seconds from sending a try to the provider's first event of any kind. */
  firstEvent: Histogram<'provider'>;
  /** Chats that moved from one provider to the next. */
  fallbacks: Counter<'from' | 'to' | 'code'>;
  /** Cooldowns started, by the error that started them. */
  cooldowns: Counter<'provider' | 'code'>;
  /** Sources of the cooldown gauge: each router registers a function returning seconds left per provider. */
  cooldownSources: Set<() => Record<string, number>>;
}

/**
 * Prometheus names of the chat metrics, for dashboards, alerts and tests. They appear in the
 * registry passed to the router (the IPC server's, with `attachChatBackend`), so one `$metrics`
 * scrape shows the transport and the providers.
 */
export const METRIC_NAMES = {
  /** Counter, label `provider`: tries sent, each retry and fallback counted. */
  requests: 'lapce_ai_provider_requests_total',
  /** Counter, labels `provider`, `code` (a {@link ChatErrorCode}): failed tries. */
  errors: 'lapce_ai_provider_errors_total',
  /** Counter, labels `provider`, `direction` (`in`, `out`, `reasoning`, `cached`): tokens the providers reported. */
  tokens: 'lapce_ai_provider_tokens_total',
  /** Histogram, label `provider`: seconds from sending a try to its first reply text, what a user waits for. */
  firstToken: 'lapce_ai_provider_first_token_seconds',
  /**
   * Histogram, label `provider`: seconds from sending a try to the provider's first event of any
   * kind; far below `firstToken` means the model is reasoning or calling tools before it writes.
   */
  firstEvent: 'lapce_ai_provider_first_event_seconds',
  /** Counter, labels `from`, `to`, `code`: chats handed from one provider to the next, and why. */
  fallbacks: 'lapce_ai_provider_fallbacks_total',
  /** Counter, labels `provider`, `code`: cooldowns started after 429/5xx. */
  cooldowns: 'lapce_ai_provider_cooldowns_total',
  /** Gauge, label `provider`: seconds left in its cooldown; new chats skip it while above 0. */
  cooldownSeconds: 'lapce_ai_provider_cooldown_seconds',
} as const;

// prom-client throws when a name is registered twice on one registry, so a second router on
// the same registry shares the first one's metrics instead.
const byRegistry = new WeakMap<Registry, ChatMetrics>();

const BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128];

/**
 * The chat metrics registered on `registry`, created on first use; without a registry they
 * are live but unregistered, so callers never need to check.
 */
export function chatMetrics(registry?: Registry): ChatMetrics {
  if (registry) {
    const known = byRegistry.get(registry);
    if (known) return known;
  }
  const registers = registry ? [registry] : [];
  const cooldownSources = new Set<() => Record<string, number>>();
  const metrics: ChatMetrics = {
    requests: new Counter({
      name: METRIC_NAMES.requests,
      help: 'Chat requests sent to a provider, retries included',
      labelNames: ['provider'],
      registers,
    }),
    errors: new Counter({
      name: METRIC_NAMES.errors,
      help: 'Failed chat requests to a provider, by error code',
      labelNames: ['provider', 'code'],
      registers,
    }),
    tokens: new Counter({
      name: METRIC_NAMES.tokens,
      help: 'Tokens reported by providers',
      labelNames: ['provider', 'direction'],
      registers,
    }),
    firstToken: new Histogram({
      name: METRIC_NAMES.firstToken,
      help: 'Seconds from sending a chat request to its first text',
      labelNames: ['provider'],
      buckets: BUCKETS,
      registers,
    }),
    firstEvent: new Histogram({
      name: METRIC_NAMES.firstEvent,
      help: "Seconds from sending a chat request to the provider's first event of any kind (reasoning, tool, keep-alive)",
      labelNames: ['provider'],
      buckets: BUCKETS,
      registers,
    }),
    fallbacks: new Counter({
      name: METRIC_NAMES.fallbacks,
      help: 'Chats handed from one provider to the next',
      labelNames: ['from', 'to', 'code'],
      registers,
    }),
    cooldowns: new Counter({
      name: METRIC_NAMES.cooldowns,
      help: 'Provider cooldowns started after 429/5xx',
      labelNames: ['provider', 'code'],
      registers,
    }),
    cooldownSources,
  };
  new Gauge({
    name: METRIC_NAMES.cooldownSeconds,
    help: "Seconds left in a provider's cooldown (new chats skip it while > 0)",
    labelNames: ['provider'],
    registers,
    collect() {
      this.reset();
      for (const source of cooldownSources) for (const [provider, s] of Object.entries(source())) this.set({ provider }, s);
    },
  });
  if (registry) byRegistry.set(registry, metrics);
  return metrics;
}
