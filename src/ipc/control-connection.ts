/**
 * A control-socket connection: framed control messages in and out of a native non-blocking
 * Unix socket, fds attached where the protocol passes them, EOF reported as close.
 *
 * The connection stays open for the whole session; its EOF is how each side learns the other
 * died (kill -9 included), with no heartbeat. Frames that arrive before anyone asks for them
 * are kept (a handful at most: a peer that sends more during the handshake is malformed), so a
 * READY and the EOF right behind it are both seen by whoever looks next.
 *
 * `onClose` has one meaning here and on `Channel`: add a callback, run once when the
 * connection ends (at once, in a microtask, if it already has).
 * @packageDocumentation
 */
import native = require('../native');
import type { NativeControlStream, NativeFds, PeerCredentials } from '../../index';
import { WELCOME_FDS } from '../defaults';
import { fromNative, IpcError, nativeErrno, systemError } from '../errors';
import { ControlFrameReader, ControlType, encodeReject } from '../protocol/control';
import { RejectReason } from '../protocol/reject';

/** A received control frame; `fds` are those that arrived with it (the receiver owns them). */
export interface ControlFrame {
  type: ControlType;
  body: Buffer;
  fds: NativeFds | null;
}

/** Options of a {@link ControlConnection}. */
export interface ControlConnectionOptions {
  /**
   * Whether this side accepts fds at all: the client does (WELCOME carries them), the server
   * never does. Fds that are not allowed are closed at once and end the connection as malformed.
   */
  acceptFds: boolean;
}

const READ_SIZE = 8192;
/**
 * One read buffer for every connection: a read is synchronous and what it returned is copied
 * out (by the frame reader) before the next, so no two connections need their own 8 KiB.
 */
const readBuf = Buffer.allocUnsafe(READ_SIZE);
/** Frames kept for a reader that has not asked yet; more is a peer flooding the handshake. */
const MAX_QUEUED_FRAMES = 8;

/** See the module comment. */
export class ControlConnection {
  private readonly reader = new ControlFrameReader();
  private readonly queued: ControlFrame[] = [];
  private frameHandler: ((f: ControlFrame) => void) | null = null;
  private waiter: { resolve: (f: ControlFrame) => void; reject: (e: IpcError) => void } | null = null;
  private readonly closeHandlers: Array<(err?: IpcError) => void> = [];
  private isClosed = false;
  private closeError: IpcError | undefined;
  private established = false;

  constructor(
    private readonly stream: NativeControlStream,
    private readonly options: ControlConnectionOptions,
  ) {
    stream.watch(() => this.onReadable());
  }

  /**
   * Connects to a listening control socket. Fails with a retryable CONNECTION_LOST (EACCES:
   * not retryable) whose `cause` is a Node-style system error (`code` ENOENT, ECONNREFUSED,
   * EACCES…, `syscall: 'connect'`, `address`), also in `details`.
   */
  static connect(path: string): ControlConnection {
    let stream: NativeControlStream;
    try {
      stream = native.NativeControlStream.connect(path);
    } catch (e) {
      const errno = nativeErrno(e);
      const message = fromNative(e).message;
      if (!errno) throw new IpcError('CONNECTION_LOST', `cannot connect to ${path}: ${message}`, { cause: e });
      throw new IpcError('CONNECTION_LOST', `cannot connect to ${path}: ${errno} (${message})`, {
        retryable: errno !== 'EACCES' && errno !== 'EPERM' && errno !== 'ENOTSOCK',
        cause: systemError(errno, 'connect', path, message),
        details: { errno, syscall: 'connect', address: path },
      });
    }
    return new ControlConnection(stream, { acceptFds: true });
  }

  /** The peer's credentials, from the kernel. */
  peerCredentials(): PeerCredentials {
    return this.stream.peerCredentials();
  }

  /**
   * Sets the handler of frames from now on (replacing any); frames that arrived earlier and
   * were not taken by {@link next} are handed to it first.
   */
  onFrame(handler: (f: ControlFrame) => void): void {
    this.frameHandler = handler;
    while (this.queued.length > 0 && this.frameHandler === handler) handler(this.queued.shift() as ControlFrame);
  }

  /** Adds a callback run once when the connection ends (`err` when it failed rather than ended). */
  onClose(cb: (err?: IpcError) => void): void {
    if (this.isClosed) queueMicrotask(() => cb(this.closeError));
    else this.closeHandlers.push(cb);
  }

  /**
   * The next frame (one already received, or the next to arrive). Rejects with the close error
   * (CONNECTION_LOST for a plain EOF) once the connection is closed and nothing is left, or
   * with `onTimeout()` after `timeoutMs`.
   */
  next(timeoutMs: number, onTimeout: () => IpcError): Promise<ControlFrame> {
    const q = this.queued.shift();
    if (q) return Promise.resolve(q);
    if (this.isClosed) return Promise.reject(this.endError());
    if (this.waiter) return Promise.reject(new IpcError('INVALID_ARGUMENT', 'next() called while another next() waits'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(onTimeout());
      }, timeoutMs);
      this.waiter = {
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  /**
   * Reads whatever already arrived, now, instead of on the next event-loop turn. A server calls
   * it right after accepting: a client sends HELLO right behind its connect(), so by the time
   * the server runs, HELLO is usually waiting, and answering it at once saves a loop turn (one
   * epoll round and the watch's callback) on every handshake. Reading an empty socket costs
   * one recvmsg that returns EAGAIN.
   */
  readNow(): void {
    this.onReadable();
  }

  /** Marks the handshake done: from now on a malformed frame ends the connection without a REJECT. */
  markEstablished(): void {
    this.established = true;
  }

  /** Whether the connection is closed. */
  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * Sends one encoded control frame, with `fds` attached. Control frames are a few dozen bytes
   * on a socket with a buffer of hundreds of kB, so a frame that does not go out whole means
   * the peer stopped reading: the connection is failed rather than buffered without bound.
   */
  send(frame: Buffer, fds?: NativeFds): void {
    if (this.isClosed) throw new IpcError('CONNECTION_LOST', 'control connection closed');
    let sent: number;
    try {
      sent = this.stream.send(frame, fds ?? null);
    } catch (e) {
      const err = new IpcError('CONNECTION_LOST', `control connection lost: ${fromNative(e).message}`, { cause: e });
      this.close(err);
      throw err;
    }
    if (sent !== frame.length) {
      const err = new IpcError('CONNECTION_LOST', 'peer is not reading its control socket');
      this.close(err);
      throw err;
    }
  }

  /** Sends a frame if possible; a peer that is gone is not an error here. */
  trySend(frame: Buffer): void {
    if (this.isClosed) return;
    try {
      this.send(frame);
    } catch {
      /* the peer is gone; its EOF ends the connection */
    }
  }

  private onReadable(): void {
    try {
      this.readAll();
    } catch (e) {
      // Nothing a peer sends may throw out of this callback (it runs on the event loop).
      this.close(e instanceof IpcError ? e : fromNative(e));
    }
  }

  private readAll(): void {
    while (!this.isClosed) {
      let n: number;
      try {
        n = this.stream.recv(readBuf);
      } catch (e) {
        this.close(new IpcError('CONNECTION_LOST', `control connection failed: ${fromNative(e).message}`, { cause: e }));
        return;
      }
      // Fds are taken on every read, whatever it returned, so none is left waiting.
      const fds = this.stream.takeFds();
      if (n < 0) {
        if (fds) this.malformed(fds, `fds without data on the control socket`);
        return;
      }
      if (n === 0) {
        if (fds) this.malformed(fds, `fds without data on the control socket`);
        else this.close();
        return;
      }
      if (fds && (!this.options.acceptFds || fds.count > WELCOME_FDS)) {
        this.malformed(fds, this.options.acceptFds ? `${fds.count} fds on one frame (at most ${WELCOME_FDS})` : 'fds sent to the server');
        return;
      }
      let frames;
      try {
        frames = this.reader.push(readBuf.subarray(0, n));
      } catch (e) {
        this.malformed(fds, (e as Error).message);
        return;
      }
      // Fds ride on the first byte of the frame they were sent with; only WELCOME may carry
      // them, and nothing else is in flight then, so they belong to the first frame this read
      // completed. On any other frame (or with no frame) they are malformed.
      let pending = fds;
      for (const f of frames) {
        if (this.isClosed) break;
        const attached = pending;
        pending = null;
        if (attached && f.type !== ControlType.Welcome) {
          this.malformed(attached, `fds attached to control frame type ${f.type}`);
          return;
        }
        this.deliver({ type: f.type, body: Buffer.from(f.body), fds: attached });
      }
      if (pending) {
        // Fds whose frame is still incomplete: a WELCOME is 41 bytes and arrives whole.
        this.malformed(pending, 'fds before a complete control frame');
        return;
      }
      // A short read emptied the socket (or stopped where fds begin): the watch is
      // level-triggered and calls again for anything left, so the read that would only say
      // EAGAIN is not made. One recvmsg less per control frame, on the handshake's path.
      if (n < readBuf.length) return;
    }
  }

  private deliver(f: ControlFrame): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(f);
    } else if (this.frameHandler) {
      this.frameHandler(f);
    } else if (this.queued.length < MAX_QUEUED_FRAMES) {
      this.queued.push(f);
    } else {
      f.fds?.close();
      this.malformed(null, `more than ${MAX_QUEUED_FRAMES} control frames nobody asked for`);
    }
  }

  /**
   * The peer broke the control protocol: close any fds at once, tell it why (REJECT 6) while
   * the handshake runs, and end the connection with PROTOCOL_ERROR.
   */
  private malformed(fds: NativeFds | null, message: string): void {
    fds?.close();
    const err = new IpcError('PROTOCOL_ERROR', `malformed control frame: ${message}`, { details: { reason: 'malformed' } });
    if (!this.established) this.trySend(encodeReject({ reason: RejectReason.Malformed, message: err.message }));
    this.close(err);
  }

  private endError(): IpcError {
    return this.closeError ?? new IpcError('CONNECTION_LOST', 'peer closed the control socket');
  }

  /**
   * Closes the socket (the peer sees EOF), the frames nobody took and their fds. Close
   * callbacks run after the socket is shut. Idempotent.
   */
  close(err?: IpcError): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeError = err;
    this.stream.close();
    for (const f of this.queued.splice(0)) f.fds?.close();
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.reject(this.endError());
    }
    for (const cb of this.closeHandlers.splice(0)) cb(err);
  }

  /** Whether this connection keeps the process alive (default true). */
  setKeepAlive(keepAlive: boolean): void {
    if (!this.isClosed) this.stream.setRef(keepAlive);
  }
}
