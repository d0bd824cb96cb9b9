/**
 * The chat router: validates a request, plans which providers to try (the request's model and
 * `models` list, then the configured fallback chain, skipping providers in cooldown), streams
 * the reply as {@link ChatEvent}s, and owns retries, fallback (by error type too: a context
 * that is too long goes to the configured larger model), the chat's overall deadline, the
 * per-try event timers, `progress` keep-alives, cancellation, cooldowns, metrics and logs.
 * @packageDocumentation
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
import {
  ChatError,
  type ChatErrorCode,
  type ChatEvent,
  type ChatProgressEvent,
  type FailedAttempt,
  type NormalizedChatRequest,
  type ProviderEvent,
  hasImages,
  normalizeChatRequest,
  parseChatRequest,
} from './types';

/** Options of {@link ChatRouter}. */
export interface ChatRouterOptions {
  /** Where to log; silent when absent. Info level never carries prompts, replies or keys. */
  logger?: Logger;
  /** Registry for the `lapce_ai_provider_*` metrics; unregistered when absent. */
  registry?: Registry;
  /** `fetch` for every provider's HTTP (proxies, tests); global `fetch` when absent. */
  fetch?: typeof fetch;
  /** Clock for cooldowns (epoch ms); `Date.now` when absent. */
  now?: () => number;
}

/** Options of one {@link ChatRouter.chat} call. */
export interface ChatOptions {
  /** Aborting it aborts the provider's HTTP request and ends the chat with `CANCELLED`. */
  signal?: AbortSignal;
}

/** A provider that is being skipped by new chats, until when, and why. */
export interface Cooldown {
  /** When the cooldown ends, epoch milliseconds (`Date.now()` clock); the provider is tried again after it. */
  until: number;
  /** The error that started it: `RATE_LIMITED`, `OVERLOADED` or `SERVER_ERROR`. */
  code: ChatErrorCode;
}

const DEADLINE_WORDS: Record<DeadlineKind, string> = {
  first_chunk: 'first event',
  between_chunks: 'next event',
  total: 'complete reply',
};

/** Failures that say the provider as a whole is in trouble, and start its cooldown. */
const COOLDOWN_CODES = new Set<ChatErrorCode>(['RATE_LIMITED', 'OVERLOADED', 'SERVER_ERROR']);

const TICK = Symbol('tick');

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
  /** Every configured secret, scrubbed from any error text whichever provider produced it. */
  private readonly secrets: string[];
  private readonly cooldowns = new Map<string, Cooldown>();
  private readonly now: () => number;
  private readonly cooldownSource = () => this.cooldownSeconds();
  private chatCount = 0;

  constructor(config: ResolvedConfig, opts: ChatRouterOptions = {}) {
    this.config = config;
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'ai-router' });
    this.metrics = chatMetrics(opts.registry);
    this.metrics.cooldownSources.add(this.cooldownSource);
    this.now = opts.now ?? Date.now;
    this.secrets = Object.values(config.providers).flatMap((p) =>
      [p.apiKey, p.bedrock?.secretAccessKey, p.bedrock?.sessionToken].filter((s): s is string => s !== undefined),
    );
    for (const p of Object.values(config.providers)) {
      this.providers.set(p.name, createProvider(p, { fetch: opts.fetch, logger: this.log }));
    }
  }

  /** The configured providers (no keys), with any running cooldown, for a "list providers" command. */
  listProviders(): ProviderInfo[] {
    return listProviders(this.config).map((p) => {
      const c = this.activeCooldown(p.name);
      return c ? { ...p, cooldownUntil: c.until, cooldownCode: c.code } : p;
    });
  }

  /** Providers in cooldown now, with when it ends. */
  activeCooldowns(): Record<string, Cooldown> {
    const out: Record<string, Cooldown> = {};
    for (const name of this.cooldowns.keys()) {
      const c = this.activeCooldown(name);
      if (c) out[name] = c;
    }
    return out;
  }

  /** Stop feeding this router's cooldowns to the shared metrics registry. */
  close(): void {
    this.metrics.cooldownSources.delete(this.cooldownSource);
  }

  /**
   * Where a request for `model` would go, without sending anything.
   * @throws {ChatError} `UNKNOWN_PROVIDER` or `NO_PROVIDER`.
   */
  route(model?: string): Route {
    return resolveRoute(model, this.config);
  }

  /**
   * Stream a chat reply: any `progress`, then `start` (once the provider produced its first
   * event, naming any providers that failed before it), then `delta`, `reasoning`, tool-call
   * and `progress` events, then `finish`. Failures are thrown as {@link ChatError}.
   *
   * Before the first event, retryable failures are retried with backoff and then handed to
   * the next provider of the plan; after it, any failure ends the chat, since the editor
   * already shows part of the reply. A provider's requested wait longer than the retry cap
   * moves on to the next provider at once, or, with none left, is waited out in full if the
   * chat's deadline allows. Ending the iteration early aborts the provider's request.
   *
   * @param payload untrusted request, validated against `ChatRequestSchema`.
   * @throws {ChatError} `BAD_REQUEST` for an invalid payload or one the provider cannot take,
   *   `UNKNOWN_PROVIDER`, `CANCELLED`, `TIMEOUT` (the chat's deadline), or the last provider failure.
   */
  async *chat(payload: unknown, { signal }: ChatOptions = {}): AsyncGenerator<ChatEvent, void, undefined> {
    const chatId = ++this.chatCount;
    const chatStart = performance.now();
    const parsed = parseChatRequest(payload);
    const req = normalizeChatRequest(parsed);
    const primaries = [parsed.model, ...(parsed.models ?? [])].map((m) => resolveRoute(m, this.config));
    if (parsed.model === undefined && parsed.models?.length) primaries.shift();
    this.checkCapabilities(primaries[0], req);
    const plan = this.plan(primaries, req);
    this.log.info(
      { chat: chatId, provider: plan[0]?.provider, model: plan[0]?.model, messages: req.messages.length, fallbacks: plan.length - 1 },
      'chat request',
    );
    if (signal?.aborted) throw new ChatError('CANCELLED', 'request cancelled');
    if (plan.length === 0) throw this.allCoolingDown(primaries);

    // One deadline for the whole chat, across every retry and fallback.
    const deadline = new AbortController();
    const totalMs = this.config.timeouts.totalMs;
    const deadlineTimer =
      totalMs > 0
        ? setTimeout(() => deadline.abort(new ChatError('TIMEOUT', `no complete reply within ${totalMs} ms`, { retryable: true })), totalMs)
        : undefined;
    const chatSignal = signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal;
    const remaining = () => (totalMs > 0 ? totalMs - (performance.now() - chatStart) : Infinity);
    const failed: FailedAttempt[] = [];
    let contextFallbackUsed = false;
    let longWaitUsed = false;

    try {
      let lastError: ChatError | undefined;
      for (let index = 0; index < plan.length; index++) {
        const target = plan[index];
        if (index > 0) {
          this.log.info(
            { chat: chatId, from: plan[index - 1].provider, to: target.provider, model: target.model, code: lastError?.code },
            'falling back',
          );
          this.metrics.fallbacks.inc({ from: plan[index - 1].provider, to: target.provider, code: lastError?.code ?? 'unknown' });
        }
        for (let attempt = 1; attempt <= this.config.retry.maxAttempts; attempt++) {
          const progress = { started: false };
          try {
            yield* this.attempt(chatId, target, req, chatSignal, progress, failed, chatStart);
            return;
          } catch (e) {
            const err =
              deadline.signal.aborted && !signal?.aborted ? (deadline.signal.reason as ChatError) : this.toChatError(e, target.provider);
            this.noteCooldown(target.provider, err);
            const giveUp = progress.started || signal?.aborted || deadline.signal.aborted;
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
            if (err.code === 'CONTEXT_LENGTH' && this.config.contextFallback && !contextFallbackUsed) {
              // A longer conversation than the model takes: only a larger model can help.
              contextFallbackUsed = true;
              const route = resolveRoute(this.config.contextFallback, this.config);
              plan.splice(index + 1, 0, route);
              break;
            }
            if (!err.retryable) throw err;
            const hasNext = index < plan.length - 1;
            const wanted = err.retryAfterMs;
            if (wanted !== undefined && wanted > this.config.retry.maxDelayMs) {
              // Retrying before the provider's requested time only earns another 429: move on
              // at once, or with nobody else to ask, wait it out in full (once) if the deadline allows.
              if (hasNext) break;
              if (longWaitUsed || attempt >= this.config.retry.maxAttempts || wanted > remaining()) throw err;
              longWaitUsed = true;
              this.log.info({ chat: chatId, provider: target.provider, attempt, delayMs: wanted }, 'waiting the full retry-after');
              yield this.progressEvent(chatStart, 'retrying', target.provider, { attempt, code: err.code, delayMs: wanted });
              await this.wait(wanted, chatSignal);
              continue;
            }
            if (attempt >= this.config.retry.maxAttempts) break;
            const delayMs = backoffDelay(attempt, this.config.retry, wanted);
            if (delayMs >= remaining()) {
              if (hasNext) break;
              throw err;
            }
            this.log.info({ chat: chatId, provider: target.provider, attempt, delayMs, retryAfterMs: wanted }, 'retrying');
            yield this.progressEvent(chatStart, 'retrying', target.provider, { attempt, code: err.code, delayMs });
            await this.wait(delayMs, chatSignal);
          }
        }
        if (lastError) failed.push({ provider: target.provider, model: target.model, code: lastError.code, message: lastError.message });
      }
      this.log.info({ chat: chatId, code: lastError?.code, providers: plan.map((p) => p.provider) }, 'chat failed on every provider');
      throw lastError ?? new ChatError('NO_PROVIDER', 'no provider could serve the request');
    } finally {
      clearTimeout(deadlineTimer);
    }
  }

  /** Sleep for a retry; the chat's deadline or the caller's cancel ends it with the matching error. */
  private async wait(ms: number, signal: AbortSignal): Promise<void> {
    try {
      await sleep(ms, signal);
    } catch (e) {
      throw signal.reason instanceof ChatError ? signal.reason : e;
    }
  }

  private progressEvent(
    chatStart: number,
    state: ChatProgressEvent['state'],
    provider: string,
    extra: Partial<ChatProgressEvent> = {},
  ): ChatProgressEvent {
    return { type: 'progress', state, provider, elapsedMs: Math.round(performance.now() - chatStart), ...extra };
  }

  /** The request asks for what the chosen provider cannot do: a clear `BAD_REQUEST` before anything is sent. */
  private checkCapabilities(route: Route | undefined, req: NormalizedChatRequest): void {
    if (!route) return;
    const p = this.providers.get(route.provider)!;
    const missing = this.missingCapability(p, req);
    if (missing)
      throw new ChatError('BAD_REQUEST', `provider "${route.provider}" does not accept ${missing}`, { provider: route.provider });
  }

  private missingCapability(p: ChatProvider, req: NormalizedChatRequest): string | undefined {
    if (!p.capabilities.images && hasImages(req)) return 'images';
    if (!p.capabilities.tools && (req.tools?.length || req.messages.some((m) => m.role === 'tool'))) return 'tools';
    return undefined;
  }

  /**
   * The request's routes, then the fallback chain (each with its default model); providers
   * that cannot take the request, or are cooling down, are left out.
   */
  private plan(primaries: Route[], req: NormalizedChatRequest): Route[] {
    const candidates = [...primaries];
    for (const name of this.config.fallback) {
      if (candidates.some((r) => r.provider === name)) continue;
      try {
        candidates.push(withDefaultModel(name, this.config));
      } catch {
        // A fallback without a default model cannot be used blind; skip it.
        this.log.debug({ provider: name }, 'fallback provider has no default model; skipped');
      }
    }
    const seen = new Set<string>();
    return candidates.filter((r) => {
      const key = `${r.provider}/${r.model}`;
      if (seen.has(key)) return false;
      seen.add(key);
      if (this.missingCapability(this.providers.get(r.provider)!, req)) return false;
      const c = this.activeCooldown(r.provider);
      if (c) this.log.debug({ provider: r.provider, until: c.until, code: c.code }, 'provider cooling down; skipped');
      return !c;
    });
  }

  private allCoolingDown(primaries: Route[]): ChatError {
    const c = this.activeCooldown(primaries[0].provider);
    const waitMs = c ? Math.max(0, c.until - this.now()) : 0;
    return new ChatError(
      c?.code ?? 'NO_PROVIDER',
      `${primaries[0].provider} is cooling down after ${c?.code ?? 'failures'}; no other provider is available (retry in ${Math.ceil(waitMs / 1000)} s)`,
      {
        provider: primaries[0].provider,
        retryable: true,
        retryAfterMs: waitMs,
      },
    );
  }

  private activeCooldown(provider: string): Cooldown | undefined {
    const c = this.cooldowns.get(provider);
    if (!c) return undefined;
    if (c.until <= this.now()) {
      this.cooldowns.delete(provider);
      return undefined;
    }
    return c;
  }

  private noteCooldown(provider: string, err: ChatError): void {
    const { defaultMs, maxMs } = this.config.cooldown;
    if (defaultMs <= 0 || !COOLDOWN_CODES.has(err.code) || !err.retryable) return;
    const ms = Math.min(maxMs, err.retryAfterMs ?? defaultMs);
    const until = this.now() + ms;
    const prev = this.cooldowns.get(provider);
    if (prev && prev.until >= until) return;
    this.cooldowns.set(provider, { until, code: err.code });
    this.metrics.cooldowns.inc({ provider, code: err.code });
    this.log.info({ provider, code: err.code, cooldownMs: ms }, 'provider cooling down');
  }

  private cooldownSeconds(): Record<string, number> {
    const now = this.now();
    const out: Record<string, number> = {};
    for (const [name, c] of this.cooldowns) if (c.until > now) out[name] = (c.until - now) / 1000;
    return out;
  }

  /**
   * One try against one provider. Yields `start` on the first event, then the provider's
   * events, with `progress` while it has nothing to show. Its own AbortController, linked to
   * the chat's signal and to the event timers, is aborted on every way out, so the provider's
   * HTTP connection never outlives the try.
   */
  private async *attempt(
    chatId: number,
    target: Route,
    req: NormalizedChatRequest,
    signal: AbortSignal,
    progress: { started: boolean },
    failed: FailedAttempt[],
    chatStart: number,
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
    const onChatAbort = () =>
      abort(signal.reason instanceof ChatError ? signal.reason : new ChatError('CANCELLED', 'request cancelled', labels));
    if (signal.aborted) onChatAbort();
    signal.addEventListener('abort', onChatAbort, { once: true });
    const deadlines = new StreamDeadlines(this.config.timeouts, (kind, ms) =>
      abort(new ChatError('TIMEOUT', `${target.provider}: no ${DEADLINE_WORDS[kind]} within ${ms} ms`, { retryable: true, ...labels })),
    );

    this.metrics.requests.inc(labels);
    this.log.debug({ chat: chatId, ...labels, model: target.model }, 'sending to provider');
    const startedAt = performance.now();
    let firstEventAt: number | undefined;
    let firstTextAt: number | undefined;
    let activitySinceEvent = false;
    const onActivity = () => {
      deadlines.activity();
      activitySinceEvent = true;
      if (firstEventAt === undefined) {
        firstEventAt = performance.now();
        this.metrics.firstEvent.observe(labels, (firstEventAt - startedAt) / 1000);
      }
    };
    const ticker = new Ticker(this.config.timeouts.progressMs);
    let iterator: AsyncIterator<ProviderEvent> | undefined;
    try {
      if (abortReason) throw abortReason;
      iterator = provider.stream(req, target.model, controller.signal, { onActivity })[Symbol.asyncIterator]();
      deadlines.start();
      for (;;) {
        let next: IteratorResult<ProviderEvent>;
        const pending = untilAborted(iterator.next(), controller.signal);
        for (;;) {
          let r: IteratorResult<ProviderEvent> | typeof TICK;
          try {
            // A provider stuck in code that ignores its signal must not hang us.
            r = await ticker.wait(pending);
          } catch (e) {
            throw abortReason ?? e;
          }
          if (r !== TICK) {
            next = r;
            break;
          }
          // Nothing to show for a while: tell the editor whether the provider is silent or busy.
          yield this.progressEvent(chatStart, activitySinceEvent || firstEventAt !== undefined ? 'working' : 'waiting', target.provider);
        }
        deadlines.chunk();
        if (next.done) throw truncatedError(target.provider, 'provider ended without a finish event');
        const ev = next.value;
        onActivity();
        activitySinceEvent = false;
        if (!progress.started) {
          progress.started = true;
          yield { type: 'start', provider: target.provider, model: target.model, ...(failed.length ? { fallbackFrom: [...failed] } : {}) };
        }
        if (ev.type === 'delta' && firstTextAt === undefined) {
          firstTextAt = performance.now();
          this.metrics.firstToken.observe(labels, (firstTextAt - startedAt) / 1000);
        }
        if (ev.type === 'finish') {
          const u = ev.usage;
          const count = (direction: string, n: number | undefined) =>
            n !== undefined && this.metrics.tokens.inc({ ...labels, direction }, n);
          count('in', u.inputTokens);
          count('out', u.outputTokens);
          count('reasoning', u.reasoningTokens);
          count('cached', u.cachedInputTokens);
          const ms = (t: number | undefined) => (t === undefined ? undefined : Math.round(t - startedAt));
          const timing = Object.fromEntries(
            Object.entries({ firstEventMs: ms(firstEventAt), firstTextMs: ms(firstTextAt), totalMs: ms(performance.now()) }).filter(
              ([, v]) => v !== undefined,
            ),
          ) as { totalMs: number };
          this.log.info(
            { chat: chatId, ...labels, model: target.model, finishReason: ev.finishReason, ...u, responseId: ev.responseId, ...timing },
            'chat finished',
          );
          yield { ...ev, timing };
          return;
        }
        yield ev;
        // Time spent in our consumer between events is not the provider's silence.
        deadlines.resume();
      }
    } catch (e) {
      const err = abortReason ?? this.toChatError(e, target.provider);
      this.metrics.errors.inc({ ...labels, code: err.code });
      throw err;
    } finally {
      deadlines.stop();
      ticker.stop();
      signal.removeEventListener('abort', onChatAbort);
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
 * Waits for a promise, or for {@link TICK} after `ms` of waiting (the `progress` cadence). One
 * timer per try, refreshed per wait, so a fast stream costs no timer churn; `ms` 0 = never tick.
 */
class Ticker {
  private timer?: NodeJS.Timeout;
  private wake?: () => void;

  constructor(private readonly ms: number) {}

  wait<T>(promise: Promise<T>): Promise<T | typeof TICK> {
    if (this.ms <= 0) return promise;
    return new Promise<T | typeof TICK>((resolve, reject) => {
      this.wake = () => resolve(TICK);
      if (this.timer) this.timer.refresh();
      else this.timer = setTimeout(() => this.wake?.(), this.ms);
      promise.then(
        (v) => {
          this.wake = undefined;
          resolve(v);
        },
        (e) => {
          this.wake = undefined;
          reject(e);
        },
      );
    });
  }

  stop(): void {
    clearTimeout(this.timer);
    this.wake = undefined;
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
