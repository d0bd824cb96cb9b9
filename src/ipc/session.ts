/**
 * A server-side session: one client's open channel and control connection, and the calls
 * running on it. The session is the one owner of its end: the control socket's EOF, a failed
 * channel, a malformed frame, a corrupt ring, the idle timeout and shutdown all go through
 * {@link Session.end}, which aborts the calls, tells the client why (an ERROR frame with id 0
 * when the ring has room), sets the ring's `closed` word, closes the control socket and hands
 * the slot back, once.
 *
 * The data path reads straight through: a frame comes off the ring, is decoded and dispatched
 * by kind, the handler runs, and its result goes back as frames. Nothing a peer sends can throw
 * out of it: every callback and promise chain ends in a handler that ends only this session.
 * @packageDocumentation
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { BACKLOG_PAUSE_RINGS, BACKLOG_RESUME_RINGS, MAX_STREAM_WINDOW } from '../defaults';
import { IpcError, toIpcError } from '../errors';
import { encodeGoAway } from '../protocol/control';
import {
  CREDIT_PAYLOAD,
  decodeCredit,
  decodeFrame,
  decodePayload,
  encodeFrame,
  encodeParts,
  FLAG_JSON,
  FRAME_HEADER,
  FrameKind,
  isClientKind,
  partsLength,
} from '../protocol/frame';
import type { Frame, FrameParts, Payload } from '../protocol/frame';
import { TRANSIENT } from '../transport/backend';
import type { Channel } from '../transport/channel';
import type { ControlConnection, ControlFrame } from './control-connection';
import type { ServerMetrics } from './metrics';
import type { HistogramSeries } from './request-histogram';
import { IdTable } from '../util/id-table';

/** Most channel steps (each up to TURN_MESSAGES messages or TURN_MS) `readPending` takes at shutdown. */
const READ_PENDING_STEPS = 16;

/**
 * What a handler learns about the call it serves.
 * @category IPC
 */
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

/**
 * Who is on the other end of a session.
 * @category IPC
 */
export interface PeerInfo {
  /** The session's slot on the server. */
  slot: number;
  /** The slot's generation. */
  generation: number;
  /** The client's pid as it said in HELLO. */
  pid: number;
  /** The client's uid, from the kernel (SO_PEERCRED). */
  uid: number;
  /** The client's name, from HELLO. */
  name: string;
}

/**
 * A request/response handler. Return bytes (`Uint8Array`) or any JSON value; `undefined`
 * arrives at the client as JSON `null`. Returned bytes are not copied: they are read as they go
 * into the ring (later, when it is full), so do not change them once returned.
 * @category IPC
 */
export type RequestHandler = (payload: any, ctx: HandlerContext) => Payload | Promise<Payload>;
/**
 * A streaming handler: each yielded value is one chunk (bytes or JSON). The generator resumes
 * once a chunk is in the ring, so yielded bytes may be reused after that.
 * @category IPC
 */
export type StreamHandler = (payload: any, ctx: HandlerContext) => AsyncIterable<Payload>;

/**
 * What payload a method takes: `json` answers bytes with BAD_PAYLOAD ("method X takes JSON,
 * got bytes") before the handler runs, `bytes` the reverse, `any` (default) passes either.
 * @category IPC
 */
export type PayloadKind = 'json' | 'bytes' | 'any';

/**
 * Options of a handler registration.
 * @category IPC
 */
export interface HandlerOptions {
  /** See {@link PayloadKind}. Default `any`. */
  payload?: PayloadKind;
  /**
   * Request handlers only. A bytes payload arrives as a Buffer over the message where it lies
   * (in the shared ring, or the buffer a large message was reassembled in), not as a copy of
   * its own. It is valid only while the handler runs synchronously: until it returns, or
   * reaches its first `await`. Copy what you keep (`Buffer.from(payload)`). Saves an allocation
   * and a copy per call, which for payloads of many KiB is most of the server's work. Default
   * false.
   */
  borrow?: boolean;
}

/** @internal A registered handler. */
export type HandlerEntry = ({ kind: 'request'; fn: RequestHandler } | { kind: 'stream'; fn: StreamHandler }) & {
  payload: PayloadKind;
  /** Bytes payloads are lent, not copied (see {@link HandlerOptions.borrow}). */
  borrow: boolean;
  /** Its latency histogram series, made on first use. */
  series?: HistogramSeries;
};

/** @internal What a session needs from its server. */
export interface SessionHost {
  readonly handlers: Map<string, HandlerEntry>;
  readonly metrics: ServerMetrics;
  readonly logger: Logger;
  readonly maxStreams: number;
  readonly maxInFlight: number;
  /** Payload bytes one session's running handlers may hold (see `IpcServerOptions.maxInFlightBytes`). */
  readonly maxInFlightBytes: number;
  /** Payload bytes all sessions' running handlers hold, and their bound (`inFlightBytesBudget`). */
  readonly heldBytes: { used: number; readonly limit: number };
  /** Whether sessions track their last activity (only an idle timeout needs it). */
  readonly trackActivity: boolean;
  /** True once the server sent GOAWAY: new calls get GOING_AWAY. */
  readonly goingAway: boolean;
  /**
   * Runs `closeChannel` after this event-loop turn's I/O callbacks (see
   * `IpcServer.retireChannel`): unmapping the rings and freeing the memfds is the dearest part
   * of an ending session and can wait behind a handshake that arrived in the same turn.
   */
  retireChannel(closeChannel: () => void): void;
  /** Called once, after the session has closed its control connection and retired its channel. */
  sessionEnded(session: Session, reason: string, err: IpcError | undefined): void;
}

/** How a session ends. */
export interface EndOptions {
  /** Sent to the client as an ERROR frame with id 0 before closing (when the ring has room). */
  wire?: IpcError;
  /** Sent as GOAWAY on the control socket before closing (the idle timeout). */
  goAway?: string;
  /** What the handlers' signals abort with. Default CONNECTION_LOST. */
  abortWith?: IpcError;
  /** The error that ended it, for the log. */
  err?: IpcError;
}

const CANCELLED = (): IpcError => new IpcError('CANCELLED', 'cancelled by the client');

/**
 * One call in flight. The AbortController is made only when a handler reads `ctx.signal`:
 * creating one per call was a tenth of the server's time in the pipelined benchmark.
 */
class Call implements HandlerContext {
  private controller: AbortController | null = null;
  private abortReason: IpcError | null = null;
  readonly started = performance.now();
  /** The terminal frame was sent (or the session ended): the id is free, results are dropped. */
  done = false;
  /** Payload bytes charged to the session and server while the handler runs. */
  held = 0;
  /** Stream window left (PLAN §3): starts at zero, the client grants it. */
  chunks = 0;
  bytes = 0;
  private creditWaiter: (() => void) | null = null;

  constructor(
    readonly method: string,
    readonly id: number,
    readonly peer: PeerInfo,
    readonly stream: boolean,
    readonly entry: HandlerEntry,
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
    this.wakeCredit();
  }

  /** The error to report for an abort or a thrown value. */
  toError(e: unknown): IpcError {
    return this.abortReason ?? toIpcError(e);
  }

  grant(chunks: number, bytes: number): void {
    this.chunks = Math.min(MAX_STREAM_WINDOW, this.chunks + chunks);
    this.bytes = Math.min(MAX_STREAM_WINDOW, this.bytes + bytes);
    this.wakeCredit();
  }

  get hasCredit(): boolean {
    return this.chunks >= 1 && this.bytes >= 1;
  }

  /** Resolves when credit arrives or the call is aborted or done. */
  waitCredit(): Promise<void> {
    return new Promise((resolve) => (this.creditWaiter = resolve));
  }

  wakeCredit(): void {
    const w = this.creditWaiter;
    this.creditWaiter = null;
    w?.();
  }
}

/** @internal */
export class Session {
  /** Ids in use: from REQUEST/STREAM_OPEN until the terminal frame (PLAN §4). */
  private readonly calls = new IdTable<Call>();
  /** Handlers running (a cancelled one counts until it returns: it still holds resources). */
  private running = 0;
  /** Payload bytes of the calls whose handlers run (a handler may keep its payload until it returns). */
  private held = 0;
  private streams = 0;
  private ended = false;
  private drainWaiters: Array<() => void> = [];
  /** Reading paused because replies pile up (PLAN §8). */
  private paused = false;
  /** Time of the last data frame received, for the idle timeout. */
  lastActivity = Date.now();

  constructor(
    readonly peer: PeerInfo,
    readonly conn: ControlConnection,
    readonly channel: Channel,
    private readonly host: SessionHost,
  ) {}

  /**
   * Starts serving: attaches to the control connection and the channel. Called once the server
   * has recorded the session, because a frame or EOF that already arrived ends it at once.
   */
  serve(): void {
    const { conn, channel } = this;
    // Registered on a connection or channel that already closed (a READY followed at once by
    // EOF), these run in a microtask and end the session: nothing can slip between.
    conn.onClose((err) => this.end(err ? `control connection failed: ${err.message}` : 'client closed the control socket', { err }));
    conn.onFrame((f) => this.onControl(f));
    const channelEnded = (err: IpcError | undefined): void =>
      this.end(err ? `channel failed: ${err.message}` : 'client closed the channel', {
        err,
        wire: err && err.code !== 'CHANNEL_CLOSED' ? err : undefined,
      });
    // A failure the channel found itself (a corrupt incoming ring, a message too large, the
    // reassembly budget used up) ends the session while the outgoing ring still works, so the
    // client reads why (the id-0 ERROR) before the `closed` word.
    channel.onFailing(channelEnded);
    channel.onClose(channelEnded);
    channel.onDrain(() => this.drainedSome());
    // Fairness (PLAN §9) is the channel's: it delivers a bounded batch per event-loop turn.
    channel.onMessage((msg) => this.onData(msg));
  }

  /** Calls whose id is in use. */
  get inFlight(): number {
    return this.calls.size;
  }

  /** Whether the session has ended. */
  get closed(): boolean {
    return this.ended;
  }

  /** Any control frame after READY is a protocol error (PLAN §6). */
  private onControl(f: ControlFrame): void {
    f.fds?.close();
    this.protocolError(`control frame type ${f.type} after READY`);
  }

  private protocolError(message: string): void {
    const err = new IpcError('PROTOCOL_ERROR', message);
    this.host.metrics.errors.inc({ code: err.code });
    this.end(`protocol error: ${message}`, { wire: err, err });
  }

  private onData(msg: Uint8Array): void {
    if (this.ended) return;
    try {
      this.dispatch(msg);
    } catch (e) {
      // A bug of ours, or a handler that threw synchronously past its own guard: this session
      // ends, the server goes on.
      const err =
        e instanceof IpcError ? e : new IpcError('HANDLER_ERROR', `internal error: ${(e as Error)?.message ?? String(e)}`, { cause: e });
      this.end(`internal error: ${err.message}`, { wire: err, err });
    }
  }

  private dispatch(msg: Uint8Array): void {
    if (this.host.trackActivity) this.lastActivity = Date.now();
    let frame: Frame;
    try {
      frame = decodeFrame(msg);
    } catch (e) {
      // A malformed frame means the peer does not speak the protocol: nothing after it can be
      // trusted, so the session ends.
      this.protocolError((e as Error).message);
      return;
    }
    if (!isClientKind(frame.kind)) {
      this.protocolError(`frame kind ${frame.kind} is sent by servers only`);
      return;
    }
    switch (frame.kind) {
      case FrameKind.Request:
      case FrameKind.StreamOpen:
        this.start(frame);
        return;
      case FrameKind.Cancel: {
        if (frame.payload.length !== 0) {
          this.protocolError(`CANCEL with a ${frame.payload.length}-byte payload`);
          return;
        }
        // CANCEL of an unknown id races with completion: ignored.
        const call = this.calls.get(frame.id);
        if (call) {
          call.abort(CANCELLED());
          this.failCall(call, CANCELLED());
        }
        return;
      }
      case FrameKind.StreamCredit: {
        if (frame.payload.length !== CREDIT_PAYLOAD) {
          this.protocolError(`STREAM_CREDIT with a ${frame.payload.length}-byte payload (must be ${CREDIT_PAYLOAD})`);
          return;
        }
        const call = this.calls.get(frame.id);
        if (call?.stream) {
          const c = decodeCredit(frame.payload);
          call.grant(c.chunks, c.bytes);
        }
        return;
      }
    }
  }

  private start(frame: Frame): void {
    const { id, method } = frame;
    const stream = frame.kind === FrameKind.StreamOpen;
    if (this.calls.has(id)) {
      this.protocolError(`id ${id} is already in use`);
      return;
    }
    if (this.host.goingAway) {
      this.fail(id, new IpcError('GOING_AWAY', 'server is shutting down; no new calls'));
      return;
    }
    if (this.running >= this.host.maxInFlight) {
      this.fail(id, new IpcError('TOO_MANY_REQUESTS', `at most ${this.host.maxInFlight} calls in flight per connection`));
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
      this.fail(id, new IpcError('TOO_MANY_STREAMS', `at most ${this.host.maxStreams} streams per connection`));
      return;
    }
    const json = (frame.flags & FLAG_JSON) !== 0;
    if (entry.payload !== 'any' && json !== (entry.payload === 'json')) {
      this.fail(
        id,
        new IpcError(
          'BAD_PAYLOAD',
          `method ${method} takes ${entry.payload === 'json' ? 'JSON' : 'bytes'}, got ${json ? 'JSON' : 'bytes'}`,
        ),
      );
      return;
    }
    const size = frame.payload.length;
    const total = this.host.heldBytes;
    // Both limits are at least maxMessage (the options say so), so a call of any allowed size
    // fits once the calls before it are done: a refusal is worth retrying.
    const mine = this.held + size > this.host.maxInFlightBytes;
    if (mine || total.used + size > total.limit) {
      const [where, held, limit] = mine ? ['connection', this.held, this.host.maxInFlightBytes] : ['server', total.used, total.limit];
      this.fail(
        id,
        new IpcError(
          'TOO_MANY_REQUESTS',
          `calls in flight on this ${where} hold ${held} payload bytes; ${size} more would pass its limit of ${limit}`,
          { details: { heldBytes: held, limitBytes: limit } },
        ),
      );
      return;
    }
    let payload: unknown;
    try {
      // Decoded now: `frame.payload` is a view into the ring, valid only during this call. A
      // borrowing handler gets that view itself, as a Buffer.
      const p = frame.payload;
      payload = entry.borrow && !json ? Buffer.from(p.buffer, p.byteOffset, p.length) : decodePayload(frame);
    } catch (e) {
      this.fail(id, e as IpcError);
      return;
    }
    const call = new Call(method, id, this.peer, stream, entry);
    this.running++;
    call.held = size;
    this.held += size;
    total.used += size;
    if (entry.kind === 'request') {
      this.runRequest(entry.fn, payload, call);
    } else {
      this.calls.set(id, call);
      this.streams++;
      this.host.metrics.streamsActive.inc();
      this.runStream(entry.fn, payload, call).catch((e) => this.internalError(e));
    }
  }

  private internalError(e: unknown): void {
    const err = new IpcError('HANDLER_ERROR', `internal error: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    this.end(`internal error: ${err.message}`, { wire: err, err });
  }

  private runRequest(fn: RequestHandler, payload: unknown, call: Call): void {
    let result: unknown;
    try {
      result = fn(payload, call);
    } catch (e) {
      this.endRequest(call, false, e);
      return;
    }
    // Handlers that answer synchronously skip a promise and a microtask per call, and the id
    // map too: no other frame (a CANCEL, a duplicate id) can be read while they run.
    if (result instanceof Promise) {
      this.calls.set(call.id, call);
      result
        .then(
          (v) =>
            // A lent payload is gone once the handler awaited: returning it would send whatever
            // the ring holds by now.
            call.entry.borrow && v instanceof Uint8Array && TRANSIENT.has(v.buffer)
              ? this.endRequest(
                  call,
                  false,
                  new IpcError('HANDLER_ERROR', 'a borrowed payload was returned after the handler went async: copy it'),
                )
              : this.endRequest(call, true, v),
          (e) => this.endRequest(call, false, e),
        )
        .catch((e) => this.internalError(e));
    } else {
      this.endRequest(call, true, result);
    }
  }

  /** The handler returned: its call no longer counts against the limits of calls in flight. */
  private handlerDone(call: Call): void {
    this.running--;
    this.held -= call.held;
    this.host.heldBytes.used -= call.held;
    call.held = 0;
  }

  private endRequest(call: Call, ok: boolean, value: unknown): void {
    this.handlerDone(call);
    // The histogram series is looked up once per method, not per call.
    (call.entry.series ??= this.host.metrics.requestSeconds.labels(call.method)).observe((performance.now() - call.started) / 1000);
    if (!call.done) {
      if (!ok || call.aborted) {
        this.failCall(call, call.toError(value));
      } else {
        let f: FrameParts | null = null;
        try {
          // Transient: sent (copied into the ring) before anything else is encoded; large
          // bytes go as the frame's second part, uncopied.
          f = encodeParts(FrameKind.Response, call.id, '', value);
        } catch (e) {
          this.failCall(call, new IpcError('HANDLER_ERROR', `result cannot be encoded: ${(e as Error).message}`));
        }
        if (f) this.finish(call, f.head, f.body);
      }
    }
    this.finished();
  }

  private async runStream(fn: StreamHandler, payload: unknown, call: Call): Promise<void> {
    let first = true;
    try {
      for await (const chunk of fn(payload, call)) {
        if (call.done || call.aborted) break;
        // Transient (a reused buffer) while it goes out at once; owned if it has to wait. Large
        // bytes are the frame's second part, uncopied: the generator resumes only once they
        // are in the ring, so it may even reuse them.
        const f = encodeParts(FrameKind.StreamChunk, call.id, '', chunk);
        let frame = f.head;
        const body = f.body;
        const length = partsLength(frame, body);
        if (length > this.channel.maxMessage) {
          throw new IpcError('MESSAGE_TOO_LARGE', `chunk of ${length} bytes exceeds the limit of ${this.channel.maxMessage} bytes`);
        }
        // The window (PLAN §3): `yield` waits here while it is exhausted; other calls go on.
        if (!call.hasCredit) {
          frame = Buffer.from(frame);
          while (!call.hasCredit && !call.done && !call.aborted) await call.waitCredit();
        }
        if (call.done || call.aborted) break;
        call.chunks -= 1;
        call.bytes -= length - FRAME_HEADER;
        if (first) {
          first = false;
          this.host.metrics.streamFirstChunkSeconds.observe({ method: call.method }, (performance.now() - call.started) / 1000);
        }
        // Awaiting a queued send is the ring's backpressure: a full ring pauses the generator.
        const sent = this.send(frame, body);
        if (sent) await sent;
      }
      if (!call.done) {
        if (call.aborted) this.failCall(call, call.toError(undefined));
        else this.finish(call, encodeFrame(FrameKind.StreamEnd, call.id, ''));
      }
    } catch (e) {
      if (!call.done) this.failCall(call, call.toError(e));
    } finally {
      this.handlerDone(call);
      this.streams--;
      this.host.metrics.streamsActive.dec();
      this.finished();
    }
  }

  /** Sends the call's terminal frame and frees its id (`body`: see {@link send}). */
  private finish(call: Call, frame: Uint8Array, body: Uint8Array | null = null): void {
    if (call.done) return;
    call.done = true;
    call.wakeCredit();
    if (this.calls.get(call.id) === call) this.calls.delete(call.id);
    this.reply(call.id, frame, body);
    this.finished();
  }

  private failCall(call: Call, err: IpcError): void {
    if (call.done) return;
    this.host.metrics.errors.inc({ code: err.code });
    this.finish(call, encodeFrame(FrameKind.Error, call.id, '', err.toJSON()));
  }

  /** An ERROR for an id that never became a call. */
  private fail(id: number, err: IpcError): void {
    this.host.metrics.errors.inc({ code: err.code });
    this.reply(id, encodeFrame(FrameKind.Error, id, '', err.toJSON()));
  }

  private reply(id: number, frame: Uint8Array, body: Uint8Array | null = null): void {
    const length = partsLength(frame, body);
    if (length > this.channel.maxMessage) {
      const err = new IpcError('MESSAGE_TOO_LARGE', `reply of ${length} bytes exceeds the limit of ${this.channel.maxMessage} bytes`);
      this.host.metrics.errors.inc({ code: err.code });
      frame = encodeFrame(FrameKind.Error, id, '', err.toJSON());
      body = null;
    }
    const p = this.send(frame, body);
    // A reply that waits for space needs no one to await it; its failure ends the session.
    p?.catch(() => undefined);
  }

  /**
   * Sends a frame, followed by `body` when its payload travels as a second part (see
   * `encodeParts`): without a promise when the ring has room (the common case), else queued
   * behind the others (the channel copies a frame in the reused encoding buffer, TRANSIENT).
   * Returns the promise of a queued send, or null. Never throws: a failed send (a corrupt ring,
   * a closed channel) closes the channel, which ends this session.
   */
  private send(frame: Uint8Array, body: Uint8Array | null = null): Promise<void> | null {
    if (this.ended || this.channel.closed) return null;
    if (this.channel.trySend(frame, body)) return null;
    const p = this.channel.sendParts(frame, body);
    // Backpressure (PLAN §8): while replies pile up (a client that does not read them), stop
    // reading its requests; its ring fills and its sends wait.
    if (!this.paused && this.channel.queuedBytes > BACKLOG_PAUSE_RINGS * this.channel.capacity) {
      this.paused = true;
      this.channel.pauseReading();
    }
    return p;
  }

  private drainedSome(): void {
    if (this.paused && this.channel.queuedBytes < BACKLOG_RESUME_RINGS * this.channel.capacity) {
      this.paused = false;
      this.channel.resumeReading();
    }
  }

  private finished(): void {
    // Runs after every call: only a shutdown waits here, so no array is made otherwise.
    if (this.calls.size === 0 && this.drainWaiters.length > 0) for (const w of this.drainWaiters.splice(0)) w();
  }

  /** Resolves when no call is in flight. */
  drained(): Promise<void> {
    if (this.calls.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Aborts every call in flight: their handlers see `ctx.signal` abort and the client gets
   * `reason` as each call's terminal ERROR at once.
   */
  abortAll(reason: IpcError): void {
    for (const call of this.calls.valuesCopy()) {
      call.abort(reason);
      this.failCall(call, reason);
    }
  }

  /**
   * Reads what the client has written so far, at once: steps the channel until it finds no
   * more, at most {@link READ_PENDING_STEPS} times (a client that keeps writing cannot hold
   * the server here). Not while reading is paused: those requests wait in the ring.
   */
  readPending(): void {
    for (let i = 0; i < READ_PENDING_STEPS && !this.ended && !this.channel.closed && this.channel.step(); i++);
  }

  /** Sends GOAWAY on the control socket (shutdown). */
  goAway(deadlineMs: number, message: string): void {
    // At most one per session: a client treats a second GOAWAY as a protocol error (review R15).
    if (this.goAwaySent) return;
    this.goAwaySent = true;
    this.conn.trySend(encodeGoAway({ deadlineMs, message }));
  }
  private goAwaySent = false;

  /**
   * Ends the session: aborts calls, tells the client why (`wire`: ERROR id 0; `goAway`),
   * closes the channel (setting its `closed` word) and the control socket, and reports to the
   * server. Idempotent; safe from any callback.
   */
  end(reason: string, options: EndOptions = {}): void {
    if (this.ended) return;
    this.ended = true;
    if (this.calls.size > 0) {
      // Made only when a handler will see it: an error captures a stack, which showed in
      // handshake profiles of connect-and-close.
      const abortWith = options.abortWith ?? new IpcError('CONNECTION_LOST', reason);
      for (const call of this.calls.valuesCopy()) {
        call.done = true;
        call.abort(abortWith);
      }
      this.calls.clear();
    }
    if (options.wire && !this.channel.closed) {
      try {
        this.channel.trySend(encodeFrame(FrameKind.Error, 0, '', options.wire.toJSON()));
      } catch {
        /* the ring is unusable; the control socket's EOF tells the client */
      }
    }
    if (options.goAway) this.goAway(0, options.goAway);
    // The id-0 ERROR goes out before the `closed` word even inside a batch of incoming
    // messages: `endOutgoing` publishes what was written first.
    this.release(reason, options.err);
  }

  private release(reason: string, err: IpcError | undefined): void {
    // The ring's view of a session that ended is the `closed` word, set now, before the control
    // socket's EOF (PROTOCOL.md §6). Everything a handler could still send is refused already
    // (the session is ended), so unmapping and closing fds may wait for the turn's I/O.
    this.channel.endOutgoing();
    this.host.retireChannel(() => {
      try {
        this.channel.close();
      } catch (e) {
        this.host.logger.error({ err: e, slot: this.peer.slot }, 'closing a channel failed');
      }
    });
    this.conn.close();
    for (const w of this.drainWaiters.splice(0)) w();
    this.host.sessionEnded(this, reason, err);
  }
}
