/**
 * The handshake on the control socket, both sides, as small state machines:
 *
 * ```
 * client                                   server
 *   HELLO(magic, versions, pid, name) ──▶   check magic, version, SO_PEERCRED uid and pid,
 *                                           take a slot, create rings + doorbells
 *                     ◀── WELCOME(+4 fds)   (or REJECT(reason, text))
 *   map rings, check sizes and seals
 *   READY(slot, generation)           ──▶   session open
 * ```
 * Any failure sends REJECT with a reason and frees whatever that attempt took.
 * @packageDocumentation
 */
import native = require('../native');
import type { NativeFds } from '../../index';
import { IpcError } from '../errors';
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
  Hello,
  HELLO_MAGIC,
  PROTOCOL_VERSION_MAX,
  PROTOCOL_VERSION_MIN,
  REJECT_NAMES,
  RejectReason,
  Welcome,
} from '../protocol/control';
import { Channel, ChannelOptions } from '../transport/channel';
import type { ControlConnection, ControlFrame } from './control-connection';

/** A handshake failure, with the protocol's reason code. */
export class HandshakeError extends IpcError {
  constructor(
    readonly reason: RejectReason,
    message: string,
    retryable = false,
  ) {
    super(reason === RejectReason.Timeout ? 'HANDSHAKE_TIMEOUT' : 'HANDSHAKE_REJECTED', message, {
      retryable,
      details: { reason: REJECT_NAMES[reason] ?? String(reason) },
    });
  }

  /** The reason's readable name. */
  get reasonName(): string {
    return REJECT_NAMES[this.reason] ?? 'unknown';
  }
}

/** Waits for the next control frame, or fails on close or timeout. */
function nextFrame(conn: ControlConnection, timeoutMs: number): Promise<ControlFrame> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new HandshakeError(RejectReason.Timeout, `no handshake reply within ${timeoutMs} ms`, true)),
      timeoutMs,
    );
    conn.onFrame((f) => {
      clearTimeout(timer);
      conn.onFrame(() => undefined);
      resolve(f);
    });
    conn.onClose((err) => {
      clearTimeout(timer);
      reject(err ?? new IpcError('CONNECTION_LOST', 'peer closed the control socket during the handshake', { retryable: true }));
    });
  });
}

/** Server-side settings of a handshake. */
export interface ServerHandshakeParams {
  timeoutMs: number;
  allowedUids: number[];
  capacity: number;
  maxMessage: number;
  maxStreams: number;
  idleTimeoutMs: number;
  channel: ChannelOptions;
  /** Takes a slot; throws HandshakeError(ServerFull) when none is free. */
  takeSlot(): { slot: number; generation: number };
  releaseSlot(slot: number): void;
}

/** What a successful server-side handshake yields. */
export interface Accepted {
  hello: Hello;
  uid: number;
  slot: number;
  generation: number;
  channel: Channel;
}

/** Runs the server side. On failure, sends REJECT, frees the slot and fds, and throws. */
export async function serverHandshake(conn: ControlConnection, p: ServerHandshakeParams): Promise<Accepted> {
  const deadline = Date.now() + p.timeoutMs;
  let slot: { slot: number; generation: number } | undefined;
  let fds: NativeFds | undefined;
  let channel: Channel | undefined;
  try {
    const first = await nextFrame(conn, p.timeoutMs).catch((e: IpcError) => {
      // Closing before saying anything is what a liveness probe does (a second server checking
      // whether this path is live): not a failed handshake.
      if (e.code === 'CONNECTION_LOST') throw new IpcError('CONNECTION_LOST', e.message, { details: { beforeHello: true } });
      throw e;
    });
    first.fds?.close();
    if (first.type !== ControlType.Hello)
      throw new HandshakeError(RejectReason.Malformed, `expected HELLO, got control frame type ${first.type}`);
    let hello: Hello;
    try {
      hello = decodeHello(first.body);
    } catch (e) {
      throw new HandshakeError(RejectReason.Malformed, (e as Error).message);
    }
    if (hello.magic !== HELLO_MAGIC) throw new HandshakeError(RejectReason.BadMagic, `bad magic 0x${hello.magic.toString(16)}`);
    const version = Math.min(hello.maxVersion, PROTOCOL_VERSION_MAX);
    if (version < Math.max(hello.minVersion, PROTOCOL_VERSION_MIN)) {
      throw new HandshakeError(
        RejectReason.NoCommonVersion,
        `client speaks ${hello.minVersion}..${hello.maxVersion}, server ${PROTOCOL_VERSION_MIN}..${PROTOCOL_VERSION_MAX}`,
      );
    }
    const cred = conn.peerCredentials();
    if (!p.allowedUids.includes(cred.uid)) throw new HandshakeError(RejectReason.UidMismatch, `uid ${cred.uid} is not allowed`);
    if (cred.pid !== hello.pid)
      throw new HandshakeError(RejectReason.PidMismatch, `HELLO says pid ${hello.pid}, the socket says ${cred.pid}`);
    slot = p.takeSlot();
    fds = native.createChannelFds(p.capacity);
    const welcome: Welcome = {
      version,
      slot: slot.slot,
      generation: slot.generation,
      capacity: p.capacity,
      maxMessage: p.maxMessage,
      maxStreams: p.maxStreams,
      features: FEATURES_NONE,
      idleTimeoutMs: p.idleTimeoutMs,
      serverPid: process.pid,
    };
    conn.send(encodeWelcome(welcome), fds);
    channel = new Channel(fds, 'server', { ...p.channel, capacity: p.capacity, maxMessage: p.maxMessage });
    fds = undefined;
    const reply = await nextFrame(conn, Math.max(1, deadline - Date.now()));
    reply.fds?.close();
    if (reply.type === ControlType.Reject) {
      const r = decodeReject(reply.body);
      throw new HandshakeError(RejectReason.ClientRejected, `client rejected the session: ${r.message}`);
    }
    if (reply.type !== ControlType.Ready)
      throw new HandshakeError(RejectReason.Malformed, `expected READY, got control frame type ${reply.type}`);
    const ready = decodeReady(reply.body);
    if (ready.slot !== slot.slot || ready.generation !== slot.generation)
      throw new HandshakeError(RejectReason.Malformed, 'READY names another slot');
    return { hello, uid: cred.uid, slot: slot.slot, generation: slot.generation, channel };
  } catch (e) {
    fds?.close();
    channel?.close();
    if (slot) p.releaseSlot(slot.slot);
    const err =
      e instanceof HandshakeError
        ? e
        : e instanceof IpcError && e.code === 'PROTOCOL_ERROR'
          ? new HandshakeError(RejectReason.Malformed, e.message)
          : e;
    if (err instanceof HandshakeError && !conn.closed && err.reason !== RejectReason.ClientRejected) {
      try {
        conn.send(encodeReject({ reason: err.reason, message: err.message }));
      } catch {
        /* the peer is gone; nothing more to tell it */
      }
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
}

/** What a successful client-side handshake yields. */
export interface Connected {
  welcome: Welcome;
  channel: Channel;
}

/** Runs the client side. On failure closes everything it took and throws. */
export async function clientHandshake(conn: ControlConnection, p: ClientHandshakeParams): Promise<Connected> {
  let channel: Channel | undefined;
  try {
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
    const reply = await nextFrame(conn, p.timeoutMs);
    if (reply.type === ControlType.Reject) {
      reply.fds?.close();
      const r = decodeReject(reply.body);
      throw new HandshakeError(
        r.reason,
        `server rejected the connection (${REJECT_NAMES[r.reason] ?? r.reason}): ${r.message}`,
        r.reason === RejectReason.ServerFull || r.reason === RejectReason.ShuttingDown,
      );
    }
    if (reply.type !== ControlType.Welcome) {
      reply.fds?.close();
      throw new HandshakeError(RejectReason.Malformed, `expected WELCOME, got control frame type ${reply.type}`);
    }
    const welcome = decodeWelcome(reply.body);
    const fds = reply.fds;
    if (!fds || fds.count !== 4) {
      fds?.close();
      throw new HandshakeError(RejectReason.ClientRejected, `WELCOME carried ${fds?.count ?? 0} fds, expected 4`);
    }
    if (welcome.version < PROTOCOL_VERSION_MIN || welcome.version > PROTOCOL_VERSION_MAX) {
      fds.close();
      throw new HandshakeError(RejectReason.NoCommonVersion, `server chose version ${welcome.version}`);
    }
    try {
      // Maps both rings after checking they are sealed memfds of the announced size.
      channel = new Channel(fds, 'client', { ...p.channel, capacity: welcome.capacity, maxMessage: welcome.maxMessage });
    } catch (e) {
      throw new HandshakeError(RejectReason.ClientRejected, `server's rings are unusable: ${(e as Error).message}`);
    }
    conn.send(encodeReady({ slot: welcome.slot, generation: welcome.generation }));
    return { welcome, channel };
  } catch (e) {
    channel?.close();
    if (e instanceof HandshakeError && e.reason === RejectReason.ClientRejected && !conn.closed) {
      try {
        conn.send(encodeReject({ reason: e.reason, message: e.message }));
      } catch {
        /* already gone */
      }
    }
    conn.close();
    throw e;
  }
}
