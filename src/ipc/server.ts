/**
 * {@link IpcServer}: listens on `<socketPath>.ctl`, runs handshakes, keeps a session per
 * client, dispatches calls to handlers, and shuts down gracefully.
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import pino from 'pino';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import native = require('../native');
import type { NativeListener } from '../../index';
import {
  ACCEPT_BACKOFF_MAX_MS,
  ACCEPT_BACKOFF_MS,
  ACCEPTS_PER_TURN,
  CHANNEL_FD_POOL_SIZE,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_IN_FLIGHT_MESSAGES,
  DEFAULT_IN_FLIGHT_BUDGET_MESSAGES,
  DEFAULT_MAX_MESSAGE,
  DEFAULT_MAX_STREAMS,
  DEFAULT_REASSEMBLY_BUDGET,
  DEFAULT_RING_CAPACITY,
  DEFAULT_SHUTDOWN_DEADLINE_MS,
} from '../defaults';
import { fromNative, HandshakeError, IpcError, nativeErrno } from '../errors';
import { encodeReject } from '../protocol/control';
import { RejectReason, rejectName } from '../protocol/reject';
import { createReassemblyBudget } from '../transport/channel';
import type { ChannelStats, ReassemblyBudget } from '../transport/channel';
import { ControlConnection } from './control-connection';
import { ChannelFdPool } from './fd-pool';
import { serverHandshake } from './handshake';
import type { ServerHandshakeParams } from './handshake';
import { addStats, ServerMetrics, zeroStats } from './metrics';
import { boolOption, channelTuningOption, intOption, maxMessageOption, ringCapacityOption, stringOption, uidsOption } from './options';
import type { ChannelTuning } from './options';
import { defaultSocketPath, ensureSocketDir, resolveSocketPath } from './paths';
import { Session } from './session';
import type { HandlerEntry, HandlerOptions, PayloadKind, RequestHandler, SessionHost, StreamHandler } from './session';

/**
 * Options of {@link IpcServer}. Every option is checked by the constructor (INVALID_ARGUMENT).
 * @category IPC
 */
export interface IpcServerOptions {
  /**
   * Socket path: `P` or `P.ctl` (the control socket is always `P.ctl`). Default
   * {@link defaultSocketPath}. At most 107 bytes with `.ctl`; a directory is refused.
   */
  socketPath?: string;
  /** Ring capacity per direction per connection, bytes (a power of two, 4 KiB to 1 GiB). Default 1 MiB. */
  ringCapacity?: number;
  /** Largest message (whole data frame) either side may send, bytes. Default 16 MiB. */
  maxMessage?: number;
  /** Most open sessions. Default 1024. */
  maxConnections?: number;
  /** Most concurrent streams per connection (`TOO_MANY_STREAMS` past it). Default 64. */
  maxStreams?: number;
  /** Most calls in flight per connection (`TOO_MANY_REQUESTS` past it). Default 1024. */
  maxInFlight?: number;
  /**
   * Most payload bytes the calls in flight of one connection hold while their handlers run
   * (`TOO_MANY_REQUESTS` past it). Without it a client could park `maxInFlight` messages of
   * `maxMessage` bytes on a slow handler: 16 GiB at the defaults. At least `maxMessage`, so a
   * call of any allowed size fits once the others are done. Default 4 × `maxMessage` (64 MiB).
   */
  maxInFlightBytes?: number;
  /**
   * The same bound for all connections together. At least `maxMessage`. Default 32 ×
   * `maxMessage` (512 MiB).
   */
  inFlightBytesBudget?: number;
  /** From accept to READY, ms. Default 2000. */
  handshakeTimeoutMs?: number;
  /** Close sessions with no incoming data frame (and no call in flight) for this long, ms. Default 0 (off). */
  idleTimeoutMs?: number;
  /** Default deadline of {@link IpcServer.close}, ms. Default 5000. */
  shutdownDeadlineMs?: number;
  /** Uids allowed to connect. Default: only the server's own. */
  allowedUids?: number[];
  /**
   * Compare the pid in HELLO with the kernel's SO_PEERCRED pid. Default true. Set false for
   * clients in another PID namespace (a Flatpak or otherwise sandboxed editor), where the two
   * differ; the uid is checked either way.
   */
  checkPid?: boolean;
  /** Process-wide budget for fragment-reassembly memory, bytes. Default 256 MiB. */
  reassemblyBudget?: number;
  /** How the server's channels poll and sleep. */
  channel?: ChannelTuning;
  /** pino logger. Default: silent (a library does not write to stderr uninvited). */
  logger?: Logger;
  /** prom-client registry to register metrics on. Default: a new one. */
  registry?: Registry;
}

/**
 * Options of {@link IpcServer.close}.
 * @category IPC
 */
export interface CloseOptions {
  /** How long in-flight calls may take to finish before they are cancelled, ms. Default `shutdownDeadlineMs`. */
  deadlineMs?: number;
}

interface Slot {
  generation: number;
  session: Session | null;
  reserved: boolean;
}

interface ResolvedOptions {
  ringCapacity: number;
  maxMessage: number;
  maxConnections: number;
  maxStreams: number;
  maxInFlight: number;
  maxInFlightBytes: number;
  inFlightBytesBudget: number;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  shutdownDeadlineMs: number;
  allowedUids: number[];
  checkPid: boolean;
  reassemblyBudget: number;
  channel: ChannelTuning;
}

const U32 = 0xffff_ffff;

function resolveOptions(o: IpcServerOptions): ResolvedOptions {
  const maxMessage = maxMessageOption('maxMessage', o.maxMessage, DEFAULT_MAX_MESSAGE);
  const bytesOption = (name: string, value: unknown, messages: number): number =>
    intOption(name, value, messages * maxMessage, maxMessage, Number.MAX_SAFE_INTEGER);
  return {
    ringCapacity: ringCapacityOption('ringCapacity', o.ringCapacity, DEFAULT_RING_CAPACITY),
    maxMessage,
    maxConnections: intOption('maxConnections', o.maxConnections, DEFAULT_MAX_CONNECTIONS, 1, 1 << 20),
    maxStreams: intOption('maxStreams', o.maxStreams, DEFAULT_MAX_STREAMS, 1, U32),
    maxInFlight: intOption('maxInFlight', o.maxInFlight, DEFAULT_MAX_IN_FLIGHT, 1, U32),
    maxInFlightBytes: bytesOption('maxInFlightBytes', o.maxInFlightBytes, DEFAULT_IN_FLIGHT_MESSAGES),
    inFlightBytesBudget: bytesOption('inFlightBytesBudget', o.inFlightBytesBudget, DEFAULT_IN_FLIGHT_BUDGET_MESSAGES),
    handshakeTimeoutMs: intOption('handshakeTimeoutMs', o.handshakeTimeoutMs, DEFAULT_HANDSHAKE_TIMEOUT_MS, 1, 2 ** 31 - 1),
    idleTimeoutMs: intOption('idleTimeoutMs', o.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS, 0, U32),
    shutdownDeadlineMs: intOption('shutdownDeadlineMs', o.shutdownDeadlineMs, DEFAULT_SHUTDOWN_DEADLINE_MS, 0, U32),
    allowedUids: uidsOption('allowedUids', o.allowedUids, [process.getuid?.() ?? 0]),
    checkPid: boolOption('checkPid', o.checkPid, true),
    reassemblyBudget: intOption('reassemblyBudget', o.reassemblyBudget, DEFAULT_REASSEMBLY_BUDGET, 0, Number.MAX_SAFE_INTEGER),
    channel: channelTuningOption('channel', o.channel),
  };
}

/**
 * The IPC server. Register handlers, then {@link IpcServer.listen}.
 * @example
 * ```ts
 * import { IpcServer } from 'lapce-ai-ipc';
 *
 * const server = new IpcServer({ socketPath: '/run/user/1000/app.sock' });
 * server.handle('add', ({ a, b }: { a: number; b: number }) => a + b);
 * server.handleStream('count', async function* ({ n }: { n: number }, ctx) {
 *   for (let i = 0; i < n && !ctx.signal.aborted; i++) yield i;
 * });
 * await server.listen();
 * // …
 * await server.close({ deadlineMs: 1000 });
 * ```
 * @category IPC
 */
export class IpcServer {
  /** The socket path as the user gave it (`P` or `P.ctl`). */
  readonly socketPath: string;
  /** The control socket's path (`P.ctl`). */
  readonly controlPath: string;
  private readonly stats: ServerMetrics;
  private readonly opts: ResolvedOptions;
  private readonly logger: Logger;
  private readonly handlers = new Map<string, HandlerEntry>();
  private readonly slots: Slot[] = [];
  private readonly freeSlots: number[] = [];
  private readonly sessions = new Set<Session>();
  private readonly pending = new Set<ControlConnection>();
  private readonly closedTraffic: ChannelStats = zeroStats();
  private readonly host: SessionHost;
  private listener: NativeListener | null = null;
  private state: 'new' | 'listening' | 'closing' | 'closed' = 'new';
  /** Set once close() has sent GOAWAY: from then on sessions answer new calls with GOING_AWAY. */
  private goAwaySent = false;
  private idleTimer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;
  /** A spare fd, given up to accept (and refuse) a connection when the process is out of fds. */
  private reserveFd = -1;
  private acceptTrouble: { since: number; failures: number } | null = null;
  /** Set while an accept batch was cut at ACCEPTS_PER_TURN and continues on the next turn. */
  private acceptResume: NodeJS.Immediate | null = null;
  /** Channel closes of ended sessions, due in {@link retireImmediate} (see retireChannel). */
  private readonly retiring: Array<() => void> = [];
  private retireImmediate: NodeJS.Immediate | null = null;
  private acceptTimer: NodeJS.Timeout | null = null;
  /** The reassembly budget all of this server's sessions share (PLAN §10). */
  private readonly reassembly: ReassemblyBudget;
  /** Channel fd sets made ahead, filled while listening and freed at close. */
  private readonly fdPool: ChannelFdPool;
  private readonly handshakeParams: ServerHandshakeParams;

  /** @throws IpcError INVALID_ARGUMENT for an invalid option. */
  constructor(options: IpcServerOptions = {}) {
    const given = stringOption('socketPath', options.socketPath, defaultSocketPath());
    const paths = resolveSocketPath(given);
    this.socketPath = given;
    this.controlPath = paths.controlPath;
    this.opts = resolveOptions(options);
    this.reassembly = createReassemblyBudget(this.opts.reassemblyBudget);
    this.fdPool = new ChannelFdPool(this.opts.ringCapacity, CHANNEL_FD_POOL_SIZE);
    // The same for every handshake: made once, not per connection.
    this.handshakeParams = {
      timeoutMs: this.opts.handshakeTimeoutMs,
      allowedUids: this.opts.allowedUids,
      checkPid: this.opts.checkPid,
      ringCapacity: this.opts.ringCapacity,
      maxMessage: this.opts.maxMessage,
      maxStreams: this.opts.maxStreams,
      idleTimeoutMs: this.opts.idleTimeoutMs,
      channel: { ...this.opts.channel, reassemblyBudget: this.reassembly },
      createFds: () => this.fdPool.take(),
      takeSlot: () => this.takeSlot(),
      releaseSlot: (slot) => this.releaseSlot(slot),
    };
    this.logger = options.logger ?? pino({ level: 'silent' });
    this.stats = new ServerMetrics({ traffic: () => this.traffic() }, options.registry);
    const server = this;
    this.host = {
      handlers: this.handlers,
      metrics: this.stats,
      logger: this.logger,
      maxStreams: this.opts.maxStreams,
      maxInFlight: this.opts.maxInFlight,
      maxInFlightBytes: this.opts.maxInFlightBytes,
      heldBytes: { used: 0, limit: this.opts.inFlightBytesBudget },
      trackActivity: this.opts.idleTimeoutMs > 0,
      get goingAway() {
        return server.goAwaySent;
      },
      retireChannel: (closeChannel) => this.retireChannel(closeChannel),
      sessionEnded: (s, reason, err) => this.sessionEnded(s, reason, err),
    };
    this.handle(
      '$metrics',
      async (req: { format?: unknown } | null) => {
        const format = req?.format ?? 'json';
        if (format === 'prometheus') return { text: await this.prometheus() };
        if (format === 'json') return this.metrics();
        throw new IpcError('BAD_PAYLOAD', `$metrics format must be "json" or "prometheus", got ${JSON.stringify(format).slice(0, 40)}`);
      },
      { payload: 'json' },
    );
    this.handle('$ping', () => null);
  }

  /**
   * Registers a request/response handler for `method`. What it returns is the reply: bytes
   * (`Uint8Array`) as they are, anything else as JSON (`undefined` arrives as `null`).
   */
  handle(method: string, fn: RequestHandler, options: HandlerOptions = {}): this {
    const borrow = options.borrow ?? false;
    if (typeof borrow !== 'boolean') throw new IpcError('INVALID_ARGUMENT', `option borrow must be a boolean, got ${typeof borrow}`);
    this.handlers.set(method, { kind: 'request', fn, payload: payloadOption(options), borrow });
    return this;
  }

  /**
   * Registers a streaming handler (an async generator) for `method`. `options.borrow` is
   * refused (INVALID_ARGUMENT): a generator runs past the moment its payload is valid.
   */
  handleStream(method: string, fn: StreamHandler, options: HandlerOptions = {}): this {
    if (options.borrow) throw new IpcError('INVALID_ARGUMENT', 'a stream handler cannot borrow its payload: copy it instead');
    this.handlers.set(method, { kind: 'stream', fn, payload: payloadOption(options), borrow: false });
    return this;
  }

  /** The prom-client registry holding the server's metrics (add your own to it). */
  get registry(): Registry {
    return this.stats.registry;
  }

  /** The metrics in Prometheus text exposition. */
  prometheus(): Promise<string> {
    return this.stats.prometheus();
  }

  /**
   * Starts listening. Fails with `ADDRESS_IN_USE` when a live server holds the path; a socket
   * left by a dead server is replaced.
   */
  async listen(): Promise<void> {
    if (this.state !== 'new') throw new IpcError('INVALID_ARGUMENT', 'listen() was already called');
    const path = this.controlPath;
    ensureSocketDir(path, this.socketPath === defaultSocketPath());
    try {
      this.listener = native.NativeListener.bind(path);
    } catch (e) {
      const err = fromNative(e);
      if (err.code === 'ADDRESS_IN_USE') {
        throw new IpcError('ADDRESS_IN_USE', `another lapce-ai-ipc server is already listening on ${this.socketPath}`, { cause: e });
      }
      throw err;
    }
    this.openReserveFd();
    this.fdPool.fill();
    this.listener.watch(() => this.onAcceptable());
    this.state = 'listening';
    if (this.opts.idleTimeoutMs > 0) {
      this.idleTimer = setInterval(() => this.reapIdle(), Math.max(10, Math.min(this.opts.idleTimeoutMs / 4, 1000)));
      this.idleTimer.unref();
    }
    this.logger.info(
      { socket: this.socketPath, controlSocket: path, maxConnections: this.opts.maxConnections },
      'lapce-ai-ipc server listening',
    );
  }

  /** Open sessions. */
  get connections(): number {
    return this.sessions.size;
  }

  private openReserveFd(): void {
    if (this.reserveFd >= 0) return;
    try {
      this.reserveFd = fs.openSync('/dev/null', 'r');
    } catch {
      this.reserveFd = -1;
    }
  }

  private onAcceptable(): void {
    // A connect flood must not hold the loop: after a batch the rest waits for the next turn,
    // after timers and every session's I/O have run (the immediate below takes it from there).
    // The batch takes only connections already queued; their WELCOMEs go out in the microtasks
    // right after it. (Answering each HELLO before the next accept would let a client that
    // reconnects at once keep one turn going, holding every READY and session behind it.)
    if (this.acceptResume) return;
    for (let accepted = 0; ; accepted++) {
      if (accepted === ACCEPTS_PER_TURN) {
        this.acceptResume = setImmediate(() => {
          this.acceptResume = null;
          this.onAcceptable();
        });
        return;
      }
      let stream;
      try {
        stream = this.listener?.accept();
      } catch (e) {
        this.acceptFailed(e);
        return;
      }
      if (!stream) break;
      let conn: ControlConnection;
      try {
        conn = new ControlConnection(stream, { acceptFds: false });
      } catch (e) {
        stream.close();
        this.acceptFailed(e);
        return;
      }
      if (this.state !== 'listening') {
        this.refuse(conn, RejectReason.ShuttingDown, 'server is shutting down');
      } else if (this.sessions.size + this.pending.size >= this.opts.maxConnections) {
        this.refuse(conn, RejectReason.ServerFull, `server is full (${this.opts.maxConnections} connections)`);
      } else {
        this.startHandshake(conn);
      }
    }
    if (this.acceptTrouble) {
      this.logger.warn({ failures: this.acceptTrouble.failures, ms: Date.now() - this.acceptTrouble.since }, 'accepting connections again');
      this.acceptTrouble = null;
    }
  }

  /**
   * accept() failed (EMFILE/ENFILE at the fd limit, most likely). A waiting connection keeps
   * the listening socket readable, so simply returning would spin at 100% CPU. The reserve fd
   * is given up, one waiting connection at a time, to take each off the queue with a REJECT 9
   * ("out of file descriptors") until none waits; sessions already open are served meanwhile.
   * Without a reserve fd (someone took it) the listener is closed and bound again after a
   * backoff (100 ms, doubling to 2 s). Logged once per episode.
   */
  private acceptFailed(e: unknown): void {
    const errno = nativeErrno(e) ?? fromNative(e).code;
    const first = this.acceptTrouble === null;
    if (first) this.acceptTrouble = { since: Date.now(), failures: 0 };
    const trouble = this.acceptTrouble as { since: number; failures: number };
    trouble.failures++;
    if (first)
      this.logger.error(
        { err: e instanceof Error ? e : new Error(String(e)), errno },
        'accept failed; refusing connections until fds are free',
      );
    while (this.reserveFd >= 0) {
      try {
        fs.closeSync(this.reserveFd);
      } catch {
        /* already gone */
      }
      this.reserveFd = -1;
      let drained = false;
      try {
        const stream = this.listener?.accept();
        if (stream) {
          const conn = new ControlConnection(stream, { acceptFds: false });
          this.refuse(conn, RejectReason.Internal, `server is out of file descriptors (${errno}); try again later`, false);
        } else {
          drained = true;
        }
      } catch {
        drained = true; // not even one fd: fall through to the pause
      }
      this.openReserveFd();
      if (drained) {
        if (this.reserveFd >= 0) return; // nothing waits; the next connection calls us again
        break;
      }
    }
    this.pauseAccepting(trouble.failures);
  }

  /** Stops watching the listening socket for a while: closed and bound again after the backoff. */
  private pauseAccepting(failures: number): void {
    if (this.acceptTimer || !this.listener) return;
    this.listener.close(false);
    this.listener = null;
    const delay = Math.min(ACCEPT_BACKOFF_MAX_MS, ACCEPT_BACKOFF_MS * 2 ** Math.min(10, failures - 1));
    this.acceptTimer = setTimeout(() => {
      this.acceptTimer = null;
      if (this.state !== 'listening') return;
      try {
        this.listener = native.NativeListener.bind(this.controlPath);
        this.listener.watch(() => this.onAcceptable());
        this.openReserveFd();
      } catch (e) {
        const trouble = this.acceptTrouble ?? { since: Date.now(), failures: 0 };
        this.acceptTrouble = trouble;
        this.pauseAccepting(++trouble.failures);
        if (fromNative(e).code === 'ADDRESS_IN_USE')
          this.logger.error({ err: e }, 'another server took the socket path during an accept pause');
      }
    }, delay);
  }

  private refuse(conn: ControlConnection, reason: RejectReason, message: string, log = true): void {
    const name = rejectName(reason);
    this.stats.connectionsRejected.inc({ reason: name });
    this.stats.handshakeFailures.inc({ reason: name });
    if (log) this.logger.warn({ reason: name }, message);
    conn.trySend(encodeReject({ reason, message }));
    conn.close();
  }

  private startHandshake(conn: ControlConnection): void {
    const started = performance.now();
    this.pending.add(conn);
    const handshake = serverHandshake(conn, this.handshakeParams);
    // The handshake now waits for HELLO, which is usually here already (see readNow).
    conn.readNow();
    handshake.then(
      (acc) => {
        this.pending.delete(conn);
        if (this.state !== 'listening') {
          acc.channel.close();
          this.releaseSlot(acc.slot);
          conn.close();
          return;
        }
        this.stats.handshakes.inc();
        this.stats.handshakeSeconds.observe((performance.now() - started) / 1000);
        const session = new Session(
          { slot: acc.slot, generation: acc.generation, pid: acc.hello.pid, uid: acc.uid, name: acc.hello.name },
          conn,
          acc.channel,
          this.host,
        );
        this.slots[acc.slot].session = session;
        this.sessions.add(session);
        this.stats.connectionsTotal.inc();
        this.stats.connectionsActive.inc();
        this.logger.info(
          { slot: acc.slot, generation: acc.generation, peerPid: acc.hello.pid, clientName: acc.hello.name },
          'connection accepted',
        );
        session.serve();
      },
      (e: unknown) => {
        this.pending.delete(conn);
        if (e instanceof IpcError && e.details?.beforeHello) {
          this.logger.debug('connection closed before HELLO (a liveness probe?)');
          return;
        }
        const reason = e instanceof HandshakeError ? e.reason : 'connection_lost';
        this.stats.handshakeFailures.inc({ reason });
        this.logger.warn({ reason, err: e instanceof Error ? e : new Error(String(e)) }, 'handshake failed');
      },
    );
  }

  /**
   * Closes an ended session's channel after the I/O callbacks of this loop turn, in an
   * immediate, at the latest when the server closes. A client that hangs up and connects again
   * at once (a reconnect, a liveness check, a benchmark) has its EOF and its new connection
   * read in the same turn; the new handshake's accept, HELLO and WELCOME then go first, and the
   * munmaps and memfd frees of the old session (about a third of a handshake's server time)
   * follow. Nothing waits for GC: the order changes, not whether or when within the turn.
   */
  private retireChannel(closeChannel: () => void): void {
    this.retiring.push(closeChannel);
    this.retireImmediate ??= setImmediate(() => this.closeRetired());
  }

  private closeRetired(): void {
    if (this.retireImmediate) clearImmediate(this.retireImmediate);
    this.retireImmediate = null;
    for (const close of this.retiring.splice(0)) close();
  }

  private sessionEnded(session: Session, reason: string, err: IpcError | undefined): void {
    if (!this.sessions.delete(session)) return;
    addStats(this.closedTraffic, session.channel.stats());
    this.releaseSlot(session.peer.slot);
    this.stats.connectionsActive.dec();
    const { slot, generation, pid } = session.peer;
    if (err && err.code !== 'CHANNEL_CLOSED' && err.code !== 'CONNECTION_LOST') {
      this.logger.warn({ slot, generation, peerPid: pid, reason, err }, 'connection closed');
    } else {
      this.logger.info({ slot, generation, peerPid: pid, reason }, 'connection closed');
    }
  }

  private takeSlot(): { slot: number; generation: number } {
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      if (this.slots.length >= this.opts.maxConnections)
        throw new HandshakeError(RejectReason.ServerFull, `server is full (${this.opts.maxConnections} connections)`);
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

  private reapIdle(): void {
    const cutoff = Date.now() - this.opts.idleTimeoutMs;
    for (const s of [...this.sessions]) {
      if (s.inFlight === 0 && s.lastActivity < cutoff) s.end(`idle for ${this.opts.idleTimeoutMs} ms`, { goAway: 'idle timeout' });
    }
  }

  private traffic(): ChannelStats {
    const t = { ...this.closedTraffic };
    for (const s of this.sessions) addStats(t, s.channel.stats());
    return t;
  }

  /** A JSON snapshot of every metric (prom-client's JSON form). */
  metrics(): Promise<unknown> {
    return this.stats.registry.getMetricsAsJSON();
  }

  /**
   * Shuts down gracefully: stops accepting and removes the socket file at once (new clients
   * get ENOENT), sends GOAWAY, answers new calls with GOING_AWAY, lets calls in flight finish
   * within `deadlineMs`, fails what is left with GOING_AWAY and closes every session.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (!this.closing) {
      const deadlineMs = intOption('deadlineMs', options.deadlineMs, this.opts.shutdownDeadlineMs, 0, U32);
      this.closing = this.doClose(deadlineMs);
    }
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
    if (this.acceptTimer) clearTimeout(this.acceptTimer);
    if (this.acceptResume) clearImmediate(this.acceptResume);
    this.acceptResume = null;
    if (this.reserveFd >= 0) {
      try {
        fs.closeSync(this.reserveFd);
      } catch {
        /* gone */
      }
      this.reserveFd = -1;
    }
    this.fdPool.close();
    for (const conn of this.pending) {
      conn.trySend(encodeReject({ reason: RejectReason.ShuttingDown, message: 'server is shutting down' }));
      conn.close();
    }
    // What follows runs handlers, so not inside the caller's turn: close() may have been
    // called from a handler, in the middle of its channel's step, and `this.closing` is only
    // set once this function first awaits.
    await Promise.resolve();
    const live = [...this.sessions];
    // Requests a client wrote before GOAWAY but we have not read yet are calls in flight like
    // the others: read them now (within a budget), so they run until the deadline instead of
    // being cut off by a session that looked drained with them unread in its ring.
    for (const s of live) s.readPending();
    this.goAwaySent = true;
    for (const s of live) s.goAway(deadlineMs, 'server shutting down');
    this.logger.info({ sessions: live.length, deadlineMs }, 'shutting down');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(live.map((s) => s.drained())), new Promise<void>((r) => (timer = setTimeout(r, deadlineMs)))]);
    clearTimeout(timer);
    const goingAway = new IpcError('GOING_AWAY', 'server shut down before the call finished');
    for (const s of live) s.abortAll(goingAway);
    for (const s of live) s.end('server shut down', { abortWith: goingAway });
    this.closeRetired();
    this.state = 'closed';
    this.logger.info('server closed');
  }
}

function payloadOption(options: HandlerOptions): PayloadKind {
  const p = options.payload ?? 'any';
  if (p !== 'json' && p !== 'bytes' && p !== 'any')
    throw new IpcError('INVALID_ARGUMENT', `option payload must be json, bytes or any, got ${String(p)}`);
  return p;
}
