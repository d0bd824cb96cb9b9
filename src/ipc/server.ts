/**
 * {@link IpcServer}: listens on `<socketPath>.ctl`, runs handshakes, keeps a session per
 * client, dispatches calls to handlers, and shuts down gracefully.
 * @packageDocumentation
 */
import pino, { Logger } from 'pino';
import type { Registry } from 'prom-client';
import native = require('../native');
import type { NativeListener } from '../../index';
import { fromNative, IpcError } from '../errors';
import { encodeGoAway, encodeReject, REJECT_NAMES, RejectReason } from '../protocol/control';
import type { ChannelOptions, ChannelStats } from '../transport/channel';
import { ControlConnection } from './control-connection';
import { HandshakeError, serverHandshake } from './handshake';
import { addStats, ServerMetrics, zeroStats } from './metrics';
import { controlPath, defaultSocketPath, ensureSocketDir } from './paths';
import { HandlerEntry, RequestHandler, Session, StreamHandler } from './session';

/** Options of {@link IpcServer}. */
export interface IpcServerOptions {
  /** Socket path (the control socket is this plus `.ctl`). Default {@link defaultSocketPath}. */
  socketPath?: string;
  /** Ring capacity per direction per connection, bytes (power of two). Default 1 MiB. */
  ringCapacity?: number;
  /** Largest message either side may send, bytes. Default 16 MiB. */
  maxMessage?: number;
  /** Most open sessions. Default 1024. */
  maxConnections?: number;
  /** Most concurrent streams per connection. Default 64. */
  maxStreamsPerConnection?: number;
  /** Handshake timeout, ms. Default 2000. */
  handshakeTimeoutMs?: number;
  /** Close sessions with no incoming frame for this long, ms. Default 0 (off). */
  idleTimeoutMs?: number;
  /** Uids allowed to connect. Default: only the server's own. */
  allowedUids?: number[];
  /** How the server's channels poll and sleep. */
  channel?: Pick<ChannelOptions, 'idle' | 'spinMicros' | 'wake' | 'zeroCopy'>;
  /** pino logger. Default: pino at `LAPCE_AI_LOG_LEVEL` or `info`, to stderr. */
  logger?: Logger;
  /** prom-client registry to register metrics on. Default: a new one. */
  registry?: Registry;
}

/** Options of {@link IpcServer.close}. */
export interface CloseOptions {
  /** How long in-flight calls may take to finish before they are cancelled, ms. Default 5000. */
  deadlineMs?: number;
}

interface Slot {
  generation: number;
  session: Session | null;
  reserved: boolean;
}

/** The IPC server. Register handlers, then {@link IpcServer.listen}. */
export class IpcServer {
  /** The socket path (the control socket is `${socketPath}.ctl`). */
  readonly socketPath: string;
  readonly metricsRegistry: ServerMetrics;
  private readonly opts: Required<Omit<IpcServerOptions, 'socketPath' | 'logger' | 'registry' | 'channel'>> & { channel: ChannelOptions };
  private readonly logger: Logger;
  private readonly handlers = new Map<string, HandlerEntry>();
  private readonly slots: Slot[] = [];
  private readonly freeSlots: number[] = [];
  /** Open sessions, with their control connection and how to end them. */
  private readonly sessions = new Map<Session, { conn: ControlConnection; end: (why: string) => void }>();
  private readonly pending = new Set<ControlConnection>();
  private readonly closedTraffic: ChannelStats = zeroStats();
  private listener: NativeListener | null = null;
  private state: 'new' | 'listening' | 'closing' | 'closed' = 'new';
  private idleTimer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;

  constructor(options: IpcServerOptions = {}) {
    this.socketPath = options.socketPath ?? defaultSocketPath();
    this.opts = {
      ringCapacity: options.ringCapacity ?? 1 << 20,
      maxMessage: options.maxMessage ?? 16 << 20,
      maxConnections: options.maxConnections ?? 1024,
      maxStreamsPerConnection: options.maxStreamsPerConnection ?? 64,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 2000,
      idleTimeoutMs: options.idleTimeoutMs ?? 0,
      allowedUids: options.allowedUids ?? [process.getuid?.() ?? 0],
      channel: options.channel ?? {},
    };
    this.logger = options.logger ?? pino({ level: process.env.LAPCE_AI_LOG_LEVEL ?? 'info' }, pino.destination(2));
    this.metricsRegistry = new ServerMetrics({ traffic: () => this.traffic() }, options.registry);
    this.handle('$metrics', async (req: { format?: string } | null) =>
      req?.format === 'prometheus' ? { text: await this.metricsRegistry.prometheus() } : this.metrics(),
    );
  }

  /** Registers a request/response handler for `method`. */
  handle(method: string, fn: RequestHandler): this {
    this.handlers.set(method, { kind: 'request', fn });
    return this;
  }

  /** Registers a streaming handler (an async generator) for `method`. */
  handleStream(method: string, fn: StreamHandler): this {
    this.handlers.set(method, { kind: 'stream', fn });
    return this;
  }

  /** The prom-client registry holding the server's metrics (add your own to it). */
  get registry(): Registry {
    return this.metricsRegistry.registry;
  }

  /**
   * Starts listening. Fails with `ADDRESS_IN_USE` when a live server holds the path; a socket
   * left by a dead server is replaced.
   */
  async listen(): Promise<void> {
    if (this.state !== 'new') throw new IpcError('INVALID_ARGUMENT', 'listen() was already called');
    ensureSocketDir(this.socketPath, this.socketPath === defaultSocketPath());
    const path = controlPath(this.socketPath);
    try {
      this.listener = native.NativeListener.bind(path);
    } catch (e) {
      const err = fromNative(e);
      if (err.code === 'ADDRESS_IN_USE') {
        throw new IpcError('ADDRESS_IN_USE', `another lapce-ai-ipc server is already listening on ${path}`, { cause: e });
      }
      throw err;
    }
    this.listener.watch(() => this.onAcceptable());
    this.state = 'listening';
    if (this.opts.idleTimeoutMs > 0) {
      this.idleTimer = setInterval(() => this.reapIdle(), Math.max(10, Math.min(this.opts.idleTimeoutMs / 4, 1000)));
      this.idleTimer.unref();
    }
    this.logger.info({ socket: path, maxConnections: this.opts.maxConnections }, 'lapce-ai-ipc server listening');
  }

  /** Open sessions. */
  get connections(): number {
    return this.sessions.size;
  }

  private onAcceptable(): void {
    for (;;) {
      let stream;
      try {
        stream = this.listener?.accept();
      } catch (e) {
        this.logger.warn({ err: fromNative(e).message }, 'accept failed');
        return;
      }
      if (!stream) return;
      const conn = new ControlConnection(stream);
      if (this.state !== 'listening') {
        this.refuse(conn, RejectReason.ShuttingDown, 'server is shutting down');
      } else if (this.sessions.size + this.pending.size >= this.opts.maxConnections) {
        this.refuse(conn, RejectReason.ServerFull, `server is full (${this.opts.maxConnections} connections)`);
      } else {
        this.startHandshake(conn);
      }
    }
  }

  private refuse(conn: ControlConnection, reason: RejectReason, message: string): void {
    const name = REJECT_NAMES[reason];
    this.metricsRegistry.connectionsRejected.inc({ reason: name });
    this.metricsRegistry.handshakeFailures.inc({ reason: name });
    this.logger.warn({ reason: name }, message);
    try {
      conn.send(encodeReject({ reason, message }));
    } catch {
      /* already gone */
    }
    conn.close();
  }

  private async startHandshake(conn: ControlConnection): Promise<void> {
    const started = performance.now();
    this.pending.add(conn);
    try {
      const acc = await serverHandshake(conn, {
        timeoutMs: this.opts.handshakeTimeoutMs,
        allowedUids: this.opts.allowedUids,
        capacity: this.opts.ringCapacity,
        maxMessage: this.opts.maxMessage,
        maxStreams: this.opts.maxStreamsPerConnection,
        idleTimeoutMs: this.opts.idleTimeoutMs,
        channel: this.opts.channel,
        takeSlot: () => this.takeSlot(),
        releaseSlot: (slot) => this.releaseSlot(slot),
      });
      this.pending.delete(conn);
      this.metricsRegistry.handshakes.inc();
      this.metricsRegistry.handshakeSeconds.observe((performance.now() - started) / 1000);
      this.open(conn, acc.slot, acc.generation, acc.hello.pid, acc.uid, acc.hello.name, acc.channel);
    } catch (e) {
      this.pending.delete(conn);
      if (e instanceof IpcError && e.details?.beforeHello) {
        this.logger.debug('connection closed before HELLO (a liveness probe?)');
        return;
      }
      const reason = e instanceof HandshakeError ? e.reasonName : 'connection_lost';
      this.metricsRegistry.handshakeFailures.inc({ reason });
      this.logger.warn({ reason, err: (e as Error).message }, 'handshake failed');
    }
  }

  private takeSlot(): { slot: number; generation: number } {
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      slot = this.slots.length;
      this.slots.push({ generation: 0, session: null, reserved: false });
    }
    const s = this.slots[slot];
    s.generation = (s.generation + 1) >>> 0;
    s.reserved = true;
    return { slot, generation: s.generation };
  }

  private releaseSlot(slot: number): void {
    const s = this.slots[slot];
    if (!s || !s.reserved) return;
    s.reserved = false;
    s.session = null;
    this.freeSlots.push(slot);
  }

  private open(
    conn: ControlConnection,
    slot: number,
    generation: number,
    pid: number,
    uid: number,
    name: string,
    channel: Session['channel'],
  ): void {
    const session = new Session({ slot, generation, pid, uid, name }, channel, {
      handlers: this.handlers,
      metrics: this.metricsRegistry,
      logger: this.logger,
      maxStreams: this.opts.maxStreamsPerConnection,
      trackActivity: this.opts.idleTimeoutMs > 0,
    });
    this.slots[slot].session = session;
    this.sessions.set(session, { conn, end: (why) => end(why) });
    this.metricsRegistry.connectionsTotal.inc();
    this.metricsRegistry.connectionsActive.inc();
    this.logger.info({ slot, generation, peerPid: pid, name }, 'connection accepted');
    let ended = false;
    const end = (why: string, err?: IpcError): void => {
      if (ended) return;
      ended = true;
      addStats(this.closedTraffic, channel.stats());
      session.end(new IpcError('CONNECTION_LOST', why, { retryable: true }));
      conn.close();
      this.sessions.delete(session);
      this.releaseSlot(slot);
      this.metricsRegistry.connectionsActive.dec();
      this.logger.info({ slot, generation, peerPid: pid, reason: why, err: err?.message }, 'connection closed');
    };
    // The control socket's EOF is how a dead client (kill -9 included) is noticed.
    conn.onClose((err) => end('client closed the control socket', err));
    conn.onFrame((f) => {
      f.fds?.close();
      this.logger.debug({ slot, type: f.type }, 'unexpected control frame after handshake');
    });
    channel.onClose((err) => end(err ? `channel failed: ${err.message}` : 'client closed the channel', err));
  }

  private reapIdle(): void {
    const cutoff = Date.now() - this.opts.idleTimeoutMs;
    for (const [s, { end }] of this.sessions) {
      if (s.inFlight === 0 && s.lastActivity < cutoff) end(`idle for ${this.opts.idleTimeoutMs} ms`);
    }
  }

  private traffic(): ChannelStats {
    const t = { ...this.closedTraffic };
    for (const s of this.sessions.keys()) addStats(t, s.channel.stats());
    return t;
  }

  /** A JSON snapshot of every metric (prom-client's JSON form). */
  metrics(): Promise<unknown> {
    return this.metricsRegistry.registry.getMetricsAsJSON();
  }

  /**
   * Shuts down gracefully: stops accepting, sends GOAWAY, lets calls in flight finish within
   * `deadlineMs`, cancels what is left, closes every session and removes the socket file.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (!this.closing) this.closing = this.doClose(options.deadlineMs ?? 5000);
    return this.closing;
  }

  private async doClose(deadlineMs: number): Promise<void> {
    if (this.state === 'new') {
      this.state = 'closed';
      return;
    }
    this.state = 'closing';
    this.listener?.close(true);
    this.listener = null;
    if (this.idleTimer) clearInterval(this.idleTimer);
    for (const conn of this.pending) conn.close();
    const live = [...this.sessions];
    for (const [, { conn }] of live) {
      try {
        conn.send(encodeGoAway({ deadlineMs, message: 'server shutting down' }));
      } catch {
        /* that client is gone already */
      }
    }
    this.logger.info({ sessions: live.length, deadlineMs }, 'shutting down');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(live.map(([s]) => s.drained())), new Promise<void>((r) => (timer = setTimeout(r, deadlineMs)))]);
    clearTimeout(timer);
    for (const [s] of live) s.abortAll(new IpcError('GOING_AWAY', 'server shut down before the call finished', { retryable: true }));
    // Give aborted handlers a turn to send their errors before the channels close.
    await new Promise((r) => setImmediate(r));
    for (const [, { end }] of live) end('server shut down');
    this.state = 'closed';
    this.logger.info('server closed');
  }
}
