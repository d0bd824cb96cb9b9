/**
 * One error model. Every failure a user can see is an {@link IpcError} (or a subclass) with a
 * stable UPPER_SNAKE `code`, a `retryable` hint, an optional `cause` and `details`, and a
 * `toJSON()` wire form, whether it started in Rust, in the protocol layer, or at the peer.
 * {@link ERROR_CODES} lists every code this package produces, with its meaning and whether it
 * is retryable by default; it is the one place a code's retry hint is decided.
 * @packageDocumentation
 */
import * as os from 'node:os';
import { REJECT_NAMES, RejectReason, rejectName, RETRYABLE_REJECTS } from './protocol/reject';
import type { RejectReasonName } from './protocol/reject';

/**
 * One entry of {@link ERROR_CODES}.
 * @category Errors
 */
export interface ErrorCodeInfo {
  /** What the code means, for docs and for people reading logs. */
  readonly meaning: string;
  /** Whether trying again (possibly after reconnecting) can succeed, unless the error says otherwise. */
  readonly retryable: boolean;
}

/**
 * Every error code of the IPC layer, on the wire (ERROR frames) and in the API. Other layers
 * (the chat backend) add their own codes in the same UPPER_SNAKE style on subclasses.
 * @category Errors
 */
export const ERROR_CODES = Object.freeze({
  CHANNEL_CLOSED: { meaning: 'this side closed the channel or client; calls on it fail', retryable: false },
  CONNECTION_LOST: { meaning: 'the peer went away or could not be reached (control socket EOF, connect failure)', retryable: true },
  RING_CORRUPT: { meaning: 'the peer wrote an impossible index or record into a shared ring; the session ended', retryable: true },
  INVALID_SHM: { meaning: 'a passed fd is not a sealed memfd or doorbell of the expected kind and size', retryable: false },
  MESSAGE_TOO_LARGE: { meaning: 'a message exceeds the negotiated max_message (counting the whole frame)', retryable: false },
  PROTOCOL_ERROR: { meaning: 'the peer sent a malformed or unexpected frame; the session ended', retryable: false },
  HANDSHAKE_REJECTED: { meaning: 'the handshake was refused; details.reason names why', retryable: false },
  PEER_NOT_TRUSTED: {
    meaning: "the server's SO_PEERCRED uid is not one the client trusts (its own, or IpcClientOptions.serverUids); nothing was sent",
    retryable: false,
  },
  HANDSHAKE_TIMEOUT: { meaning: 'the handshake did not complete in time', retryable: true },
  ADDRESS_IN_USE: { meaning: 'a live server already listens on the socket path', retryable: false },
  UNKNOWN_METHOD: { meaning: 'no handler is registered for the method (or it is a stream/request mismatch)', retryable: false },
  BAD_PAYLOAD: { meaning: 'the payload is not what the method takes (bytes for JSON, invalid JSON, bad arguments)', retryable: false },
  HANDLER_ERROR: { meaning: 'the handler threw an error without a code of its own', retryable: false },
  CANCELLED: { meaning: 'the call was cancelled (CANCEL frame, abort signal, or breaking out of a stream)', retryable: false },
  TIMEOUT: { meaning: 'the call did not finish within its timeout', retryable: true },
  TOO_MANY_STREAMS: { meaning: 'the connection has max_streams streams open already', retryable: true },
  TOO_MANY_REQUESTS: {
    meaning: 'the calls in flight already number maxInFlight, or their payloads would pass maxInFlightBytes or inFlightBytesBudget',
    retryable: true,
  },
  SEND_QUEUE_FULL: {
    meaning: "the client's queue of sends waiting for ring space is full (the server is not reading); retry later",
    retryable: true,
  },
  GOING_AWAY: { meaning: 'the server is shutting down (after GOAWAY, or at its deadline)', retryable: true },
  RESOURCE_EXHAUSTED: { meaning: 'a server-wide budget (reassembly memory) is used up; the session ended', retryable: true },
  IO: { meaning: 'an operating-system call failed', retryable: true },
  INVALID_ARGUMENT: { meaning: 'an option or argument is invalid (checked locally, never sent)', retryable: false },
  CONFIG_INVALID: { meaning: 'a configuration file or value is invalid', retryable: false },
  UNSUPPORTED_PLATFORM: { meaning: 'no native binary is built for this OS, architecture or libc', retryable: false },
  NATIVE_LOAD_FAILED: {
    meaning: 'the native binary for this platform is missing or cannot be loaded (platform package not installed, glibc too old)',
    retryable: false,
  },
} satisfies Record<string, ErrorCodeInfo>);

/** A code of {@link ERROR_CODES}. */
export type KnownErrorCode = keyof typeof ERROR_CODES;

/**
 * Stable error codes: those of {@link ERROR_CODES}, or another layer's UPPER_SNAKE code.
 * @category Errors
 */
export type IpcErrorCode = KnownErrorCode | (string & {});

/**
 * Options of {@link IpcError}.
 * @category Errors
 */
export interface IpcErrorOptions {
  /** Overrides the code's default retry hint from {@link ERROR_CODES}. */
  retryable?: boolean;
  /** The underlying error. */
  cause?: unknown;
  /** Extra machine-readable detail (for example a handshake reject reason). */
  details?: Record<string, unknown>;
}

/**
 * The wire form of an error (the payload of an ERROR frame).
 * @category Errors
 */
export interface IpcErrorJSON {
  /** The stable UPPER_SNAKE code. */
  code: string;
  /** What went wrong, for people. */
  message: string;
  /** Whether trying again can succeed. */
  retryable: boolean;
  /** Machine-readable detail (e.g. a reject reason, a provider's HTTP status). */
  details?: Record<string, unknown>;
}

/** Whether `code` is a known code (`ERROR_CODES`). */
export function isKnownCode(code: string): code is KnownErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_CODES, code);
}

/**
 * An error with a stable code, as every error of this package is.
 * @example
 * ```ts
 * try {
 *   await client.request('add', { a: 1, b: 2 }, { timeout: 1000 });
 * } catch (e) {
 *   if (e instanceof IpcError && e.retryable) console.warn(`${e.code}: ${e.message}, trying again`);
 *   else throw e;
 * }
 * ```
 * @category Errors
 */
export class IpcError extends Error {
  /** Stable, machine-readable code (UPPER_SNAKE). */
  readonly code: IpcErrorCode;
  /** Whether trying again (possibly after reconnecting) can succeed. */
  readonly retryable: boolean;
  /** Extra detail, if any. */
  readonly details?: Record<string, unknown>;

  constructor(code: IpcErrorCode, message: string, options: IpcErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? (isKnownCode(code) ? ERROR_CODES[code].retryable : false);
    if (options.details) this.details = options.details;
  }

  /** The wire form used in error frames (no stack, no cause). */
  toJSON(): IpcErrorJSON {
    return { code: this.code, message: this.message, retryable: this.retryable, ...(this.details ? { details: this.details } : {}) };
  }

  /**
   * Rebuilds an error from its wire form, as received in an ERROR frame. Anything that is not
   * an object with a string code becomes PROTOCOL_ERROR.
   */
  static fromJSON(json: unknown): IpcError {
    const e = json as Partial<IpcErrorJSON> | null;
    if (!e || typeof e !== 'object' || typeof e.code !== 'string' || e.code === '') {
      return new IpcError('PROTOCOL_ERROR', 'malformed error frame');
    }
    const details = e.details && typeof e.details === 'object' ? e.details : undefined;
    return new IpcError(e.code, typeof e.message === 'string' ? e.message : 'unknown error', { retryable: e.retryable === true, details });
  }
}

/**
 * A handshake failure, with the protocol's reason.
 * @category Errors
 */
export class HandshakeError extends IpcError {
  /** The reason's readable name, e.g. `server_full`. */
  readonly reason: RejectReasonName;
  /** The reason's wire value (REJECT frame), e.g. 7. */
  readonly reasonCode: number;

  /**
   * @param reasonCode a {@link RejectReason}
   * @param options `retryable` defaults to whether the reason is one worth retrying (timeout, server full, shutting down)
   */
  constructor(reasonCode: number, message: string, options: Omit<IpcErrorOptions, 'details'> & { details?: Record<string, unknown> } = {}) {
    const reason = rejectName(reasonCode);
    super(reasonCode === RejectReason.Timeout ? 'HANDSHAKE_TIMEOUT' : 'HANDSHAKE_REJECTED', message, {
      retryable: options.retryable ?? RETRYABLE_REJECTS.has(reasonCode),
      cause: options.cause,
      details: { ...options.details, reason, reasonCode },
    });
    this.reason = reason;
    this.reasonCode = reasonCode;
  }

  /** The reason's readable name (same as {@link HandshakeError.reason}). */
  get reasonName(): RejectReasonName {
    return this.reason;
  }
}

export { REJECT_NAMES, RejectReason };
export type { RejectReasonName };

/** Node's usual fields of a failed system call (as on `net`'s errors). */
export interface SystemErrorDetails {
  /** errno name, e.g. `ENOENT`. */
  errno: string;
  /** The failed call, e.g. `connect`. */
  syscall: string;
  /** The path involved. */
  address?: string;
}

const errnoNames = new Map<number, string>();
function errnoName(n: number): string | undefined {
  if (errnoNames.size === 0) {
    for (const [name, value] of Object.entries(os.constants.errno)) if (!errnoNames.has(value)) errnoNames.set(value, name);
  }
  return errnoNames.get(n);
}

/**
 * The errno of a native error. The binding reports OS failures as `IO` with Rust's
 * `io::Error` text, whose form "… (os error N)" is stable; an `errno` property wins if present.
 */
export function nativeErrno(err: unknown): string | undefined {
  const e = err as { errno?: unknown; message?: unknown } | null;
  if (typeof e?.errno === 'string') return e.errno;
  if (typeof e?.errno === 'number') return errnoName(Math.abs(e.errno));
  const m = typeof e?.message === 'string' ? /\(os error (\d+)\)/.exec(e.message) : null;
  return m ? errnoName(Number(m[1])) : undefined;
}

/**
 * A Node-style system error (`code`, `errno`, `syscall`, `address`), as `net` makes them: the
 * `cause` of IPC errors that come from a failed system call.
 */
export function systemError(errno: string, syscall: string, address: string | undefined, message: string): NodeJS.ErrnoException {
  const e = new Error(`${syscall} ${errno}${address ? ` ${address}` : ''}: ${message}`) as NodeJS.ErrnoException & { address?: string };
  e.code = errno;
  const n = (os.constants.errno as Record<string, number>)[errno];
  if (n !== undefined) e.errno = -n;
  e.syscall = syscall;
  if (address !== undefined) e.address = address;
  return e;
}

/** Converts an error thrown by the native binding (its `code` is the transport's). */
export function fromNative(err: unknown): IpcError {
  if (err instanceof IpcError) return err;
  const e = err as { code?: string; message?: string };
  const raw = typeof e?.code === 'string' && e.code !== 'NAPI' ? e.code : 'IO';
  const code = raw === 'CLOSED' ? 'CHANNEL_CLOSED' : raw;
  return new IpcError(code, e?.message ?? String(err), {
    retryable: code === 'CHANNEL_CLOSED' || code === 'IO' ? true : undefined,
    cause: err,
  });
}

/**
 * Turns anything a handler threw into the error sent to the client. An IpcError (or subclass,
 * such as the chat backend's errors) keeps its code, retry hint and details; anything else is
 * HANDLER_ERROR with its message.
 */
export function toIpcError(e: unknown): IpcError {
  if (e instanceof IpcError) return e;
  return new IpcError('HANDLER_ERROR', e instanceof Error ? e.message : String(e), { cause: e });
}
