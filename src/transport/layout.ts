/**
 * The shared-memory ring layout (`docs/PROTOCOL.md` §3.2–3.3). One source: every number comes
 * from the Rust constants of `crates/lapce_ai_transport/src/ring.rs` through the binding
 * (`crates/lapce_ai_ipc_binding/src/layout.rs`), where compile-time asserts check them, so the
 * JS writer and the Rust consumer cannot disagree. Offsets are in bytes from the start of a ring
 * region.
 * @packageDocumentation
 */
import native = require('../native');

/** Bytes before the records. */
export const HEADER_SIZE: number = native.RING_HEADER_SIZE;
/** `head`: u32 byte count published by the producer (wrapping). */
export const OFF_HEAD: number = native.RING_OFF_HEAD;
/** `tail`: u32 byte count released by the consumer (wrapping). */
export const OFF_TAIL: number = native.RING_OFF_TAIL;
/** u32, 1 while the consumer sleeps on its doorbell. */
export const OFF_CONSUMER_SLEEPING: number = native.RING_OFF_CONSUMER_SLEEPING;
/** u32, 1 while the producer waits for space. */
export const OFF_PRODUCER_WAITING: number = native.RING_OFF_PRODUCER_WAITING;
/** u32, 1 once the producer closed the ring. */
export const OFF_CLOSED: number = native.RING_OFF_CLOSED;
/** Size of a record header (`len: u32`, `flags: u32`). */
export const RECORD_HEADER: number = native.RING_RECORD_HEADER;
/** Record flag: filler up to the end of the data area. */
export const FLAG_PAD: number = native.RING_FLAG_PAD;
/** Record flag: more fragments of this message follow. */
export const FLAG_MORE: number = native.RING_FLAG_MORE;
/** Record flag: this record continues a message. */
export const FLAG_CONT: number = native.RING_FLAG_CONT;
/** Smallest and largest ring capacity (powers of two). */
export const MIN_CAPACITY: number = native.RING_MIN_CAPACITY;
export const MAX_CAPACITY: number = native.RING_MAX_CAPACITY;

/** Largest payload of one record in a ring of `capacity` bytes (a quarter of it). */
export function maxFragment(capacity: number): number {
  return capacity / 4 - RECORD_HEADER;
}

/** Rounds up to a multiple of 8. */
export function align8(n: number): number {
  return (n + 7) & ~7;
}

/** Int32 words per descriptor `NativeEndpoint.poll()` writes: offset, length, kind. */
export const POLL_DESC_WORDS: number = native.POLL_DESC_WORDS;
/** Descriptor kind: a whole message. */
export const POLL_WHOLE: number = native.POLL_WHOLE;
/** Descriptor kind: a fragment of a larger message; more follow. */
export const POLL_FRAGMENT: number = native.POLL_FRAGMENT;
/** Descriptor kind: the fragment that completes a message. */
export const POLL_LAST_FRAGMENT: number = native.POLL_LAST_FRAGMENT;
/** Descriptor kind: the batch stops at a failure, which the next poll throws (what came before it is valid). */
export const POLL_FAILED: number = native.POLL_FAILED;
