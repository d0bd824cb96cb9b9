/**
 * Handshake reject reasons (the `reason` of a REJECT control frame), in a module of their own
 * so that both the codec and the error classes can use them without importing each other.
 * @packageDocumentation
 */

/** Why a handshake was rejected (wire values, `docs/PROTOCOL.md` §1). */
export enum RejectReason {
  /** HELLO's magic is not `LAIC`. */
  BadMagic = 1,
  /** The version ranges do not overlap. */
  NoCommonVersion = 2,
  /** The peer runs as a uid the server does not allow. */
  UidMismatch = 3,
  /** HELLO's pid is not the peer's SO_PEERCRED pid (see `checkPid`). */
  PidMismatch = 4,
  /** The handshake did not finish in time. */
  Timeout = 5,
  /** A control frame could not be decoded, carried fds it should not, or READY named another slot. */
  Malformed = 6,
  /** Every connection slot is taken (retryable). */
  ServerFull = 7,
  /** The server is closing (retryable, at another server). */
  ShuttingDown = 8,
  /** The server failed while setting up the session, e.g. out of fds (retryable). */
  Internal = 9,
  /** The client found the WELCOME or its fds unusable. */
  ClientRejected = 10,
}

/** Readable name of a reject reason, as used in errors, logs and metric labels. */
export type RejectReasonName =
  | 'bad_magic'
  | 'no_common_version'
  | 'uid_mismatch'
  | 'pid_mismatch'
  | 'timeout'
  | 'malformed'
  | 'server_full'
  | 'shutting_down'
  | 'internal'
  | 'client_rejected'
  | 'unknown';

/** Readable names of the reject reasons. */
export const REJECT_NAMES: Readonly<Record<number, RejectReasonName>> = Object.freeze({
  1: 'bad_magic',
  2: 'no_common_version',
  3: 'uid_mismatch',
  4: 'pid_mismatch',
  5: 'timeout',
  6: 'malformed',
  7: 'server_full',
  8: 'shutting_down',
  9: 'internal',
  10: 'client_rejected',
});

/** Reasons worth retrying: the server may have room, may be back, or was only slow. */
export const RETRYABLE_REJECTS: ReadonlySet<number> = new Set([RejectReason.Timeout, RejectReason.ServerFull, RejectReason.ShuttingDown]);

/** The readable name of a reason code (`unknown` for a code this build does not know). */
export function rejectName(reason: number): RejectReasonName {
  return REJECT_NAMES[reason] ?? 'unknown';
}
