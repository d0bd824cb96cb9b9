/**
 * Seeing a provider's stream at the byte level, under the AI SDK. The SDK turns a response
 * into parts and drops what has no part (Anthropic `ping`, OpenRouter `: PROCESSING` comments,
 * OpenAI's `data: [DONE]`), but those bytes matter: any byte from the provider is activity for
 * the first-event and between-events timers (a model that thinks silently for minutes still
 * sends keep-alives), and `[DONE]` tells a complete OpenAI stream from one cut after its
 * finish reason. {@link tappedFetch} wraps the `fetch` each provider is built with; the
 * {@link StreamTap} of the call in progress is found by the request's `AbortSignal` (each try
 * has its own, and the SDKs pass it to `fetch` as is), so one provider instance serves
 * concurrent chats, each with its own tap. Not an `AsyncLocalStorage`: on Node 20 that turns
 * on promise hooks for the whole process, and measured (a 20k-chunk flood through the
 * router) it doubled the CPU per chunk.
 * @packageDocumentation
 */

/** What one provider call wants to know about its response body. */
export interface StreamTap {
  /** Called for every chunk of the response body, as it is read. */
  onBytes(chunk: Uint8Array): void;
}

const taps = new WeakMap<AbortSignal, StreamTap>();

/** Watch every response fetched with `signal` (the try's own) with `tap`. */
export function tapRequests(signal: AbortSignal, tap: StreamTap): void {
  taps.set(signal, tap);
}

/** A `fetch` that reports the response body's chunks to the {@link StreamTap} of its request's signal. */
export function tappedFetch(inner: typeof fetch = fetch): typeof fetch {
  return async (input, init) => {
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    const tap = signal ? taps.get(signal) : undefined;
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

/** A stream's terminal frame, as bytes to look for. */
export const TERMINAL_FRAMES = {
  /** OpenAI and every compatible server end a complete stream with `data: [DONE]`. */
  openai: /(^|\n)data: ?\[DONE\]/,
  /** Anthropic's last event. */
  anthropic: /(^|\n)event: ?message_stop/,
  /** Bedrock's last event-stream message: the `:event-type` header value `metadata` (string type 7, length 8). */
  bedrock: /\x07\x00\x08metadata/,
} as const;

/**
 * Bedrock's exception frames name their kind only in the `:exception-type` header, which the
 * SDK drops (it passes on `{message}` alone); read it from the bytes (string type 7, u16 length).
 */
/**
 * A framed google.rpc error object in a Gemini/Vertex stream (`data: {"error": {code, message,
 * status}}`). The SDK line that `@ai-sdk/google-vertex` 4 bundles does not surface it as an
 * error part (the stream just ends without a finish reason), so its code is read from the bytes.
 */
export const GOOGLE_STREAM_ERROR = /data: \{"error":\{"code":(\d+),"message":"((?:[^"\\]|\\.)*)","status":"([A-Z_]+)"/;

export const BEDROCK_EXCEPTION_TYPE = /:exception-type\x07\x00[\s\S]([A-Za-z]+Exception)/;

/**
 * Finds a provider's terminal frame in the raw body across chunk boundaries, keeping only a
 * short tail. The SDKs report a finish as soon as the finish reason arrives; only the
 * terminal frame says nothing was cut after it (the usage chunk, Bedrock's metadata).
 */
export class TerminalMarker {
  private tail = '';
  private readonly decoder = new TextDecoder();
  /** Whether the terminal frame has been seen. */
  seen = false;
  /** The first capture group of the last match, for patterns that have one. */
  captured?: string;
  /** The last match, with all its groups. */
  match?: RegExpExecArray;

  constructor(private readonly pattern: RegExp) {}

  feed(chunk: Uint8Array): void {
    const text = this.tail + this.decoder.decode(chunk, { stream: true });
    const m = this.seen && this.captured === undefined ? null : this.pattern.exec(text);
    if (m) {
      this.seen = true;
      this.match = m;
      if (m[1] !== undefined) this.captured = m[1];
    }
    this.tail = text.slice(-64);
  }
}
