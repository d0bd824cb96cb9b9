/**
 * Seeing a provider's stream at the byte level, under the AI SDK. The SDK turns a response
 * into parts and drops what has no part (Anthropic `ping`, OpenRouter `: PROCESSING` comments,
 * OpenAI's `data: [DONE]`), but those bytes matter: any byte from the provider is activity for
 * the first-event and between-events timers (a model that thinks silently for minutes still
 * sends keep-alives), and `[DONE]` tells a complete OpenAI stream from one cut after its
 * finish reason. {@link tappedFetch} wraps the `fetch` each provider is built with; the
 * {@link StreamTap} of the call in progress is found through an `AsyncLocalStorage`, so one
 * provider instance serves concurrent chats, each with its own tap.
 * @packageDocumentation
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** What one provider call wants to know about its response body. */
export interface StreamTap {
  /** Called for every chunk of the response body, as it is read. */
  onBytes(chunk: Uint8Array): void;
}

const current = new AsyncLocalStorage<StreamTap>();

/** Run `fn` (which calls the provider) with `tap` watching every response it fetches. */
export function withTap<T>(tap: StreamTap, fn: () => Promise<T>): Promise<T> {
  return current.run(tap, fn);
}

/** A `fetch` that reports the response body's chunks to the current call's {@link StreamTap}. */
export function tappedFetch(inner: typeof fetch = fetch): typeof fetch {
  return async (input, init) => {
    const tap = current.getStore();
    const res = await inner(input, init);
    if (!tap || !res.body) return res;
    const body = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          tap.onBytes(chunk);
          controller.enqueue(chunk);
        },
      }),
    );
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

/**
 * Finds an SSE `data: [DONE]` line across chunk boundaries, keeping only a short tail.
 * OpenAI and every compatible server end a complete stream with it.
 */
export class DoneMarker {
  private tail = '';
  private readonly decoder = new TextDecoder();
  /** Whether `[DONE]` has been seen. */
  seen = false;

  feed(chunk: Uint8Array): void {
    if (this.seen) return;
    const text = this.tail + this.decoder.decode(chunk, { stream: true });
    if (/(^|\n)data: ?\[DONE\]/.test(text)) this.seen = true;
    this.tail = text.slice(-16);
  }
}
