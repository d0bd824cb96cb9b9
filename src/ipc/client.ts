/**
 * {@link IpcClient}: connects to an {@link IpcServer}, makes requests and opens streams,
 * many at once on one connection, matched by id.
 *
 * The server is not trusted either: a malformed control or data frame, a frame of a kind a
 * server may not send, or a stream that overruns the window it was granted ends the connection
 * with a typed error (PROTOCOL_ERROR) and fails every call on it; nothing it sends can throw
 * out of a callback.
 * @packageDocumentation
 */
import { EventEmitter } from 'node:events';
import {
  CLIENT_QUEUED_RINGS,
  DEFAULT_CLIENT_MAX_QUEUED_BYTES,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_INCOMING_MESSAGE,
  DEFAULT_RECONNECT_INITIAL_DELAY_MS,
  DEFAULT_RECONNECT_MAX_DELAY_MS,
  DEFAULT_STREAM_WINDOW,
} from '../defaults';
import type { StreamWindow } from '../defaults';
import { HandshakeError, IpcError } from '../errors';
import { ControlType, decodeGoAway, decodeReject } from '../protocol/control';
import { rejectName } from '../protocol/reject';
import type { Welcome } from '../protocol/control';
import {
  checkMethod,
  decodeFrame,
  decodePayload,
  encodeCredit,
  encodeFrame,
  encodeParts,
  FRAME_HEADER,
  FrameKind,
  isClientKind,
  partsLength,
} from '../protocol/frame';
import type { Frame, Payload } from '../protocol/frame';
import type { Channel } from '../transport/channel';
import { BoundedFifo } from '../util/fifo';
import { IdTable } from '../util/id-table';
import type { ControlFrame } from './control-connection';
import { ControlConnection } from './control-connection';
import { clientHandshake } from './handshake';
import { channelTuningOption, intOption, maxMessageOption, stringOption, streamWindowOption, uidsOption } from './options';
import type { ChannelTuning } from './options';
import { checkSocketPathSyntax, defaultSocketPath, refuseDirectory } from './paths';

export type { StreamWindow } from '../defaults';

/**
 * Automatic reconnection: exponential backoff with jitter.
 * @category IPC
 */
export interface ReconnectOptions {
  /** First delay, ms. Default 50. */
  initialDelayMs?: number;
  /** Largest delay, ms. Default 5000. */
  maxDelayMs?: number;
  /** Give up after this many failed attempts in a row. Default: never. */
  maxAttempts?: number;
}

/**
 * Options of {@link IpcClient.connect}. Every option is checked (INVALID_ARGUMENT).
 * @category IPC
 */
export interface IpcClientOptions {
  /** Name sent in HELLO, shown in the server's logs. Default `node-<pid>`. */
  name?: string;
  /** Handshake timeout, ms. Default 2000. */
  handshakeTimeoutMs?: number;
  /** How the client's channel polls and sleeps. */
  channel?: ChannelTuning;
  /** Reconnect automatically when the connection is lost. Default off. */
  reconnect?: boolean | ReconnectOptions;
  /**
   * Flow-control window granted to each stream (chunks and payload bytes the server may send
   * ahead of the consumer). Default 256 chunks, 4 MiB. Override per call with
   * {@link StreamOptions.window}.
   */
  streamWindow?: Partial<StreamWindow>;
  /**
   * Uids the server may run as, checked on the control socket's SO_PEERCRED before HELLO is
   * sent; any other server is refused with PEER_NOT_TRUSTED. Default: only this process's own
   * uid (`process.getuid()`). The list replaces the default, so include your own uid to keep it.
   */
  serverUids?: readonly number[];
  /**
   * Largest message this client accepts from the server, bytes (whole data frame); the smaller
   * of it and the server's announced max_message applies. Default 64 MiB. The channel has one
   * limit for both directions, so it also caps what this client sends.
   */
  maxIncomingMessage?: number;
  /**
   * Bytes of sends this client queues behind a full ring (a server that stopped reading)
   * before further calls fail at once with the retryable SEND_QUEUE_FULL. Default: the larger
   * of 4 ring capacities and 64 MiB.
   */
  maxQueuedBytes?: number;
}

/**
 * Options of one call.
 * @category IPC
 */
export interface CallOptions {
  /** Cancels the call (the server's handler sees its signal abort). */
  signal?: AbortSignal;
  /** Fails the call with TIMEOUT (and cancels it on the server) after this many ms. */
  timeout?: number;
}

/**
 * Options of one stream.
 * @category IPC
 */
export interface StreamOptions extends CallOptions {
  /** This stream's window; default the client's `streamWindow`. */
  window?: Partial<StreamWindow>;
}

/** A request waiting for its reply; settles once, then releases its timer and listener. */
class PendingRequest {
  readonly kind = 'request';
  /** Made only for calls with a timeout or signal. */
  cleanups: Array<() => void> | null = null;
  /**
   * Set while the REQUEST waits in the channel's send queue: `withdraw` takes it out if none of
   * it is in the ring yet; `left` resolves true once it went out whole, false if it never did.
   */
  queuedSend: { withdraw: () => void; left: Promise<boolean> } | null = null;
  private settled = false;

  constructor(
    private readonly onResolve: (v: unknown) => void,
    private readonly onReject: (e: IpcError) => void,
  ) {}

  resolve(v: unknown): void {
    if (this.settle()) this.onResolve(v);
  }

  reject(e: IpcError): void {
    if (this.settle()) this.onReject(e);
  }

  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    if (this.cleanups) for (const c of this.cleanups) c();
    return true;
  }
}

interface Connection {
  conn: ControlConnection;
  channel: Channel;
  welcome: Welcome;
  goingAway: boolean;
}

/**
 * One stream's receiving side: a bounded queue of chunks and the window bookkeeping. The
 * server may have at most `window.chunks` chunks outstanding, so the queue never holds more;
 * credit goes back as the consumer takes chunks, not as they arrive.
 */
class StreamCall {
  readonly kind = 'stream';
  readonly queue: BoundedFifo<{ value: unknown; size: number }>;
  private consumedChunks = 0;
  private consumedBytes = 0;
  /** Payload bytes the server may still send: granted minus received (may go below 0 by one chunk). */
  private byteCredit: number;
  ended = false;
  failure: IpcError | undefined;
  waiter: { resolve: (r: IteratorResult<unknown>) => void; reject: (e: unknown) => void } | null = null;
  onFinish: (() => void) | null = null;
  /** Set while STREAM_OPEN waits in the send queue (see {@link PendingRequest.queuedSend}). */
  queuedSend: { withdraw: () => void; left: Promise<boolean> } | null = null;

  constructor(
    readonly id: number,
    readonly window: StreamWindow,
    private readonly grant: (chunks: number, bytes: number) => void,
  ) {
    this.queue = new BoundedFifo(window.chunks);
    this.byteCredit = window.bytes;
  }

  /**
   * A chunk arrived; false when it overruns the window (the server broke the protocol): more
   * chunks than granted, or a chunk sent while no byte credit was left (PROTOCOL.md §5 allows
   * only the one chunk that crosses zero).
   */
  push(value: unknown, size: number): boolean {
    if (this.byteCredit < 1 || !this.queue.push({ value, size })) return false;
    this.byteCredit -= size;
    this.wake();
    return true;
  }

  /** The consumer took a chunk: return credit once half the window is used. */
  consumed(size: number): void {
    if (this.ended) return;
    this.consumedChunks++;
    this.consumedBytes += size;
    if (this.consumedChunks * 2 >= this.window.chunks || this.consumedBytes * 2 >= this.window.bytes) {
      const bytes = Math.max(1, this.consumedBytes);
      this.byteCredit += bytes;
      this.grant(this.consumedChunks, bytes);
      this.consumedChunks = 0;
      this.consumedBytes = 0;
    }
  }

  finish(err?: IpcError): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = err;
    this.onFinish?.();
    this.wake();
  }

  wake(): void {
    const w = this.waiter;
    if (!w) return;
    const item = this.queue.shift();
    if (item) {
      this.waiter = null;
      this.consumed(item.size);
      w.resolve({ value: item.value, done: false });
    } else if (this.ended) {
      this.waiter = null;
      if (this.failure) w.reject(this.failure);
      else w.resolve({ value: undefined, done: true });
    }
  }
}

type PendingCall = PendingRequest | StreamCall;

/** `close()` was called: the error is made only if a call is there to receive it. */
const CLIENT_CLOSED = Symbol('client closed');

/** The options of a call made without any: one object, not one per call. */
const NO_OPTIONS: CallOptions = Object.freeze({});

const NOOP = (): void => undefined;

/**
 * The resolving functions of the promise just made with `new Promise(capture)`: a module-level
 * executor allocates no closure per call. Read at once, before anything else makes a promise.
 */
const captured: { resolve: (v: unknown) => void; reject: (e: IpcError) => void } = { resolve: NOOP, reject: NOOP };
function capture(resolve: (v: never) => void, reject: (e: unknown) => void): void {
  captured.resolve = resolve as (v: unknown) => void;
  captured.reject = reject;
}

/**
 * The IPC client. Events: `disconnect` (err), `reconnect`, `goaway` (message).
 * @example
 * ```ts
 * import { IpcClient } from 'lapce-ai-ipc';
 *
 * const client = await IpcClient.connect('/run/user/1000/app.sock');
 * const sum = await client.request<number>('add', { a: 1, b: 2 });
 * for await (const i of client.stream<number>('count', { n: 3 })) console.log(i);
 * client.close();
 * ```
 * @category IPC
 */
export class IpcClient extends EventEmitter {
  private current: Connection | null = null;
  private connecting: Promise<Connection> | null = null;
  /** Calls in flight by id (not a Map: see `IdTable`). */
  private readonly calls = new IdTable<PendingCall>();
  private nextId = 1;
  private isClosed = false;
  private readonly reconnect: Required<ReconnectOptions> | null;
  private readonly name: string;
  private readonly handshakeTimeoutMs: number;
  private readonly channelTuning: ChannelTuning;
  private readonly streamWindow: StreamWindow;
  private readonly serverUids: readonly number[];
  private readonly maxIncomingMessage: number;
  private readonly maxQueuedBytes: number | undefined;
  /** The control socket's path. */
  readonly controlPath: string;

  private constructor(
    /** The server's socket path, as given (`P` or `P.ctl`). */
    readonly socketPath: string,
    options: IpcClientOptions,
  ) {
    super();
    this.controlPath = checkSocketPathSyntax(socketPath).controlPath;
    this.name = stringOption('name', options.name, `node-${process.pid}`);
    this.handshakeTimeoutMs = intOption('handshakeTimeoutMs', options.handshakeTimeoutMs, DEFAULT_HANDSHAKE_TIMEOUT_MS, 1, 2 ** 31 - 1);
    this.channelTuning = channelTuningOption('channel', options.channel);
    this.streamWindow = streamWindowOption('streamWindow', options.streamWindow, DEFAULT_STREAM_WINDOW);
    this.maxIncomingMessage = maxMessageOption('maxIncomingMessage', options.maxIncomingMessage, DEFAULT_MAX_INCOMING_MESSAGE);
    this.maxQueuedBytes =
      options.maxQueuedBytes === undefined ? undefined : intOption('maxQueuedBytes', options.maxQueuedBytes, 0, 1, Number.MAX_SAFE_INTEGER);
    this.serverUids = uidsOption('serverUids', options.serverUids, [process.getuid?.() ?? 0]);
    const r = options.reconnect;
    if (r !== undefined && typeof r !== 'boolean' && (typeof r !== 'object' || r === null)) {
      throw new IpcError('INVALID_ARGUMENT', 'option reconnect must be a boolean or an object');
    }
    if (r) {
      const o = r === true ? {} : r;
      this.reconnect = {
        initialDelayMs: intOption('reconnect.initialDelayMs', o.initialDelayMs, DEFAULT_RECONNECT_INITIAL_DELAY_MS, 1, 2 ** 31 - 1),
        maxDelayMs: intOption('reconnect.maxDelayMs', o.maxDelayMs, DEFAULT_RECONNECT_MAX_DELAY_MS, 1, 2 ** 31 - 1),
        maxAttempts:
          o.maxAttempts === undefined || o.maxAttempts === Infinity
            ? Infinity
            : intOption('reconnect.maxAttempts', o.maxAttempts, 0, 1, 2 ** 31 - 1),
      };
    } else {
      this.reconnect = null;
    }
  }

  /**
   * Connects and completes the handshake. `socketPath` may be `P` or `P.ctl`. Fails with
   * INVALID_ARGUMENT for a bad option or path (too long for a Unix socket, a directory), with a
   * {@link HandshakeError} when the server refuses (`reason` says why, e.g. `server_full`, and
   * the message carries the server's), or with CONNECTION_LOST whose `cause` has Node's
   * `code` (ENOENT, ECONNREFUSED, EACCES), `syscall` and `address`.
   */
  static async connect(socketPath: string = defaultSocketPath(), options: IpcClientOptions = {}): Promise<IpcClient> {
    const client = new IpcClient(socketPath, options);
    client.connecting = client.establish();
    try {
      await client.connecting;
    } finally {
      client.connecting = null;
    }
    return client;
  }

  /** The server's session parameters (slot, sizes, limits). */
  get session(): Welcome | null {
    return this.current?.welcome ?? null;
  }

  /** Whether a session is open now. */
  get connected(): boolean {
    return this.current !== null;
  }

  private async establish(): Promise<Connection> {
    let conn: ControlConnection;
    try {
      conn = ControlConnection.connect(this.controlPath);
    } catch (e) {
      // A directory is a mistake to name, not a server to wait for (see checkSocketPathSyntax).
      refuseDirectory(this.socketPath);
      throw e;
    }
    const { welcome, channel } = await clientHandshake(conn, {
      name: this.name,
      timeoutMs: this.handshakeTimeoutMs,
      channel: this.channelTuning,
      serverUids: this.serverUids,
      maxIncomingMessage: this.maxIncomingMessage,
    });
    const c: Connection = { conn, channel, welcome, goingAway: false };
    if (this.isClosed) {
      channel.close();
      conn.close();
      throw new IpcError('CHANNEL_CLOSED', 'client closed');
    }
    this.current = c;
    channel.onMessage((msg) => this.onData(c, msg));
    channel.onClose((err) => {
      if (this.current === c) this.lost(c, err ?? new IpcError('CONNECTION_LOST', 'server closed the channel'));
    });
    conn.onClose((err) => {
      if (this.current !== c) return; // we closed it

      // Replies the server wrote before hanging up (GOING_AWAY errors, an id-0 ERROR) are
      // read first, so the calls fail with the server's reason when it gave one.
      this.drainChannel(c);
      this.lost(
        c,
        err?.code === 'PROTOCOL_ERROR'
          ? err
          : new IpcError('CONNECTION_LOST', err ? `control connection failed: ${err.message}` : 'server closed the connection', {
              cause: err,
            }),
      );
    });
    conn.onFrame((f) => this.onControl(c, f));
    return c;
  }

  private drainChannel(c: Connection): void {
    if (c.channel.closed) return;
    try {
      (c.channel as unknown as { step(): boolean }).step();
    } catch {
      /* the channel's own failure path closes it */
    }
  }

  private onControl(c: Connection, f: ControlFrame): void {
    f.fds?.close();
    if (f.type === ControlType.Reject) {
      // The server refused after all (it had not read our READY yet, e.g. shutting down).
      let err: IpcError;
      try {
        const r = decodeReject(f.body);
        err = new HandshakeError(r.reason, `server rejected the connection (${rejectName(r.reason)}): ${r.message}`, {
          details: { serverMessage: r.message },
        });
      } catch (e) {
        err = e instanceof IpcError ? e : new IpcError('PROTOCOL_ERROR', String(e));
      }
      this.lost(c, err);
      return;
    }
    if (f.type !== ControlType.GoAway) {
      this.lost(c, new IpcError('PROTOCOL_ERROR', `server sent control frame type ${f.type} after the handshake`));
      return;
    }
    let message: string;
    try {
      message = decodeGoAway(f.body).message;
    } catch (e) {
      this.lost(c, e instanceof IpcError ? e : new IpcError('PROTOCOL_ERROR', String(e)));
      return;
    }
    // An honest server sends one GOAWAY per session; a flood of them must not become a flood of events.
    if (c.goingAway) {
      this.lost(c, new IpcError('PROTOCOL_ERROR', 'server sent a second GOAWAY'));
      return;
    }
    c.goingAway = true;
    this.emit('goaway', message);
  }

  private lost(c: Connection, reason: IpcError | typeof CLIENT_CLOSED): void {
    if (this.current !== c) return;
    this.current = null;
    c.channel.close();
    c.conn.close();
    if (reason === CLIENT_CLOSED && this.calls.size === 0) return; // nothing to tell anyone
    const err = reason === CLIENT_CLOSED ? new IpcError('CHANNEL_CLOSED', 'client closed') : reason;
    // Every call in flight fails now, rather than waiting for a timeout.
    const calls = this.calls.valuesCopy();
    this.calls.clear();
    for (const call of calls) {
      if (call.kind === 'request') call.reject(err);
      else call.finish(err);
    }
    if (!this.isClosed) this.emit('disconnect', err);
    if (this.reconnect && !this.isClosed) (this.connecting = this.reconnectLoop()).catch(() => undefined); // callers see the failure; never unhandled
  }

  private async reconnectLoop(): Promise<Connection> {
    const r = this.reconnect as Required<ReconnectOptions>;
    for (let attempt = 0; ; attempt++) {
      const cap = Math.min(r.maxDelayMs, r.initialDelayMs * 2 ** attempt);
      await new Promise((res) => setTimeout(res, cap / 2 + Math.random() * (cap / 2)));
      if (this.isClosed) throw new IpcError('CHANNEL_CLOSED', 'client closed');
      try {
        const c = await this.establish();
        this.connecting = null;
        this.emit('reconnect');
        return c;
      } catch (e) {
        if (attempt + 1 >= r.maxAttempts) {
          this.connecting = null;
          throw new IpcError('CONNECTION_LOST', `could not reconnect after ${attempt + 1} attempts: ${(e as Error).message}`, { cause: e });
        }
      }
    }
  }

  private async connection(): Promise<Connection> {
    if (this.isClosed) throw new IpcError('CHANNEL_CLOSED', 'client closed');
    const c = this.current ?? (this.connecting ? await this.connecting : null);
    if (!c) throw new IpcError('CONNECTION_LOST', 'not connected to the server');
    if (c.goingAway) throw new IpcError('GOING_AWAY', 'server is shutting down');
    return c;
  }

  private allocId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = this.nextId === 0xffffffff ? 1 : this.nextId + 1;
      if (!this.calls.has(id)) return id;
    }
  }

  private onData(c: Connection, msg: Uint8Array): void {
    try {
      this.dispatch(c, msg);
    } catch (e) {
      this.lost(
        c,
        e instanceof IpcError ? e : new IpcError('PROTOCOL_ERROR', `cannot handle a frame: ${(e as Error)?.message ?? String(e)}`),
      );
    }
  }

  private dispatch(c: Connection, msg: Uint8Array): void {
    let frame: Frame;
    try {
      frame = decodeFrame(msg);
    } catch (e) {
      this.lost(c, e as IpcError);
      return;
    }
    if (isClientKind(frame.kind)) {
      this.lost(c, new IpcError('PROTOCOL_ERROR', `server sent frame kind ${frame.kind}, which only clients send`));
      return;
    }
    if (frame.id === 0) {
      // A connection-level error: the server ends the session and says why.
      let err: IpcError;
      try {
        err = IpcError.fromJSON(decodePayload(frame));
      } catch {
        err = new IpcError('PROTOCOL_ERROR', 'malformed connection-level error frame');
      }
      this.lost(c, err);
      return;
    }
    const call = this.calls.get(frame.id);
    if (!call) return; // a late reply to a call we cancelled
    switch (frame.kind) {
      case FrameKind.Response:
        this.calls.delete(frame.id);
        if (call.kind === 'request') this.settle(call, frame);
        else call.finish(new IpcError('PROTOCOL_ERROR', 'server answered a stream with a RESPONSE'));
        return;
      case FrameKind.StreamChunk:
        if (call.kind === 'stream') {
          let value: unknown;
          try {
            value = decodePayload(frame);
          } catch (e) {
            this.calls.delete(frame.id);
            this.cancelOnServer(c, frame.id);
            call.finish(e as IpcError);
            return;
          }
          if (!call.push(value, msg.length - FRAME_HEADER)) {
            this.lost(
              c,
              new IpcError(
                'PROTOCOL_ERROR',
                `server overran the window of stream ${frame.id} (${call.window.chunks} chunks, ${call.window.bytes} bytes)`,
              ),
            );
          }
        } else {
          this.calls.delete(frame.id);
          call.reject(new IpcError('PROTOCOL_ERROR', 'server answered a request with a STREAM_CHUNK'));
        }
        return;
      case FrameKind.StreamEnd:
        this.calls.delete(frame.id);
        if (call.kind === 'stream') call.finish();
        else call.reject(new IpcError('PROTOCOL_ERROR', 'server answered a request with a STREAM_END'));
        return;
      case FrameKind.Error: {
        this.calls.delete(frame.id);
        let err: IpcError;
        try {
          err = IpcError.fromJSON(decodePayload(frame));
        } catch {
          err = new IpcError('PROTOCOL_ERROR', 'malformed error frame');
        }
        if (call.kind === 'request') call.reject(err);
        else call.finish(err);
        return;
      }
    }
  }

  private settle(call: PendingRequest, frame: Frame): void {
    try {
      call.resolve(decodePayload(frame));
    } catch (e) {
      call.reject(e as IpcError);
    }
  }

  /** Sends a frame that needs no answer; a failure only means the connection is going. */
  private sendQuiet(c: Connection, frame: Uint8Array): void {
    if (c.channel.closed) return;
    try {
      if (c.channel.trySend(frame)) return;
    } catch {
      return;
    }
    c.channel.send(frame).catch(() => undefined);
  }

  private cancelOnServer(c: Connection, id: number): void {
    this.sendQuiet(c, encodeFrame(FrameKind.Cancel, id, ''));
  }

  private cancel(c: Connection, id: number): void {
    const call = this.calls.get(id);
    if (!call) return;
    this.calls.delete(id);
    const queued = call.queuedSend;
    if (!queued) {
      this.cancelOnServer(c, id);
      return;
    }
    // Still in our send queue: take it back; only a REQUEST the server got needs a CANCEL.
    queued.withdraw();
    void queued.left.then((left) => {
      if (left) this.cancelOnServer(c, id);
    });
  }

  /**
   * Calls `method` with `payload` (bytes as they are, anything else as JSON; `undefined` is
   * sent as `null`) and resolves with the result (a Buffer for bytes, the parsed value for
   * JSON; a handler's `undefined` arrives as `null`). Never throws: it rejects with a typed
   * {@link IpcError}: INVALID_ARGUMENT for an empty or over-long method name or a payload JSON
   * cannot encode (checked here, never sent), the handler's error, UNKNOWN_METHOD, TIMEOUT,
   * CANCELLED, or a retryable CONNECTION_LOST within milliseconds of losing the server.
   *
   * Bytes are not copied on the way: they are read as they go into the ring, which, when the
   * ring is full, is after this returns. Leave a `Uint8Array` payload unchanged until the call
   * settles.
   */
  request<T = unknown>(method: string, payload?: Payload, options: CallOptions = NO_OPTIONS): Promise<T> {
    let frame: Buffer;
    let body: Uint8Array | null = null;
    try {
      checkMethod(method);
      if (options.timeout !== undefined) intOption('timeout', options.timeout, 0, 0, 2 ** 31 - 1);
      if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
        throw new IpcError('INVALID_ARGUMENT', 'option signal must be an AbortSignal');
      }
      if (options.signal?.aborted) return Promise.reject(new IpcError('CANCELLED', 'request cancelled', { cause: options.signal.reason }));
      // Encoded before an id is taken: a payload that cannot be encoded fails here, locally.
      // Transient (a reused buffer): `call` hands it to the ring before anything else encodes.
      // Large bytes are not copied into the frame: they go into the ring as its second part.
      const f = encodeParts(FrameKind.Request, 0, method, payload ?? null);
      frame = f.head;
      body = f.body;
    } catch (e) {
      return Promise.reject(e);
    }
    // With a session open (the usual case) the call goes out synchronously, with no extra await.
    const c = this.current;
    if (c && !c.goingAway && !this.isClosed) return this.call<T>(c, method, frame, body, options);
    return this.callWhenConnected<T>(method, frame, body, options);
  }

  /** {@link request} before a session is open: the call waits for one. */
  private callWhenConnected<T>(method: string, frame: Buffer, body: Uint8Array | null, options: CallOptions): Promise<T> {
    // Sent after an await: both parts are copied now, so what the caller does meanwhile (or a
    // transient view changing) cannot reach the wire.
    const owned = Buffer.from(frame);
    const ownedBody = body === null ? null : Buffer.from(body);
    return this.connection().then((conn) => this.call<T>(conn, method, owned, ownedBody, options));
  }

  // The hot path of every request allocates no closure of its own: the promise's executor is
  // one module-level function (see `capture`), and the rare paths that need closures (a full
  // ring, a timeout or signal) live in methods of their own, so V8 does not build their
  // contexts on every call. Each closure showed as allocation per request in
  // `benches/profile/alloc.ts`.
  private call<T>(c: Connection, method: string, frame: Buffer, body: Uint8Array | null, options: CallOptions): Promise<T> {
    const length = partsLength(frame, body);
    if (length > c.channel.maxMessage) {
      return Promise.reject(
        new IpcError('MESSAGE_TOO_LARGE', `request of ${length} bytes exceeds the server's limit of ${c.channel.maxMessage} bytes`),
      );
    }
    const id = this.allocId();
    frame.writeUInt32LE(id, 4);
    const promise = new Promise<T>(capture);
    const call = new PendingRequest(captured.resolve, captured.reject);
    // Not kept past this call: they would hold the promise, and so its result, until the next.
    captured.resolve = captured.reject = NOOP;
    this.calls.set(id, call);
    try {
      if (options !== NO_OPTIONS && (options.signal || options.timeout !== undefined)) this.guard(c, id, method, call, options);
      // Without a promise when the ring has room, which is almost always. An answer is coming:
      // look for it by polling (a queued send does the same).
      if (c.channel.trySend(frame, body)) c.channel.keepPolling();
      else this.queueRequest(c, id, call, frame, body, length);
    } catch (e) {
      // `request` never throws: whatever failed here fails the call.
      if (this.calls.get(id) === call) this.calls.delete(id);
      call.reject(e instanceof IpcError ? e : new IpcError('IO', String(e)));
    }
    return promise;
  }

  /** A request behind a full ring: queued (bounded), withdrawable until it starts. */
  private queueRequest(c: Connection, id: number, call: PendingRequest, frame: Buffer, body: Uint8Array | null, length: number): void {
    // A server that stops reading must not make our queue grow without bound.
    const limit = this.maxQueuedBytes ?? Math.max(CLIENT_QUEUED_RINGS * c.welcome.capacity, DEFAULT_CLIENT_MAX_QUEUED_BYTES);
    const queued = c.channel.queuedBytes;
    if (queued > 0 && queued + length > limit) {
      this.calls.delete(id);
      call.reject(
        new IpcError('SEND_QUEUE_FULL', `${queued} bytes already wait for the server to read (limit ${limit})`, {
          details: { queuedBytes: queued, limit },
        }),
      );
      return;
    }
    const withdrawal = new AbortController();
    // The channel copies the frame if it is the reused encoding buffer (TRANSIENT); the
    // payload's bytes are the caller's, read as they go into the ring (see `request`).
    const left = c.channel.sendParts(frame, body, { signal: withdrawal.signal }).then(
      () => {
        call.queuedSend = null;
        return true;
      },
      (e: IpcError) => {
        call.queuedSend = null;
        if (this.calls.get(id) === call) {
          this.calls.delete(id);
          call.reject(e);
        }
        return false;
      },
    );
    call.queuedSend = { withdraw: () => withdrawal.abort(), left };
  }

  /** Arms a call's timeout and abort signal. */
  private guard(c: Connection, id: number, method: string, call: PendingRequest, options: CallOptions): void {
    const { signal, timeout } = options;
    if (signal) {
      const onAbort = (): void => {
        this.cancel(c, id);
        call.reject(new IpcError('CANCELLED', 'request cancelled', { cause: signal.reason }));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      (call.cleanups ??= []).push(() => signal.removeEventListener('abort', onAbort));
    }
    if (timeout !== undefined) {
      const timer = setTimeout(() => {
        this.cancel(c, id);
        call.reject(new IpcError('TIMEOUT', `${method} timed out after ${timeout} ms`));
      }, timeout);
      (call.cleanups ??= []).push(() => clearTimeout(timer));
    }
  }

  /**
   * Opens a stream: iterate the result to receive chunks. The server sends ahead at most the
   * stream's window (`options.window`, else the client's `streamWindow`); more is granted as
   * the loop takes chunks, so a slow consumer slows the producer instead of filling memory.
   * Breaking out of the loop (or aborting `signal`) cancels the stream on the server. Errors
   * arrive as a typed {@link IpcError} thrown from the loop (INVALID_ARGUMENT for a bad method
   * name, payload or window, before anything is sent).
   */
  stream<T = unknown>(method: string, payload?: Payload, options: StreamOptions = {}): AsyncIterable<T> {
    return { [Symbol.asyncIterator]: () => this.openStream<T>(method, payload, options) };
  }

  private openStream<T>(method: string, payload: Payload, options: StreamOptions): AsyncIterator<T> {
    let id = 0;
    let conn: Connection | null = null;
    let call: StreamCall | null = null;
    let early: IpcError | undefined;
    const onAbort = (): void => {
      if (conn && call && !call.ended) this.cancel(conn, id);
      call?.finish(new IpcError('CANCELLED', 'stream cancelled', { cause: options.signal?.reason }));
    };
    const opened = (async () => {
      checkMethod(method);
      const window = streamWindowOption('window', options.window, this.streamWindow);
      const open = encodeFrame(FrameKind.StreamOpen, 0, method, payload ?? null);
      if (options.signal?.aborted) throw new IpcError('CANCELLED', 'stream cancelled', { cause: options.signal.reason });
      const c = await this.connection();
      if (open.length > c.channel.maxMessage) {
        throw new IpcError(
          'MESSAGE_TOO_LARGE',
          `stream request of ${open.length} bytes exceeds the server's limit of ${c.channel.maxMessage} bytes`,
        );
      }
      conn = c;
      id = this.allocId();
      open.writeUInt32LE(id, 4);
      const s = new StreamCall(id, window, (chunks, bytes) => {
        if (this.calls.get(id) === s) this.sendQuiet(c, encodeCredit(id, chunks, bytes));
      });
      s.onFinish = () => options.signal?.removeEventListener('abort', onAbort);
      call = s;
      this.calls.set(id, s);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      // STREAM_OPEN and the initial window go out together (PLAN §3: the window starts at 0).
      const credit = encodeCredit(id, window.chunks, window.bytes);
      let openSent: boolean;
      try {
        openSent = c.channel.trySend(open);
      } catch {
        return; // the channel is failing: losing the connection ends this stream
      }
      if (openSent) {
        this.sendQuiet(c, credit);
        c.channel.keepPolling();
        return;
      }
      // Behind a full ring: withdrawable until it starts, like a request (and then no CANCEL).
      const withdrawal = new AbortController();
      const left = c.channel.send(open, { signal: withdrawal.signal }).then(
        () => {
          s.queuedSend = null;
          return true;
        },
        () => {
          s.queuedSend = null;
          return false;
        },
      );
      c.channel.send(credit, { signal: withdrawal.signal }).catch(() => undefined);
      s.queuedSend = { withdraw: () => withdrawal.abort(), left };
    })().catch((e: unknown) => {
      if (call) this.calls.delete(id);
      early = e instanceof IpcError ? e : new IpcError('CONNECTION_LOST', (e as Error).message);
      call?.finish(early);
    });
    return {
      next: async (): Promise<IteratorResult<T>> => {
        await opened;
        const s = call;
        if (!s) throw early;
        const item = s.queue.shift();
        if (item) {
          s.consumed(item.size);
          return { value: item.value as T, done: false };
        }
        if (s.failure) throw s.failure;
        if (s.ended) return { value: undefined, done: true };
        return new Promise<IteratorResult<T>>((resolve, reject) => {
          s.waiter = { resolve: resolve as (r: IteratorResult<unknown>) => void, reject };
        });
      },
      return: async (): Promise<IteratorResult<T>> => {
        await opened;
        const s = call;
        if (s && !s.ended && conn) {
          this.cancel(conn, id);
          s.finish();
        }
        s?.queue.clear();
        return { value: undefined, done: true };
      },
    };
  }

  /** Asks the server for its metrics (the built-in `$metrics` method). */
  serverMetrics(format: 'json' | 'prometheus' = 'json'): Promise<unknown> {
    return this.request('$metrics', { format });
  }

  /** A round trip to the server's built-in `$ping` (a keep-alive; resolves with null). */
  ping(options: CallOptions = NO_OPTIONS): Promise<null> {
    return this.request<null>('$ping', null, options);
  }

  /** Closes the connection; calls in flight fail with CHANNEL_CLOSED. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const c = this.current;
    if (c) this.lost(c, CLIENT_CLOSED);
  }
}
