//! The ring layout, exported to JS from the Rust constants (`lapce_ai_transport::ring`), so
//! `src/transport/layout.ts` has one source: the same numbers the Rust producer and consumer
//! are compiled with (and checked by compile-time asserts there). `docs/PROTOCOL.md` §3.2–3.3.

use lapce_ai_transport::ring;
use napi_derive::napi;

/// Bytes before the data area of a ring region.
#[napi]
pub const RING_HEADER_SIZE: u32 = ring::HEADER_SIZE as u32;
/// Header offset of `head` (u32, producer).
#[napi]
pub const RING_OFF_HEAD: u32 = ring::OFF_HEAD as u32;
/// Header offset of `tail` (u32, consumer).
#[napi]
pub const RING_OFF_TAIL: u32 = ring::OFF_TAIL as u32;
/// Header offset of `consumer_sleeping` (u32).
#[napi]
pub const RING_OFF_CONSUMER_SLEEPING: u32 = ring::OFF_CONSUMER_SLEEPING as u32;
/// Header offset of `producer_waiting` (u32).
#[napi]
pub const RING_OFF_PRODUCER_WAITING: u32 = ring::OFF_PRODUCER_WAITING as u32;
/// Header offset of `closed` (u32).
#[napi]
pub const RING_OFF_CLOSED: u32 = ring::OFF_CLOSED as u32;
/// Size of a record header (`len: u32`, `flags: u32`).
#[napi]
pub const RING_RECORD_HEADER: u32 = ring::RECORD_HEADER as u32;
/// Record flag: filler up to the end of the data area.
#[napi]
pub const RING_FLAG_PAD: u32 = ring::FLAG_PAD;
/// Record flag: more fragments follow.
#[napi]
pub const RING_FLAG_MORE: u32 = ring::FLAG_MORE;
/// Record flag: continues a message.
#[napi]
pub const RING_FLAG_CONT: u32 = ring::FLAG_CONT;
/// Smallest ring capacity.
#[napi]
pub const RING_MIN_CAPACITY: u32 = ring::MIN_CAPACITY as u32;
/// Largest ring capacity.
#[napi]
pub const RING_MAX_CAPACITY: u32 = ring::MAX_CAPACITY as u32;
/// Ring layout version.
#[napi]
pub const RING_LAYOUT_VERSION: u32 = ring::LAYOUT_VERSION;
/// `LAIR` magic as a little-endian u32.
#[napi]
pub const RING_MAGIC: u32 = ring::MAGIC;

/// Int32 words per message descriptor `NativeEndpoint.poll()` writes: offset, length, kind.
#[napi]
pub const POLL_DESC_WORDS: u32 = 3;
/// Descriptor kind: a whole message in one record.
#[napi]
pub const POLL_WHOLE: u32 = 0;
/// Descriptor kind: a fragment of a larger message; more follow.
#[napi]
pub const POLL_FRAGMENT: u32 = 1;
/// Descriptor kind: the fragment that completes a message.
#[napi]
pub const POLL_LAST_FRAGMENT: u32 = 2;
/// Descriptor kind: the batch stops at a failure (a message past the limit, a corrupt record).
/// The descriptors before it are valid messages; the next `poll()` throws the failure.
#[napi]
pub const POLL_FAILED: u32 = 3;
