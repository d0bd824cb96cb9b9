/**
 * The handshake on the control socket (protocol version 2), both sides, as straight-line async
 * functions:
 *
 * ```
 * client                                   server
 *   HELLO(magic, versions, pid, name) ──▶   check magic, version, SO_PEERCRED uid (and pid),
 *                                           take a slot, create rings + doorbell socketpair
 *                     ◀── WELCOME(+3 fds)   (or REJECT(reason, text))
 *   check and map the fds (the binding)
 *   READY(slot, generation)           ──▶   session open
 * ```
 * Any failure sends REJECT with a reason (when the peer can still hear it) and frees whatever
 * that attempt took: slot, fds, mappings. The server's whole handshake, from accept to READY,
 * runs under one deadline.
 * @packageDocumentation
 */
import native = require('../native');
import type { NativeFds } from '../../index';
import { DEFAULT_MAX_INCOMING_MESSAGE, WELCOME_FDS } from '../defaults';
import { HandshakeError, IpcError } from '../errors';
import {
  ControlType,
  decodeHello,
  decodeReady,
  decodeReject,
  decodeWelcome,
  encodeHello,
  encodeReady,
  encodeReject,
  encodeWelcome,
  FEATURES_NONE,
  HELLO_MAGIC,
  PROTOCOL_VERSION_MAX,
  PROTOCOL_VERSION_MIN,
} from '../protocol/control';
import type { Hello, Welcome } from '../protocol/control';
import { RejectReason, rejectName } from '../protocol/reject';
import { Channel } from '../transport/channel';
import type { ChannelOptions } from '../transport/channel';
import type { ControlConnection, ControlFrame } from './control-connection';

/** Server-side settings of a handshake. */
export interface ServerHandshakeParams {
  timeoutMs: number;
  allowedUids: readonly number[];
  /** Compare the HELLO pid with SO_PEERCRED (off for clients in another PID namespace). */
  checkPid: boolean;
  ringCapacity: number;
  maxMessage: number;
  maxStreams: number;
  idleTimeoutMs: number;
  channel: ChannelOptions;
  /**
   * The channel's fds for `ringCapacity` (the server's pool of ready sets); default: made now
   * with `createChannelFds`. Throws when they cannot be made (REJECT 9).
   */
  createFds?: () => NativeFds;
  /** Takes a slot; throws HandshakeError(ServerFull) when none is free. */
  takeSlot(): { slot: number; generation: number };
  releaseSlot(slot: number): void;
}

/** What a successful server-side handshake yields (the caller owns the channel). */
export interface Accepted {
  hello: Hello;
  uid: number;
  slot: number;
  generation: number;
  channel: Channel;
}

/** Resolves in the check phase of the current event-loop turn (after its I/O callbacks). */
function nextCheckPhase(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function timeoutError(ms: number): () => IpcError {
  return () => new HandshakeError(RejectReason.Timeout, `no handshake reply within ${ms} ms`);
}

/** An error the peer sent no REJECT for: a malformed control stream becomes REJECT 6. */
function asHandshakeError(e: unknown): unknown {
  if (e instanceof HandshakeError) return e;
  if (e instanceof IpcError && e.code === 'PROTOCOL_ERROR') return new HandshakeError(RejectReason.Malformed, e.message, { cause: e });
  return e;
}

/**
 * Runs the server side. On failure, sends REJECT (9 for an internal error such as EMFILE),
 * frees the slot, fds and channel, closes the connection and throws.
 */
export async function serverHandshake(conn: ControlConnection, p: ServerHandshakeParams): Promise<Accepted> {
  const deadline = performance.now() + p.timeoutMs;
  const remaining = (): number => Math.max(1, Math.ceil(deadline - performance.now()));
  let slot: { slot: number; generation: number } | undefined;
  let fds: NativeFds | undefined;
  let channel: Channel | undefined;
  try {
    let first: ControlFrame;
    try {
      first = await conn.next(remaining(), timeoutError(p.timeoutMs));
    } catch (e) {
      // Closing before saying anything is what a liveness probe does (a second server checking
      // whether this path is live): not a failed handshake.
      if (e instanceof IpcError && e.code === 'CONNECTION_LOST')
        throw new IpcError('CONNECTION_LOST', e.message, { details: { beforeHello: true } });
      throw e;
    }
    if (first.type !== ControlType.Hello)
      throw new HandshakeError(RejectReason.Malformed, `expected HELLO, got control frame type ${first.type}`);
    const hello = decodeHello(first.body);
    if (hello.magic !== HELLO_MAGIC) throw new HandshakeError(RejectReason.BadMagic, `bad magic 0x${hello.magic.toString(16)}`);
    const version = Math.min(hello.maxVersion, PROTOCOL_VERSION_MAX);
    if (version < Math.max(hello.minVersion, PROTOCOL_VERSION_MIN)) {
      throw new HandshakeError(
        RejectReason.NoCommonVersion,
        `client speaks versions ${hello.minVersion}..${hello.maxVersion}; this server speaks version ${PROTOCOL_VERSION_MAX} only`,
      );
    }
    const cred = conn.peerCredentials();
    if (!p.allowedUids.includes(cred.uid)) throw new HandshakeError(RejectReason.UidMismatch, `uid ${cred.uid} is not allowed`);
    if (p.checkPid && cred.pid !== hello.pid) {
      throw new HandshakeError(
        RejectReason.PidMismatch,
        `HELLO says pid ${hello.pid}, the socket says ${cred.pid} (a client in another PID namespace needs the server option checkPid: false)`,
      );
    }
    slot = p.takeSlot();
    try {
      fds = p.createFds ? p.createFds() : native.createChannelFds(p.ringCapacity);
    } catch (e) {
      throw new HandshakeError(RejectReason.Internal, `server cannot create the channel: ${(e as Error).message}`, { cause: e });
    }
    const welcome: Welcome = {
      version,
      slot: slot.slot,
      generation: slot.generation,
      capacity: p.ringCapacity,
      maxMessage: p.maxMessage,
      maxStreams: p.maxStreams,
      features: FEATURES_NONE,
      idleTimeoutMs: p.idleTimeoutMs,
      serverPid: process.pid,
    };
    conn.send(encodeWelcome(welcome), fds);
    const reply = await conn.next(remaining(), timeoutError(p.timeoutMs));
    if (reply.type === ControlType.Reject) {
      const r = decodeReject(reply.body);
      throw new HandshakeError(RejectReason.ClientRejected, `client rejected the session (${rejectName(r.reason)}): ${r.message}`);
    }
    if (reply.type !== ControlType.Ready)
      throw new HandshakeError(RejectReason.Malformed, `expected READY, got control frame type ${reply.type}`);
    const ready = decodeReady(reply.body);
    if (ready.slot !== slot.slot || ready.generation !== slot.generation) {
      throw new HandshakeError(
        RejectReason.Malformed,
        `READY names slot ${ready.slot} generation ${ready.generation}, WELCOME gave slot ${slot.slot} generation ${slot.generation}`,
      );
    }
    // The session opens in this loop turn's check phase, after the turn's other I/O: when a
    // client's READY and another client's connect arrive together (a client that reconnects at
    // once), the new handshake's WELCOME goes out first and this channel's opening follows.
    await nextCheckPhase();
    // The server may have shut down (or the client hung up) meanwhile: then no channel opens, so
    // its `closed` word cannot come after the control socket's EOF.
    if (conn.closed) throw new HandshakeError(RejectReason.ShuttingDown, 'the connection closed before the session opened');
    // Opened only now: a new channel polls its rings for a while, which before READY would
    // only take CPU from the client finishing its side. Nothing the client sends before READY
    // is lost: the channel looks at its ring once when it opens.
    try {
      const taken = fds;
      fds = undefined; // the channel owns them now (it closes them if it fails)
      channel = new Channel(taken, 'server', { ...p.channel, capacity: p.ringCapacity, maxMessage: p.maxMessage });
    } catch (e) {
      throw new HandshakeError(RejectReason.Internal, `server cannot open the channel: ${(e as Error).message}`, { cause: e });
    }
    conn.markEstablished();
    return { hello, uid: cred.uid, slot: slot.slot, generation: slot.generation, channel };
  } catch (e) {
    fds?.close();
    channel?.close();
    if (slot) p.releaseSlot(slot.slot);
    let err = asHandshakeError(e);
    if (!(err instanceof IpcError)) {
      // Anything else is our own failure: say so (REJECT 9) rather than hanging up silently.
      err = new HandshakeError(RejectReason.Internal, `internal error: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    }
    if (err instanceof HandshakeError && err.reasonCode !== RejectReason.ClientRejected) {
      conn.trySend(encodeReject({ reason: err.reasonCode, message: err.message }));
    }
    conn.close();
    throw err;
  }
}

/** Client-side settings of a handshake. */
export interface ClientHandshakeParams {
  name: string;
  timeoutMs: number;
  channel: ChannelOptions;
  /** The client's own cap on incoming messages; the channel uses the smaller of it and WELCOME's. */
  maxIncomingMessage?: number;
  /** Uids the server may run as; checked on SO_PEERCRED before anything is sent. Default: our own uid. */
  serverUids?: readonly number[];
}

/** What a successful client-side handshake yields. */
export interface Connected {
  welcome: Welcome;
  channel: Channel;
}

/** Runs the client side. On failure closes everything it took and throws. */
export async function clientHandshake(conn: ControlConnection, p: ClientHandshakeParams): Promise<Connected> {
  let channel: Channel | undefined;
  let fds: NativeFds | null = null;
  let ourDecision = true;
  try {
    // A squatter of the socket directory (another local user) must not even see our HELLO, so
    // the server's uid is checked first; on a mismatch nothing is sent (no REJECT either).
    const { uid } = conn.peerCredentials();
    const trusted = p.serverUids ?? [process.getuid?.() ?? 0];
    if (!trusted.includes(uid)) {
      ourDecision = false;
      throw new IpcError('PEER_NOT_TRUSTED', `the server runs as uid ${uid}, which this client does not trust`, {
        details: { reason: 'server_uid_mismatch', uid, trusted: [...trusted] },
      });
    }
    conn.send(
      encodeHello({
        magic: HELLO_MAGIC,
        minVersion: PROTOCOL_VERSION_MIN,
        maxVersion: PROTOCOL_VERSION_MAX,
        pid: process.pid,
        features: FEATURES_NONE,
        name: p.name,
      }),
    );
    const reply = await conn.next(p.timeoutMs, timeoutError(p.timeoutMs));
    fds = reply.fds;
    if (reply.type === ControlType.Reject) {
      ourDecision = false;
      const r = decodeReject(reply.body);
      throw new HandshakeError(r.reason, `server rejected the connection (${rejectName(r.reason)}): ${r.message}`, {
        details: { serverMessage: r.message },
      });
    }
    if (reply.type !== ControlType.Welcome)
      throw new HandshakeError(RejectReason.Malformed, `expected WELCOME, got control frame type ${reply.type}`);
    const welcome = decodeWelcome(reply.body);
    if (welcome.version < PROTOCOL_VERSION_MIN || welcome.version > PROTOCOL_VERSION_MAX) {
      throw new HandshakeError(
        RejectReason.NoCommonVersion,
        `server chose version ${welcome.version}; this client speaks ${PROTOCOL_VERSION_MAX}`,
      );
    }
    if (!fds || fds.count !== WELCOME_FDS) {
      throw new HandshakeError(RejectReason.ClientRejected, `WELCOME carried ${fds?.count ?? 0} fds, expected ${WELCOME_FDS}`);
    }
    try {
      // The binding checks each fd (sealed memfds of the announced size, distinct rings, a Unix
      // stream socket as doorbell) before mapping.
      const taken = fds;
      fds = null;
      const maxMessage = Math.min(welcome.maxMessage, p.maxIncomingMessage ?? DEFAULT_MAX_INCOMING_MESSAGE);
      channel = new Channel(taken, 'client', { ...p.channel, capacity: welcome.capacity, maxMessage });
    } catch (e) {
      throw new HandshakeError(RejectReason.ClientRejected, `server's channel is unusable: ${(e as Error).message}`, { cause: e });
    }
    conn.send(encodeReady({ slot: welcome.slot, generation: welcome.generation }));
    conn.markEstablished();
    return { welcome, channel };
  } catch (e) {
    fds?.close();
    channel?.close();
    const err = asHandshakeError(e);
    // Tell the server why we walk away, when it is our decision (it would wait for READY).
    if (ourDecision && err instanceof HandshakeError && err.reasonCode !== RejectReason.Timeout) {
      conn.trySend(encodeReject({ reason: err.reasonCode, message: err.message }));
    }
    conn.close();
    throw err;
  }
}
