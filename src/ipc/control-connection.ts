/**
 * A control-socket connection: framed control messages in and out of a native non-blocking
 * Unix socket, fds attached where the protocol passes them, EOF reported as close.
 *
 * The connection stays open for the whole session; its EOF is how each side learns the other
 * died (kill -9 included), with no heartbeat.
 * @packageDocumentation
 */
import native = require('../native');
import type { NativeControlStream, NativeFds, PeerCredentials } from '../../index';
import { fromNative, IpcError } from '../errors';
import { ControlFrameReader, ControlType, encodeReject, RejectReason } from '../protocol/control';

/** A received control frame; `fds` are those that arrived with it (caller owns them). */
export interface ControlFrame {
  type: ControlType;
  body: Buffer;
  fds: NativeFds | null;
}

const READ_SIZE = 8192;

/** See the module comment. */
export class ControlConnection {
  private readonly reader = new ControlFrameReader();
  private readonly readBuf = Buffer.allocUnsafe(READ_SIZE);
  private frameHandler: ((f: ControlFrame) => void) | null = null;
  private closeHandler: ((err?: IpcError) => void) | null = null;
  private isClosed = false;

  constructor(private readonly stream: NativeControlStream) {
    stream.watch(() => this.onReadable());
  }

  /** Connects to a listening control socket. */
  static connect(path: string): ControlConnection {
    try {
      return new ControlConnection(native.NativeControlStream.connect(path));
    } catch (e) {
      const err = fromNative(e);
      throw new IpcError('CONNECTION_LOST', `cannot connect to ${path}: ${err.message}`, { retryable: true, cause: e });
    }
  }

  /** The peer's credentials, from the kernel. */
  peerCredentials(): PeerCredentials {
    return this.stream.peerCredentials();
  }

  /** Sets the frame handler. */
  onFrame(handler: (f: ControlFrame) => void): void {
    this.frameHandler = handler;
  }

  /** Sets the close handler (called once; `err` when the connection failed rather than ended). */
  onClose(handler: (err?: IpcError) => void): void {
    this.closeHandler = handler;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * Sends one encoded control frame, with `fds` attached. Control frames are a few dozen bytes
   * on a socket with a buffer of hundreds of kB, so a frame that does not go out whole means
   * the peer stopped reading: the connection is failed rather than buffered without bound.
   */
  send(frame: Buffer, fds?: NativeFds): void {
    if (this.isClosed) throw new IpcError('CONNECTION_LOST', 'control connection closed', { retryable: true });
    let sent: number;
    try {
      sent = this.stream.send(frame, fds ?? null);
    } catch (e) {
      const err = new IpcError('CONNECTION_LOST', `control connection lost: ${fromNative(e).message}`, { retryable: true, cause: e });
      this.close(err);
      throw err;
    }
    if (sent !== frame.length) {
      const err = new IpcError('CONNECTION_LOST', 'peer is not reading its control socket', { retryable: true });
      this.close(err);
      throw err;
    }
  }

  private onReadable(): void {
    while (!this.isClosed) {
      let n: number;
      try {
        n = this.stream.recv(this.readBuf);
      } catch (e) {
        this.close(fromNative(e));
        return;
      }
      if (n < 0) return;
      if (n === 0) {
        this.close();
        return;
      }
      const fds = this.stream.takeFds();
      let frames;
      try {
        frames = this.reader.push(this.readBuf.subarray(0, n));
      } catch (e) {
        fds?.close();
        // Garbage (a bad length): tell the peer why before hanging up, as the protocol promises.
        try {
          this.stream.send(encodeReject({ reason: RejectReason.Malformed, message: (e as Error).message }), null);
        } catch {
          /* gone */
        }
        this.close(e as IpcError);
        return;
      }
      // Fds ride on the first byte of the frame they were sent with; in this protocol only
      // WELCOME carries any and nothing else is in flight then, so they go to the first frame
      // completed by this read (or are closed if none is).
      let pending = fds;
      for (const f of frames) {
        if (this.isClosed) break;
        const attached = pending;
        pending = null;
        this.frameHandler?.({ type: f.type, body: Buffer.from(f.body), fds: attached });
      }
      pending?.close();
    }
  }

  /** Closes the socket (the peer sees EOF). Idempotent. */
  close(err?: IpcError): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.stream.close();
    const h = this.closeHandler;
    this.closeHandler = null;
    h?.(err);
  }

  /** Whether this connection keeps the process alive (default true). */
  setKeepAlive(keepAlive: boolean): void {
    if (!this.isClosed) this.stream.setRef(keepAlive);
  }
}
