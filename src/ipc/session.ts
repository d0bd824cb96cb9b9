/**
 * A server-side session: one client's open channel and the calls running on it.
 *
 * The data path reads straight through: a frame comes off the ring ({@link Session.onFrame}),
 * is decoded and dispatched by kind, the handler runs, and its result goes back as frames.
 * @packageDocumentation
 */
import type { Logger } from 'pino';
import { IpcError } from '../errors';
import { decodeFrame, decodePayload, encodeFrame, Frame, FrameKind, Payload } from '../protocol/frame';
import type { Channel } from '../transport/channel';
import type { ServerMetrics } from './metrics';

/** What a handler learns about the call it serves. */
export interface HandlerContext {
  /** Aborts when the client cancels the call, disconnects, or the server shuts down. */
  signal: AbortSignal;
  /** The method called. */
  method: string;
  /** The client's id for this call. */
  id: number;
  /** The calling client. */
  peer: PeerInfo;
}

/** Who is on the other end of a session. */
export interface PeerInfo {
  slot: number;
  generation: number;
  pid: number;
  uid: number;
  name: string;
}

/** A request/response handler. Return bytes (`Uint8Array`) or any JSON value. */
export type RequestHandler = (payload: any, ctx: HandlerContext) => Payload | Promise<Payload>;
/** A streaming handler: each yielded value is one chunk (bytes or JSON). */
export type StreamHandler = (payload: any, ctx: HandlerContext) => AsyncIterable<Payload>;

/** @internal */
export type HandlerEntry = { kind: 'request'; fn: RequestHandler } | { kind: 'stream'; fn: StreamHandler };

/** @internal What a session needs from its server. */
export interface SessionHost {
  handlers: Map<string, HandlerEntry>;
  metrics: ServerMetrics;
  logger: Logger;
  maxStreams: number;
  /** Whether sessions track their last activity (only an idle timeout needs it). */
  trackActivity: boolean;
}

/**
 * One call in flight. The AbortController is made only when a handler reads `ctx.signal`:
 * creating one per call was a tenth of the server's time in the pipelined benchmark.
 */
class Call implements HandlerContext {
  private controller: AbortController | null = null;
  private abortReason: IpcError | null = null;
  readonly started = performance.now();

  constructor(
    readonly method: string,
    readonly id: number,
    readonly peer: PeerInfo,
    readonly stream: boolean,
  ) {}

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortReason) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  get aborted(): boolean {
    return this.abortReason !== null;
  }

  abort(reason: IpcError): void {
    if (this.abortReason) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }

  /** The error to report for an abort or a thrown value. */
  toError(e: unknown): IpcError {
    return this.abortReason ?? toIpcError(e);
  }
}

/** @internal */
export class Session {
  private readonly calls = new Map<number, Call>();
  private streams = 0;
  private ended = false;
  private drainWaiters: Array<() => void> = [];
  /** Time of the last frame received, for the idle timeout. */
  lastActivity = Date.now();

  constructor(
    readonly peer: PeerInfo,
    readonly channel: Channel,
    private readonly host: SessionHost,
  ) {
    channel.onMessage((msg) => this.onFrame(msg));
  }

  /** Calls in progress. */
  get inFlight(): number {
    return this.calls.size;
  }

  private onFrame(msg: Uint8Array): void {
    if (this.host.trackActivity) this.lastActivity = Date.now();
    let frame: Frame;
    try {
      frame = decodeFrame(msg);
    } catch (e) {
      // A malformed frame means the peer does not speak the protocol: nothing after it can be
      // trusted, so the session ends (the client sees CONNECTION_LOST).
      this.host.logger.warn({ slot: this.peer.slot, pid: this.peer.pid, err: (e as Error).message }, 'protocol error, closing session');
      this.host.metrics.errors.inc({ code: 'PROTOCOL_ERROR' });
      this.channel.close(e as IpcError);
      return;
    }
    switch (frame.kind) {
      case FrameKind.Request:
      case FrameKind.StreamOpen:
        this.start(frame);
        return;
      case FrameKind.Cancel:
        this.calls.get(frame.id)?.abort(new IpcError('CANCELLED', 'cancelled by the client'));
        return;
      default:
        this.host.logger.debug({ slot: this.peer.slot, kind: frame.kind }, 'ignoring server-bound frame of a client-bound kind');
    }
  }

  private start(frame: Frame): void {
    const { id, method } = frame;
    const stream = frame.kind === FrameKind.StreamOpen;
    if (this.calls.has(id)) {
      this.fail(id, new IpcError('PROTOCOL_ERROR', `id ${id} is already in use`));
      return;
    }
    const entry = this.host.handlers.get(method);
    if (!entry || (entry.kind === 'stream') !== stream) {
      const what = entry
        ? `method ${method} is a ${entry.kind === 'stream' ? 'stream' : 'request'}, not a ${stream ? 'stream' : 'request'}`
        : `unknown method ${method}`;
      this.fail(id, new IpcError('UNKNOWN_METHOD', what));
      return;
    }
    if (stream && this.streams >= this.host.maxStreams) {
      this.fail(id, new IpcError('TOO_MANY_STREAMS', `at most ${this.host.maxStreams} streams per connection`, { retryable: true }));
      return;
    }
    let payload: unknown;
    try {
      // Decoded now: `frame.payload` is a view into the ring, valid only during this call.
      payload = decodePayload(frame);
    } catch (e) {
      this.fail(id, e as IpcError);
      return;
    }
    const call = new Call(method, id, this.peer, stream);
    this.calls.set(id, call);
    if (entry.kind === 'request') {
      this.runRequest(entry.fn, payload, call);
    } else {
      this.streams++;
      this.host.metrics.streamsActive.inc();
      this.runStream(entry.fn, payload, call);
    }
  }

  private runRequest(fn: RequestHandler, payload: unknown, call: Call): void {
    let result: unknown;
    try {
      result = fn(payload, call);
    } catch (e) {
      this.endRequest(call, false, e);
      return;
    }
    // Handlers that answer synchronously skip a promise and a microtask per call.
    if (result instanceof Promise) {
      result.then(
        (v) => this.endRequest(call, true, v),
        (e) => this.endRequest(call, false, e),
      );
    } else {
      this.endRequest(call, true, result);
    }
  }

  private endRequest(call: Call, ok: boolean, value: unknown): void {
    this.host.metrics.requestSeconds.labels(call.method).observe((performance.now() - call.started) / 1000);
    this.calls.delete(call.id);
    if (!ok || call.aborted) {
      this.fail(call.id, call.toError(value));
    } else {
      let frame: Uint8Array;
      try {
        frame = encodeFrame(FrameKind.Response, call.id, '', value);
      } catch (e) {
        this.fail(call.id, new IpcError('HANDLER_ERROR', `result cannot be encoded: ${(e as Error).message}`));
        this.finished();
        return;
      }
      this.reply(call.id, frame);
    }
    this.finished();
  }

  /** Sends a frame without allocating a promise when the ring has room (the common case). */
  private reply(id: number, frame: Uint8Array): void {
    if (this.channel.closed) return;
    if (frame.length > this.channel.maxMessage) {
      this.fail(
        id,
        new IpcError('MESSAGE_TOO_LARGE', `reply of ${frame.length} bytes exceeds the limit of ${this.channel.maxMessage} bytes`),
      );
      return;
    }
    if (!this.channel.trySend(frame)) {
      this.channel.send(frame).catch(() => {
        /* the session is closing; the client learns from the control socket */
      });
    }
  }

  private async runStream(fn: StreamHandler, payload: unknown, call: Call): Promise<void> {
    let first = true;
    try {
      for await (const chunk of fn(payload, call)) {
        if (call.aborted) break;
        if (first) {
          first = false;
          this.host.metrics.streamFirstChunkSeconds.observe({ method: call.method }, (performance.now() - call.started) / 1000);
        }
        // Awaiting the send is the stream's backpressure: a full ring pauses the generator.
        await this.channel.send(encodeFrame(FrameKind.StreamChunk, call.id, '', chunk));
      }
      if (call.aborted) throw call.toError(undefined);
      await this.channel.send(encodeFrame(FrameKind.StreamEnd, call.id, ''));
    } catch (e) {
      this.fail(call.id, call.toError(e));
    } finally {
      this.streams--;
      this.host.metrics.streamsActive.dec();
      this.calls.delete(call.id);
      this.finished();
    }
  }

  private fail(id: number, err: IpcError): void {
    this.host.metrics.errors.inc({ code: err.code });
    this.reply(id, encodeFrame(FrameKind.Error, id, '', err.toJSON()));
  }

  private finished(): void {
    if (this.calls.size === 0) for (const w of this.drainWaiters.splice(0)) w();
  }

  /** Resolves when no call is in flight. */
  drained(): Promise<void> {
    if (this.calls.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Aborts every call in flight (their handlers see `ctx.signal` abort). */
  abortAll(reason: IpcError): void {
    for (const call of this.calls.values()) call.abort(reason);
  }

  /** Ends the session: aborts calls and closes the channel. Idempotent. */
  end(reason: IpcError): void {
    if (this.ended) return;
    this.ended = true;
    this.abortAll(reason);
    this.channel.close();
    for (const w of this.drainWaiters.splice(0)) w();
  }
}

function toIpcError(e: unknown): IpcError {
  if (e instanceof IpcError) return e;
  const err = e as { code?: unknown; message?: unknown; retryable?: unknown; toJSON?: () => unknown };
  // Errors of other layers (the chat router's ChatError) carry their own code and retry hint.
  if (err && typeof err.code === 'string' && typeof err.message === 'string') {
    const json = typeof err.toJSON === 'function' ? (err.toJSON() as Record<string, unknown>) : undefined;
    return new IpcError(err.code, err.message, { retryable: err.retryable === true, details: json, cause: e });
  }
  return new IpcError('HANDLER_ERROR', e instanceof Error ? e.message : String(e));
}
