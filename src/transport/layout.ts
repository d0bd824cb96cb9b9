/**
 * The shared-memory ring layout, mirrored from `crates/lapce_ai_transport/src/ring.rs` and
 * specified in `docs/PROTOCOL.md`. Offsets are in bytes from the start of a ring region.
 * @packageDocumentation
 */

/** Bytes before the records. */
export const HEADER_SIZE = 512;
/** `head`: u32 byte count published by the producer (wrapping). */
export const OFF_HEAD = 64;
/** `tail`: u32 byte count released by the consumer (wrapping). */
export const OFF_TAIL = 128;
/** u32, 1 while the consumer sleeps on its doorbell. */
export const OFF_CONSUMER_SLEEPING = 192;
/** u32, 1 while the producer waits for space. */
export const OFF_PRODUCER_WAITING = 256;
/** u32, 1 once the producer closed the ring. */
export const OFF_CLOSED = 320;
/** Size of a record header (`len: u32`, `flags: u32`). */
export const RECORD_HEADER = 8;
/** Record flags. */
export const FLAG_PAD = 1;
export const FLAG_MORE = 2;
export const FLAG_CONT = 4;

/** Largest payload of one record in a ring of `capacity` bytes (a quarter of it). */
export function maxFragment(capacity: number): number {
  return capacity / 4 - RECORD_HEADER;
}

/** Rounds up to a multiple of 8. */
export function align8(n: number): number {
  return (n + 7) & ~7;
}
