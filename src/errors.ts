/**
 * Typed errors. Every failure a user can see is an {@link IpcError} with a stable `code` and a
 * `retryable` hint, whether it started in Rust, in the protocol layer, or at the peer.
 * @packageDocumentation
 */

/** Stable error codes. */
export type IpcErrorCode =
  | 'CHANNEL_CLOSED'
  | 'CONNECTION_LOST'
  | 'RING_CORRUPT'
  | 'INVALID_SHM'
  | 'MESSAGE_TOO_LARGE'
  | 'PROTOCOL_ERROR'
  | 'HANDSHAKE_REJECTED'
  | 'HANDSHAKE_TIMEOUT'
  | 'ADDRESS_IN_USE'
  | 'UNKNOWN_METHOD'
  | 'BAD_PAYLOAD'
  | 'HANDLER_ERROR'
  | 'CANCELLED'
  | 'TIMEOUT'
  | 'TOO_MANY_STREAMS'
  | 'GOING_AWAY'
  | 'IO'
  | 'INVALID_ARGUMENT'
  | (string & {});

/** Options of {@link IpcError}. */
export interface IpcErrorOptions {
  retryable?: boolean;
  cause?: unknown;
  /** Extra machine-readable detail (for example a handshake reject reason). */
  details?: Record<string, unknown>;
}

/** An error with a stable code, as every error of this package is. */
export class IpcError extends Error {
  /** Stable, machine-readable code. */
  readonly code: IpcErrorCode;
  /** Whether trying again (possibly after reconnecting) can succeed. */
  readonly retryable: boolean;
  /** Extra detail, if any. */
  readonly details?: Record<string, unknown>;

  constructor(code: IpcErrorCode, message: string, options: IpcErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IpcError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    if (options.details) this.details = options.details;
  }

  /** The wire form used in error frames. */
  toJSON(): { code: string; message: string; retryable: boolean; details?: Record<string, unknown> } {
    return { code: this.code, message: this.message, retryable: this.retryable, ...(this.details ? { details: this.details } : {}) };
  }
}

/** Converts an error thrown by the native binding (its `code` is the transport's). */
export function fromNative(err: unknown): IpcError {
  if (err instanceof IpcError) return err;
  const e = err as { code?: string; message?: string };
  const code = typeof e?.code === 'string' && e.code !== 'NAPI' ? e.code : 'IO';
  const retryable = code === 'CLOSED' || code === 'IO';
  return new IpcError(code === 'CLOSED' ? 'CHANNEL_CLOSED' : code, e?.message ?? String(err), { retryable, cause: err });
}
