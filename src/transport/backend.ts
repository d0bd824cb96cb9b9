/**
 * How a {@link Channel} moves bytes: one small interface, two implementations
 * ({@link ZeroCopyBackend}: JS writes the outgoing ring and reads the incoming one in place;
 * {@link CopyingBackend}: native calls copy, for runtimes that refuse external buffers). The
 * channel keeps the send queue, the iterator and the lifecycle; a backend knows its rings.
 * @packageDocumentation
 */

/** What a backend delivers messages to (the channel). */
export interface Sink {
  /** Hands one message over; `transient`: a view valid only until this returns. */
  deliver(msg: Uint8Array, transient: boolean): void;
  /** Whether to go on reading (a handler or a hungry iterator, not paused). */
  readonly reading: boolean;
  /** Whether the channel closed (a handler may close it). */
  readonly closed: boolean;
}

/** Result of {@link Backend.drain}. */
export const enum Drained {
  /** Nothing to read. */
  Idle,
  /** Messages were delivered (there may be more). */
  Work,
  /** The peer closed its ring and everything in it was read. */
  Ended,
}

export { TURN_MESSAGES, TURN_MS } from '../defaults';

/** One backend of a channel. None of these throws for anything but a failed ring (typed). */
export interface Backend {
  /** Whether messages are read in place. */
  readonly zeroCopy: boolean;
  /** Publishes that needed no doorbell because the peer was awake (written by JS). */
  readonly doorbellsSuppressed: number;
  /**
   * Writes the message `head` + `body` (`body` may be null) from `progress` on as far as the
   * ring allows and publishes; returns the new progress, or -1 when not even the first record
   * fit. A backend without {@link gathers} takes `body` null only.
   */
  write(head: Uint8Array, body: Uint8Array | null, progress: number): number;
  /** Whether {@link write} takes a message in two parts (else the channel joins them first). */
  readonly gathers: boolean;
  /**
   * After a short write with `remaining` bytes to go: announces that we wait for space, so the
   * reader releases as soon as it has read. False when the space is there already: write again.
   */
  waitForSpace(remaining: number): boolean;
  /**
   * Whether {@link drain} (when `reading`) or a write of a queued send (when `sending`) would
   * find something to do, from shared memory alone; backends that cannot tell say true.
   */
  probe(reading: boolean, sending: boolean): boolean;
  /** Delivers waiting messages to `sink`, within the per-turn budget. */
  drain(sink: Sink): Drained;
  /**
   * Announces that this side goes to sleep on its doorbell, waiting for messages (`reading`)
   * and/or for space for `remaining` more bytes of a queued send (-1: no send waits; 0 is an
   * empty message, which still needs a record). False: work turned up.
   */
  prepareSleep(reading: boolean, remaining: number): boolean;
  /** Gives what was read back to the writer (before sleeping). */
  release(): void;
  /** Holds publishes back until {@link uncork} (one publish, one doorbell at most, per run). */
  cork(): void;
  /** Publishes what was written while corked. */
  uncork(): void;
}

export { TRANSIENT } from '../util/transient';
