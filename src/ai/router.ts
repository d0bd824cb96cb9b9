/**
 * The chat router: validates a request, picks a provider, streams its reply as
 * {@link ChatEvent}s, and owns retries, fallback, timeouts, cancellation, metrics and logs.
 */
import pino, { type Logger } from 'pino';
import type { Registry } from 'prom-client';
import { type ProviderInfo, type ResolvedConfig, listProviders } from './config';
import { type DeadlineKind, StreamDeadlines } from './deadlines';
import { classifyError, truncatedError } from './errors';
import { type ChatMetrics, chatMetrics } from './metrics';
import { type ChatProvider, createProvider } from './providers';
import { backoffDelay, sleep } from './retry';
import { type Route, resolveRoute, withDefaultModel } from './routing';
import { ChatError, type ChatEvent, type NormalizedChatRequest, type ProviderEvent, normalizeChatRequest, parseChatRequest } from './types';

/** Options of {@link ChatRouter}. */
export interface ChatRouterOptions {
  /** Where to log; silent when absent. Info level never carries prompts, replies or keys. */
  logger?: Logger;
  /** Registry for the `lapce_ai_provider_*` metrics; unregistered when absent. */
  registry?: Registry;
  /** `fetch` for every provider's HTTP (proxies, tests); global `fetch` when absent. */
  fetch?: typeof fetch;
}

/** Options of one {@link ChatRouter.chat} call. */
export interface ChatOptions {
  /** Aborting it aborts the provider's HTTP request and ends the chat with `cancelled`. */
  signal?: AbortSignal;
}

const DEADLINE_WORDS: Record<DeadlineKind, string> = {
  first_chunk: 'first chunk',
  between_chunks: 'next chunk',
  total: 'complete reply',
};

/**
 * Routes chat requests to providers.
 *
 * ```ts
 * const router = new ChatRouter(loadConfig(), { logger, registry })
 * for await (const ev of router.chat({ messages: [{ role: 'user', content: 'hi' }] }, { signal })) …
 * ```
 */
export class ChatRouter {
  /** The configuration this router was built with. */
  readonly config: ResolvedConfig;
  private readonly providers = new Map<string, ChatProvider>();
  private readonly log: Logger;
  private readonly metrics: ChatMetrics;
  /** Every configured key, scrubbed from any error text whichever provider produced it. */
  private readonly secrets: string[];
  private chatCount = 0;

  constructor(config: ResolvedConfig, opts: ChatRouterOptions = {}) {
    this.config = config;
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'ai-router' });
    this.metrics = chatMetrics(opts.registry);
    this.secrets = Object.values(config.providers).flatMap((p) => (p.apiKey ? [p.apiKey] : []));
    for (const p of Object.values(config.providers)) {
      this.providers.set(p.name, createProvider(p, { fetch: opts.fetch, logger: this.log }));
    }
  }

  /** The configured providers (no keys), for a "list providers" command. */
  listProviders(): ProviderInfo[] {
    return listProviders(this.config);
  }

  /**
   * Where a request for `model` would go, without sending anything.
   * @throws {ChatError} `unknown_provider` or `no_provider`.
   */
  route(model?: string): Route {
    return resolveRoute(model, this.config);
  }

  /**
   * Stream a chat reply: `start` (once the provider produced its first chunk), `delta`s, then
   * `finish`. Failures are thrown as {@link ChatError}.
   *
   * Before the first chunk, retryable failures are retried with backoff and then handed to the
   * next provider of the fallback chain; after it, any failure ends the chat, since the editor
   * already shows part of the reply. Ending the iteration early aborts the provider's request.
   *
   * @param payload untrusted request, validated against `ChatRequestSchema`.
   * @throws {ChatError} `bad_request` for an invalid payload, `unknown_provider`, `cancelled`,
   *   or the last provider failure.
   */
  async *chat(payload: unknown, { signal }: ChatOptions = {}): AsyncGenerator<ChatEvent, void, undefined> {
    const chatId = ++this.chatCount;
    const parsed = parseChatRequest(payload);
    const req = normalizeChatRequest(parsed);
    const primary = resolveRoute(parsed.model, this.config);
    const plan = this.plan(primary);
    this.log.info(
      { chat: chatId, provider: primary.provider, model: primary.model, messages: req.messages.length, fallbacks: plan.length - 1 },
      'chat request',
    );
    if (signal?.aborted) throw new ChatError('cancelled', 'request cancelled');

    let lastError: ChatError | undefined;
    for (const [index, target] of plan.entries()) {
      if (index > 0) {
        this.log.info(
          { chat: chatId, from: plan[index - 1].provider, to: target.provider, model: target.model, code: lastError?.code },
          'falling back',
        );
      }
      for (let attempt = 1; attempt <= this.config.retry.maxAttempts; attempt++) {
        const progress = { started: false };
        try {
          yield* this.attempt(chatId, target, req, signal, progress);
          return;
        } catch (e) {
          const err = this.toChatError(e, target.provider);
          const giveUp = progress.started || !err.retryable || signal?.aborted;
          this.log.info(
            {
              chat: chatId,
              provider: target.provider,
              attempt,
              code: err.code,
              httpStatus: err.httpStatus,
              afterFirstChunk: progress.started,
            },
            giveUp ? 'chat failed' : 'provider try failed',
          );
          this.log.debug({ chat: chatId, provider: target.provider, error: err.message }, 'failure detail');
          if (giveUp) throw err;
          lastError = err;
          if (attempt < this.config.retry.maxAttempts) {
            const delayMs = backoffDelay(attempt, this.config.retry, err.retryAfterMs);
            this.log.info({ chat: chatId, provider: target.provider, attempt, delayMs, retryAfterMs: err.retryAfterMs }, 'retrying');
            await sleep(delayMs, signal);
          }
        }
      }
    }
    this.log.info({ chat: chatId, code: lastError?.code, providers: plan.map((p) => p.provider) }, 'chat failed on every provider');
    throw lastError ?? new ChatError('no_provider', 'no provider could serve the request');
  }

  /** The primary route followed by the fallback chain (each with its default model). */
  private plan(primary: Route): Route[] {
    const plan = [primary];
    for (const name of this.config.fallback) {
      if (plan.some((r) => r.provider === name)) continue;
      try {
        plan.push(withDefaultModel(name, this.config));
      } catch {
        // A fallback without a default model cannot be used blind; skip it.
        this.log.debug({ provider: name }, 'fallback provider has no default model; skipped');
      }
    }
    return plan;
  }

  /**
   * One try against one provider. Yields `start` on the first chunk, then the provider's events.
   * Its own AbortController, linked to the caller's signal and to the timeouts, is aborted on
   * every way out, so the provider's HTTP connection never outlives the try.
   */
  private async *attempt(
    chatId: number,
    target: Route,
    req: NormalizedChatRequest,
    signal: AbortSignal | undefined,
    progress: { started: boolean },
  ): AsyncGenerator<ChatEvent, void, undefined> {
    const provider = this.providers.get(target.provider)!;
    const labels = { provider: target.provider };
    const controller = new AbortController();
    let abortReason: ChatError | undefined;
    const abort = (err: ChatError) => {
      if (abortReason) return;
      abortReason = err;
      controller.abort(err);
    };
    const onCallerAbort = () => abort(new ChatError('cancelled', 'request cancelled', labels));
    if (signal?.aborted) onCallerAbort();
    signal?.addEventListener('abort', onCallerAbort, { once: true });
    const deadlines = new StreamDeadlines(this.config.timeouts, (kind, ms) =>
      abort(new ChatError('timeout', `${target.provider}: no ${DEADLINE_WORDS[kind]} within ${ms} ms`, { retryable: true, ...labels })),
    );

    this.metrics.requests.inc(labels);
    this.log.debug({ chat: chatId, ...labels, model: target.model }, 'sending to provider');
    const startedAt = performance.now();
    let iterator: AsyncIterator<ProviderEvent> | undefined;
    try {
      if (abortReason) throw abortReason;
      iterator = provider.stream(req, target.model, controller.signal)[Symbol.asyncIterator]();
      deadlines.start();
      for (;;) {
        let next: IteratorResult<ProviderEvent>;
        try {
          // A provider stuck in code that ignores its signal must not hang us.
          next = await untilAborted(iterator.next(), controller.signal);
        } catch (e) {
          throw abortReason ?? e;
        }
        deadlines.chunk();
        if (next.done) throw truncatedError(target.provider, 'provider ended without a finish event');
        const ev = next.value;
        if (!progress.started) {
          progress.started = true;
          const seconds = (performance.now() - startedAt) / 1000;
          this.metrics.firstToken.observe(labels, seconds);
          yield { type: 'start', provider: target.provider, model: target.model };
        }
        if (ev.type === 'finish') {
          this.metrics.tokens.inc({ ...labels, direction: 'in' }, ev.usage.inputTokens);
          this.metrics.tokens.inc({ ...labels, direction: 'out' }, ev.usage.outputTokens);
          this.log.info(
            {
              chat: chatId,
              ...labels,
              model: target.model,
              finishReason: ev.finishReason,
              inputTokens: ev.usage.inputTokens,
              outputTokens: ev.usage.outputTokens,
              ms: Math.round(performance.now() - startedAt),
            },
            'chat finished',
          );
          yield ev;
          return;
        }
        yield ev;
        // Time spent in our consumer between chunks is not the provider's silence.
        deadlines.resume();
      }
    } catch (e) {
      const err = abortReason ?? this.toChatError(e, target.provider);
      this.metrics.errors.inc({ ...labels, code: err.code });
      throw err;
    } finally {
      deadlines.stop();
      signal?.removeEventListener('abort', onCallerAbort);
      // Whether we finished, failed, or the consumer stopped iterating: close the HTTP request.
      controller.abort();
      iterator?.return?.().catch(() => {});
    }
  }

  private toChatError(e: unknown, provider: string): ChatError {
    return classifyError(e, { provider, secrets: this.secrets });
  }
}

/**
 * `promise`, or a rejection as soon as `signal` aborts. Unlike `Promise.race` against one
 * long-lived abort promise, this leaves nothing attached per call, so a stream of a million
 * chunks does not pile up a million reactions.
 */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
