/**
 * The AI chat backend on IPC: the glue between an {@link IpcServer} and a {@link ChatRouter}.
 *
 * It adds two methods to a server:
 * - `chat` (stream): a chat request in, the router's events out as JSON chunks (`progress`
 *   keep-alives, `start`, then `delta`, `reasoning`, tool-call events, then `finish`). A
 *   failure ends the stream with the router's typed error, which the client sees as an
 *   `IpcError` whose `code` is the chat error code (`BAD_REQUEST`, `RATE_LIMITED`, …) and whose
 *   `details` carry `provider`, `httpStatus` and `retryAfterMs`.
 * - `providers` (request): the configured providers, never their keys, with any running
 *   cooldown (`cooldownUntil`, epoch ms, and `cooldownCode`).
 *
 * Routing, retries, fallback, timeouts and metrics are the router's job; this module only wires
 * them to the server, so that cancelling the IPC stream aborts the provider's HTTP request and
 * the router's metrics live in the server's registry (one `stats` shows both).
 *
 * ```ts
 * const server = new IpcServer({ socketPath, logger })
 * attachChatBackend(server, { config: loadConfig(), logger })
 * await server.listen()
 * ```
 * @packageDocumentation
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { ChatRouter, type ChatEvent, type ProviderInfo, type ResolvedConfig } from './ai';
import type { IpcServer } from './ipc/server';
import type { HandlerContext } from './ipc/session';

/** Name of the streaming chat method. */
export const CHAT_METHOD = 'chat';
/** Name of the request method listing the configured providers. */
export const PROVIDERS_METHOD = 'providers';

/** What the `providers` method answers. */
export interface ProvidersReply {
  /** Name of the provider used for requests that name none. */
  default: string;
  /** Fallback chain, in order. */
  fallback: string[];
  /** Every configured provider; `hasKey` tells whether a key is set, the key itself never leaves. */
  providers: ProviderInfo[];
  /** Providers new chats skip for now, with when that ends (epoch ms) and the error that started it. */
  cooldowns?: Record<
    string,
    {
      /** When the cooldown ends, epoch milliseconds. */
      until: number;
      /** The chat error code that started it (`RATE_LIMITED`, `OVERLOADED`, `SERVER_ERROR`). */
      code: string;
    }
  >;
}

/** Options of {@link createChatBackend}. */
export interface ChatBackendOptions {
  /** Resolved provider configuration (see `loadConfig`). */
  config: ResolvedConfig;
  /** Where the router logs; silent when absent. */
  logger?: Logger;
  /**
   * Registry for the router's `lapce_ai_provider_*` metrics. Pass the server's
   * (`server.registry`) so its `$metrics` shows them; {@link attachChatBackend} does.
   */
  registry?: Registry;
  /** `fetch` for the providers' HTTP (tests, proxies); global `fetch` when absent. */
  fetch?: typeof fetch;
}

/** A chat backend: the router plus the two handlers, ready to register. */
export interface ChatBackend {
  /**
   * The router behind both handlers: use it for what the IPC methods do not expose, e.g.
   * `route(model)` to preview routing or `activeCooldowns()`.
   */
  readonly router: ChatRouter;
  /** Stream handler of `chat`: yields the router's events for one request. */
  chat(payload: unknown, ctx: Pick<HandlerContext, 'signal'>): AsyncGenerator<ChatEvent, void, undefined>;
  /** Request handler of `providers`. */
  providers(): ProvidersReply;
  /** Registers `chat` and `providers` on `server`. */
  register(server: IpcServer): void;
}

/** Build a chat backend. Prefer {@link attachChatBackend} unless you need the handlers alone. */
export function createChatBackend(opts: ChatBackendOptions): ChatBackend {
  const router = new ChatRouter(opts.config, { logger: opts.logger, registry: opts.registry, fetch: opts.fetch });
  const backend: ChatBackend = {
    router,
    // `ctx.signal` aborts when the client cancels or disconnects, or the server shuts down; the
    // router turns that into an abort of the provider's HTTP request. The payload is untrusted:
    // the router validates it with its zod schema before anything is sent, and a bad one fails
    // the stream with `BAD_REQUEST` before its first chunk.
    async *chat(payload, ctx) {
      yield* router.chat(payload, { signal: ctx.signal });
    },
    providers: () => ({
      default: router.config.default,
      fallback: [...router.config.fallback],
      providers: router.listProviders(),
      cooldowns: router.activeCooldowns(),
    }),
    register(server) {
      server.handleStream(CHAT_METHOD, (payload, ctx) => backend.chat(payload, ctx));
      server.handle(PROVIDERS_METHOD, () => backend.providers());
    },
  };
  return backend;
}

/**
 * Create a chat backend whose metrics go on `server.registry`, and register its methods on
 * `server`. Call before `server.listen()`.
 */
export function attachChatBackend(server: IpcServer, opts: Omit<ChatBackendOptions, 'registry'>): ChatBackend {
  const backend = createChatBackend({ ...opts, registry: server.registry });
  backend.register(server);
  return backend;
}
