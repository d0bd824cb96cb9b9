/**
 * {@link IpcClient}: connects to an {@link IpcServer}, makes requests and opens streams,
 * many at once on one connection, matched by id.
 * @packageDocumentation
 */
import { EventEmitter } from 'node:events';
import { IpcError } from '../errors';
import { ControlType, decodeGoAway, Welcome } from '../protocol/control';
import { decodeFrame, decodePayload, encodeFrame, Frame, FrameKind, Payload } from '../protocol/frame';
import type { Channel, ChannelOptions } from '../transport/channel';
import { ControlConnection } from './control-connection';
import { clientHandshake } from './handshake';
import { controlPath, defaultSocketPath } from './paths';

/** Automatic reconnection: exponential backoff with jitter. */
export interface ReconnectOptions {
  /** First delay, ms. Default 50. */
  initialDelayMs?: number;
  /** Largest delay, ms. Default 5000. */
  maxDelayMs?: number;
  /** Give up after this many failed attempts in a row. Default: never. */
  maxAttempts?: number;
}

/** Options of {@link IpcClient.connect}. */
export interface IpcClientOptions {
  /** Name sent in HELLO, shown in the server's logs. Default `node-<pid>`. */
  name?: string;
  /** Handshake timeout, ms. Default 2000. */
  handshakeTimeoutMs?: number;
  /** How the client's channel polls and sleeps. */
  channel?: Pick<ChannelOptions, 'idle' | 'spinMicros' | 'wake' | 'zeroCopy'>;
  /** Reconnect automatically when the connection is lost. Default off. */
  reconnect?: boolean | ReconnectOptions;
}

/** Options of one call. */
export interface CallOptions {
  /** Cancels the call (the server's handler sees its signal abort). */
  signal?: AbortSignal;
  /** Fails the call with TIMEOUT (and cancels it on the server) after this many ms. */
  timeout?: number;
}

/** A request waiting for its reply; settles once, then releases its timer and listener. */
class PendingRequest {
  readonly kind = 'request';
  cleanups: Array<() => void> = [];
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
    for (const c of this.cleanups) c();
    return true;
  }
}

type PendingCall = PendingRequest | { kind: 'stream'; onChunk: (v: unknown) => void; onEnd: (e?: IpcError) => void };

interface Connection {
  conn: ControlConnection;
  channel: Channel;
  welcome: Welcome;
  goingAway: boolean;
}

/** The IPC client. Events: `disconnect` (err), `reconnect`, `goaway` (message). */
export class IpcClient extends EventEmitter {
  private current: Connection | null = null;
  private connecting: Promise<Connection> | null = null;
  private readonly calls = new Map<number, PendingCall>();
  private nextId = 1;
  private isClosed = false;
  private readonly reconnect: Required<ReconnectOptions> | null;

  private constructor(
    /** The server's socket path. */
    readonly socketPath: string,
    private readonly options: IpcClientOptions,
  ) {
    super();
    const r = options.reconnect;
    this.reconnect = r ? { initialDelayMs: 50, maxDelayMs: 5000, maxAttempts: Infinity, ...(r === true ? {} : r) } : null;
  }

  /** Connects and completes the handshake. */
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
    const conn = ControlConnection.connect(controlPath(this.socketPath));
    const { welcome, channel } = await clientHandshake(conn, {
      name: this.options.name ?? `node-${process.pid}`,
      timeoutMs: this.options.handshakeTimeoutMs ?? 2000,
      channel: this.options.channel ?? {},
    });
    const c: Connection = { conn, channel, welcome, goingAway: false };
    if (this.isClosed) {
      channel.close();
      conn.close();
      throw new IpcError('CHANNEL_CLOSED', 'client closed');
    }
    this.current = c;
    channel.onMessage((msg) => this.onFrame(msg));
    channel.onClose((err) => this.lost(c, err ?? new IpcError('CONNECTION_LOST', 'server closed the channel', { retryable: true })));
    conn.onClose((err) =>
      this.lost(
        c,
        new IpcError('CONNECTION_LOST', err ? `control connection failed: ${err.message}` : 'server closed the connection', {
          retryable: true,
          cause: err,
        }),
      ),
    );
    conn.onFrame((f) => {
      f.fds?.close();
      if (f.type === ControlType.GoAway) {
        c.goingAway = true;
        this.emit('goaway', decodeGoAway(f.body).message);
      }
    });
    return c;
  }

  private lost(c: Connection, err: IpcError): void {
    if (this.current !== c) return;
    this.current = null;
    c.channel.close();
    c.conn.close();
    // Every call in flight fails now, rather than waiting for a timeout.
    const calls = [...this.calls.values()];
    this.calls.clear();
    for (const call of calls) {
      if (call.kind === 'request') call.reject(err);
      else call.onEnd(err);
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
          throw new IpcError('CONNECTION_LOST', `could not reconnect after ${attempt + 1} attempts: ${(e as Error).message}`, {
            retryable: true,
            cause: e,
          });
        }
      }
    }
  }

  private async connection(): Promise<Connection> {
    if (this.isClosed) throw new IpcError('CHANNEL_CLOSED', 'client closed');
    const c = this.current ?? (this.connecting ? await this.connecting : null);
    if (!c) throw new IpcError('CONNECTION_LOST', 'not connected to the server', { retryable: true });
    if (c.goingAway) throw new IpcError('GOING_AWAY', 'server is shutting down', { retryable: true });
    return c;
  }

  private allocId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = this.nextId === 0xffffffff ? 1 : this.nextId + 1;
      if (!this.calls.has(id)) return id;
    }
  }

  private onFrame(msg: Uint8Array): void {
    let frame: Frame;
    try {
      frame = decodeFrame(msg);
    } catch (e) {
      const c = this.current;
      if (c) this.lost(c, e as IpcError);
      return;
    }
    const call = this.calls.get(frame.id);
    if (!call) return; // a late reply to a call we cancelled
    switch (frame.kind) {
      case FrameKind.Response:
        this.calls.delete(frame.id);
        if (call.kind === 'request') this.settle(call, frame);
        return;
      case FrameKind.StreamChunk:
        if (call.kind === 'stream') {
          try {
            call.onChunk(decodePayload(frame));
          } catch (e) {
            this.calls.delete(frame.id);
            call.onEnd(e as IpcError);
          }
        }
        return;
      case FrameKind.StreamEnd:
        this.calls.delete(frame.id);
        if (call.kind === 'stream') call.onEnd();
        return;
      case FrameKind.Error: {
        this.calls.delete(frame.id);
        const err = errorFromFrame(frame);
        if (call.kind === 'request') call.reject(err);
        else call.onEnd(err);
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

  private cancel(c: Connection, id: number): void {
    if (!this.calls.delete(id)) return;
    c.channel.send(encodeFrame(FrameKind.Cancel, id, '')).catch(() => undefined);
  }

  /**
   * Calls `method` with `payload` (bytes as they are, anything else as JSON) and resolves with
   * the result (a Buffer for bytes, the parsed value for JSON). Fails with a typed
   * {@link IpcError}: the handler's error, UNKNOWN_METHOD, TIMEOUT, CANCELLED, or a retryable
   * CONNECTION_LOST within milliseconds of losing the server.
   */
  request<T = unknown>(method: string, payload?: Payload, options: CallOptions = {}): Promise<T> {
    if (options.signal?.aborted) return Promise.reject(new IpcError('CANCELLED', 'request cancelled', { cause: options.signal.reason }));
    // With a session open (the usual case) the call goes out synchronously, with no extra await.
    const c = this.current;
    if (c && !c.goingAway && !this.isClosed) return this.call<T>(c, method, payload, options);
    return this.connection().then((conn) => this.call<T>(conn, method, payload, options));
  }

  private call<T>(c: Connection, method: string, payload: Payload, options: CallOptions): Promise<T> {
    const id = this.allocId();
    const frame = encodeFrame(FrameKind.Request, id, method, payload ?? null);
    if (frame.length > c.channel.maxMessage) {
      return Promise.reject(
        new IpcError('MESSAGE_TOO_LARGE', `request of ${frame.length} bytes exceeds the server's limit of ${c.channel.maxMessage} bytes`),
      );
    }
    return new Promise<T>((resolve, reject) => {
      const call = new PendingRequest(resolve as (v: unknown) => void, reject);
      this.calls.set(id, call);
      if (options.signal || options.timeout !== undefined) this.guard(c, id, method, call, options);
      // Without a promise when the ring has room, which is almost always.
      if (!c.channel.trySend(frame)) {
        c.channel.send(frame).catch((e: IpcError) => {
          if (this.calls.delete(id)) call.reject(e);
        });
      }
    });
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
      call.cleanups.push(() => signal.removeEventListener('abort', onAbort));
    }
    if (timeout !== undefined) {
      const timer = setTimeout(() => {
        this.cancel(c, id);
        call.reject(new IpcError('TIMEOUT', `${method} timed out after ${timeout} ms`, { retryable: true }));
      }, timeout);
      call.cleanups.push(() => clearTimeout(timer));
    }
  }

  /**
   * Opens a stream: iterate the result to receive chunks. Breaking out of the loop (or
   * aborting `signal`) cancels the stream on the server. Errors arrive as a typed
   * {@link IpcError} thrown from the loop.
   */
  stream<T = unknown>(method: string, payload?: Payload, options: CallOptions = {}): AsyncIterable<T> {
    return { [Symbol.asyncIterator]: () => this.openStream<T>(method, payload, options) };
  }

  private openStream<T>(method: string, payload: Payload, options: CallOptions): AsyncIterator<T> {
    const queue: T[] = [];
    let ended = false;
    let failure: IpcError | undefined;
    let waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | null = null;
    let id = 0;
    let conn: Connection | null = null;
    const wake = (): void => {
      if (!waiter) return;
      const w = waiter;
      waiter = null;
      if (queue.length) w.resolve({ value: queue.shift() as T, done: false });
      else if (failure) w.reject(failure);
      else if (ended) w.resolve({ value: undefined, done: true });
      else waiter = w;
    };
    const finish = (err?: IpcError): void => {
      if (ended) return;
      ended = true;
      failure = err;
      options.signal?.removeEventListener('abort', onAbort);
      wake();
    };
    const onAbort = (): void => {
      if (conn) this.cancel(conn, id);
      finish(new IpcError('CANCELLED', 'stream cancelled', { cause: options.signal?.reason }));
    };
    const opened = (async () => {
      if (options.signal?.aborted) throw new IpcError('CANCELLED', 'stream cancelled', { cause: options.signal.reason });
      conn = await this.connection();
      id = this.allocId();
      this.calls.set(id, {
        kind: 'stream',
        onChunk: (v) => {
          queue.push(v as T);
          wake();
        },
        onEnd: finish,
      });
      options.signal?.addEventListener('abort', onAbort, { once: true });
      await conn.channel.send(encodeFrame(FrameKind.StreamOpen, id, method, payload ?? null));
    })().catch((e) => {
      this.calls.delete(id);
      finish(e instanceof IpcError ? e : new IpcError('CONNECTION_LOST', (e as Error).message, { retryable: true }));
    });
    return {
      next: async () => {
        await opened;
        if (queue.length) return { value: queue.shift() as T, done: false };
        if (failure) throw failure;
        if (ended) return { value: undefined, done: true };
        return new Promise<IteratorResult<T>>((resolve, reject) => {
          waiter = { resolve, reject };
        });
      },
      return: async () => {
        await opened;
        if (!ended && conn) {
          this.cancel(conn, id);
          finish();
        }
        return { value: undefined, done: true };
      },
    };
  }

  /** Asks the server for its metrics (the built-in `$metrics` method). */
  serverMetrics(format: 'json' | 'prometheus' = 'json'): Promise<unknown> {
    return this.request('$metrics', { format });
  }

  /** Closes the connection; calls in flight fail with CHANNEL_CLOSED. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const c = this.current;
    if (c) this.lost(c, new IpcError('CHANNEL_CLOSED', 'client closed'));
  }
}

function errorFromFrame(frame: Frame): IpcError {
  try {
    const e = decodePayload(frame) as { code?: string; message?: string; retryable?: boolean; details?: Record<string, unknown> };
    return new IpcError(e.code ?? 'HANDLER_ERROR', e.message ?? 'unknown error', { retryable: e.retryable === true, details: e.details });
  } catch {
    return new IpcError('PROTOCOL_ERROR', 'malformed error frame');
  }
}
