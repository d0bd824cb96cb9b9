/**
 * Prometheus metrics of the chat layer.
 */
import { Counter, Histogram, type Registry } from 'prom-client';

/** The metric objects the router updates. */
export interface ChatMetrics {
  /** Tries sent to a provider (each retry and fallback counts). */
  requests: Counter<'provider'>;
  /** Failed tries, by error code. */
  errors: Counter<'provider' | 'code'>;
  /** Tokens reported by providers; `direction` is `in` (prompt) or `out` (reply). */
  tokens: Counter<'provider' | 'direction'>;
  /** Seconds from sending a try to its first text chunk. */
  firstToken: Histogram<'provider'>;
}

/** Metric names, for dashboards and tests. */
export const METRIC_NAMES = {
  requests: 'lapce_ai_provider_requests_total',
  errors: 'lapce_ai_provider_errors_total',
  tokens: 'lapce_ai_provider_tokens_total',
  firstToken: 'lapce_ai_provider_first_token_seconds',
} as const;

// prom-client throws when a name is registered twice on one registry, so a second router on
// the same registry shares the first one's metrics instead.
const byRegistry = new WeakMap<Registry, ChatMetrics>();

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
  const existing = <T>(name: string): T | undefined => registry?.getSingleMetric(name) as T | undefined;
  const metrics: ChatMetrics = {
    requests:
      existing(METRIC_NAMES.requests) ??
      new Counter({
        name: METRIC_NAMES.requests,
        help: 'Chat requests sent to a provider, retries included',
        labelNames: ['provider'],
        registers,
      }),
    errors:
      existing(METRIC_NAMES.errors) ??
      new Counter({
        name: METRIC_NAMES.errors,
        help: 'Failed chat requests to a provider, by error code',
        labelNames: ['provider', 'code'],
        registers,
      }),
    tokens:
      existing(METRIC_NAMES.tokens) ??
      new Counter({ name: METRIC_NAMES.tokens, help: 'Tokens reported by providers', labelNames: ['provider', 'direction'], registers }),
    firstToken:
      existing(METRIC_NAMES.firstToken) ??
      new Histogram({
        name: METRIC_NAMES.firstToken,
        help: 'Seconds from sending a chat request to its first text chunk',
        labelNames: ['provider'],
        buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32],
        registers,
      }),
  };
  if (registry) byRegistry.set(registry, metrics);
  return metrics;
}
