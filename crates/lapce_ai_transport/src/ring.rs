//! A single-producer, single-consumer message ring in shared memory.
//!
//! Layout of a ring region (all integers little-endian; see `docs/PROTOCOL.md`):
//!
//! | offset | size | field | written by |
//! |---|---|---|---|
//! | 0 | 4 | magic `LAIR` | creator |
//! | 4 | 4 | layout version (1) | creator |
//! | 8 | 4 | data capacity in bytes (power of two) | creator |
//! | 64 | 4 | `head`: bytes ever published, mod 2^32 | producer |
//! | 128 | 4 | `tail`: bytes ever released, mod 2^32 | consumer |
//! | 192 | 4 | `consumer_sleeping` | consumer sets, producer clears |
//! | 256 | 4 | `producer_waiting` (for space) | producer sets, consumer clears |
//! | 320 | 4 | `closed` | producer |
//! | 512 | capacity | records | producer |
//!
//! Each hot field has a 64-byte line to itself so the two processes do not false-share.
//! A record is an 8-byte header (`len: u32`, `flags: u32`) and `len` payload bytes padded to 8.
//! Records never wrap: when one does not fit before the end, a `PAD` record fills the rest.
//! Messages larger than a quarter of the ring travel as fragments (`MORE` on all but the last,
//! `CONT` on all but the first) and are reassembled by the consumer.
//!
//! Indices are free-running u32 byte counts (wrapping), so `head - tail` (mod 2^32) is the fill
//! level and no slot is wasted to tell full from empty; capacities up to 1 GiB keep that
//! difference unambiguous. 32 bits rather than 64 so that JavaScript can read and publish
//! them with `Atomics` on an `Int32Array`, without BigInt.

use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use crate::shm::Mapping;
use crate::{Budget, Error, Result};

/// Bytes before the data area.
pub const HEADER_SIZE: usize = 512;
/// `b"LAIR"` read as a little-endian u32.
pub const MAGIC: u32 = u32::from_le_bytes(*b"LAIR");
/// Layout version written into every ring.
pub const LAYOUT_VERSION: u32 = 1;
/// Smallest ring capacity accepted.
pub const MIN_CAPACITY: usize = 4096;
/// Largest ring capacity accepted (1 GiB).
pub const MAX_CAPACITY: usize = 1 << 30;
/// Size of a record header.
pub const RECORD_HEADER: usize = 8;

/// Header offset of the magic (u32).
pub const OFF_MAGIC: usize = 0;
/// Header offset of the layout version (u32).
pub const OFF_VERSION: usize = 4;
/// Header offset of the capacity (u32).
pub const OFF_CAPACITY: usize = 8;
/// Header offset of `head` (atomic u32, producer).
pub const OFF_HEAD: usize = 64;
/// Header offset of `tail` (atomic u32, consumer).
pub const OFF_TAIL: usize = 128;
/// Header offset of `consumer_sleeping` (atomic u32).
pub const OFF_CONSUMER_SLEEPING: usize = 192;
/// Header offset of `producer_waiting` (atomic u32).
pub const OFF_PRODUCER_WAITING: usize = 256;
/// Header offset of `closed` (atomic u32, producer).
pub const OFF_CLOSED: usize = 320;

// The layout, checked when this crate compiles (the TypeScript side reads these same constants
// through the binding, `src/transport/layout.ts`): the creator's words fit before the first hot
// field, every hot field is 4-aligned on a 64-byte line of its own, all inside the header, and
// records are 8-aligned from an 8-aligned data area.
const _: () = {
    assert!(OFF_MAGIC == 0 && OFF_VERSION == 4 && OFF_CAPACITY == 8 && OFF_CAPACITY + 4 <= OFF_HEAD);
    let hot = [OFF_HEAD, OFF_TAIL, OFF_CONSUMER_SLEEPING, OFF_PRODUCER_WAITING, OFF_CLOSED];
    let mut i = 0;
    while i < hot.len() {
        assert!(hot[i].is_multiple_of(64) && hot[i] + 4 <= HEADER_SIZE);
        if i > 0 {
            assert!(hot[i] >= hot[i - 1] + 64);
        }
        i += 1;
    }
    assert!(HEADER_SIZE.is_multiple_of(64) && RECORD_HEADER == 8);
    assert!(MIN_CAPACITY.is_power_of_two() && MAX_CAPACITY.is_power_of_two() && MAX_CAPACITY <= 1 << 30);
    assert!(FLAG_PAD.is_power_of_two() && FLAG_MORE.is_power_of_two() && FLAG_CONT.is_power_of_two());
    assert!(FLAG_PAD != FLAG_MORE && FLAG_MORE != FLAG_CONT && FLAG_PAD != FLAG_CONT);
};

/// Record flag: filler up to the end of the data area.
pub const FLAG_PAD: u32 = 1;
/// Record flag: more fragments of this message follow.
pub const FLAG_MORE: u32 = 2;
/// Record flag: this record continues a message begun by an earlier fragment.
pub const FLAG_CONT: u32 = 4;
const KNOWN_FLAGS: u32 = FLAG_PAD | FLAG_MORE | FLAG_CONT;

/// Size in bytes of a region holding a ring of `capacity` data bytes.
pub fn region_size(capacity: usize) -> usize {
    HEADER_SIZE + capacity
}

/// Checks a requested capacity.
pub fn check_capacity(capacity: usize) -> Result<()> {
    if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
        return Err(Error::InvalidArgument(format!(
            "ring capacity must be a power of two between {MIN_CAPACITY} and {MAX_CAPACITY}, got {capacity}"
        )));
    }
    Ok(())
}

/// Largest payload of a single record in a ring of `capacity` bytes.
///
/// A quarter of the ring: small enough that a record always fits once the ring drains (any
/// record up to half the ring fits either before or after the wrap point), and small enough
/// that producer and consumer can work on different fragments of one large message at once.
pub fn max_fragment(capacity: usize) -> usize {
    capacity / 4 - RECORD_HEADER
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// The first bytes of a fresh ring's header (magic, layout version, capacity); the rest of a
/// fresh header is zero. The creator writes them once, before anyone maps the ring.
pub fn header_prefix(capacity: usize) -> Result<[u8; 12]> {
    check_capacity(capacity)?;
    let mut h = [0u8; 12];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
    h[8..12].copy_from_slice(&(capacity as u32).to_le_bytes());
    Ok(h)
}

/// Writes a fresh ring header into a zeroed region (tests map rings themselves; the creator
/// writes [`header_prefix`] with `pwrite`).
#[cfg(test)]
pub(crate) fn init_header(map: &Mapping, capacity: usize) -> Result<()> {
    let prefix = header_prefix(capacity)?;
    if map.len() != region_size(capacity) {
        return Err(Error::InvalidArgument("mapping size does not match capacity".into()));
    }
    map.write_bytes(OFF_MAGIC, &prefix);
    Ok(())
}

/// Checks the header of a ring we did not create.
pub fn validate_header(map: &Mapping, capacity: usize) -> Result<()> {
    check_capacity(capacity)?;
    if map.len() != region_size(capacity) {
        return Err(Error::InvalidShm(format!(
            "ring region is {} bytes, expected {}",
            map.len(),
            region_size(capacity)
        )));
    }
    let (magic, version, cap) = (map.read_u32(OFF_MAGIC), map.read_u32(OFF_VERSION), map.read_u32(OFF_CAPACITY));
    if magic != MAGIC {
        return Err(Error::InvalidShm(format!("bad ring magic {magic:#x}")));
    }
    if version != LAYOUT_VERSION {
        return Err(Error::InvalidShm(format!("unsupported ring layout version {version}")));
    }
    if cap as usize != capacity {
        return Err(Error::InvalidShm(format!(
            "ring header says capacity {cap}, handshake said {capacity}"
        )));
    }
    Ok(())
}

/// The writing side of a ring.
#[derive(Debug)]
pub struct Producer {
    map: Arc<Mapping>,
    capacity: usize,
    /// Our own copy of `head`: the shared one is only ever written from here, never read back,
    /// so the peer cannot steer where we write.
    head: u32,
    /// Last `tail` seen, to detect a peer moving it backwards.
    tail: u32,
    /// True between the first and last fragment of a message.
    in_message: bool,
    published: u32,
}

impl Producer {
    /// Wraps the producer side of a ring whose header is valid. Starts from the shared indices,
    /// which must be equal (an empty ring); a fresh ring starts at 0.
    pub fn new(map: Arc<Mapping>, capacity: usize) -> Result<Self> {
        validate_header(&map, capacity)?;
        let head = map.atomic_u32(OFF_HEAD).load(Ordering::Acquire);
        let tail = map.atomic_u32(OFF_TAIL).load(Ordering::Acquire);
        if head != tail || !head.is_multiple_of(8) {
            return Err(Error::InvalidShm("ring is not empty".into()));
        }
        Ok(Producer {
            map,
            capacity,
            head,
            tail,
            in_message: false,
            published: head,
        })
    }

    /// Largest payload of one record.
    pub fn max_fragment(&self) -> usize {
        max_fragment(self.capacity)
    }

    /// Reads and checks the consumer's `tail`. Returns the free space.
    fn free(&mut self) -> Result<usize> {
        let tail = self.map.atomic_u32(OFF_TAIL).load(Ordering::Acquire);
        let advanced = tail.wrapping_sub(self.tail);
        let used = self.head.wrapping_sub(tail);
        if !tail.is_multiple_of(8) || used as usize > self.capacity || advanced as usize > self.capacity {
            return Err(Error::Corrupt(format!(
                "tail {tail} is impossible with head {} (last tail {})",
                self.head, self.tail
            )));
        }
        self.tail = tail;
        Ok(self.capacity - used as usize)
    }

    /// Writes as much of `msg[*progress..]` as fits, one fragment at a time, and advances
    /// `*progress`. Returns true once the whole message is in the ring (published or not).
    ///
    /// A message is never interleaved with another: callers finish one before starting the next.
    /// Nothing is visible to the consumer until [`Producer::publish`].
    pub fn write(&mut self, msg: &[u8], progress: &mut usize) -> Result<bool> {
        let max = self.max_fragment();
        if *progress > msg.len() || (*progress > 0) != self.in_message {
            return Err(Error::InvalidArgument("message progress does not match the ring's state".into()));
        }
        let mut free = self.free()?;
        loop {
            let rest = msg.len() - *progress;
            let len = rest.min(max);
            let mut flags = 0;
            if *progress > 0 {
                flags |= FLAG_CONT;
            }
            if len < rest {
                flags |= FLAG_MORE;
            }
            let record = RECORD_HEADER + align8(len);
            let pos = (self.head as usize) & (self.capacity - 1);
            let contiguous = self.capacity - pos;
            let pad = if record > contiguous { contiguous } else { 0 };
            if pad + record > free {
                return Ok(false);
            }
            if pad > 0 {
                self.put_header(pos, (pad - RECORD_HEADER) as u32, FLAG_PAD);
                self.head = self.head.wrapping_add(pad as u32);
            }
            let pos = (self.head as usize) & (self.capacity - 1);
            self.put_header(pos, len as u32, flags);
            self.map
                .write_bytes(HEADER_SIZE + pos + RECORD_HEADER, &msg[*progress..*progress + len]);
            self.head = self.head.wrapping_add(record as u32);
            free -= pad + record;
            *progress += len;
            self.in_message = flags & FLAG_MORE != 0;
            if !self.in_message {
                return Ok(true);
            }
        }
    }

    fn put_header(&self, pos: usize, len: u32, flags: u32) {
        self.map.write_u32(HEADER_SIZE + pos, len);
        self.map.write_u32(HEADER_SIZE + pos + 4, flags);
    }

    /// Makes everything written so far visible to the consumer. Returns true when the consumer
    /// had announced it was going to sleep, in which case the caller must ring its doorbell;
    /// the flag is cleared here so that one sleep costs at most one doorbell.
    pub fn publish(&mut self) -> bool {
        if self.head == self.published {
            return false;
        }
        self.published = self.head;
        // SYNC(publish), PROTOCOL §3.4 step 3: store head, full barrier, then the consumer's
        // flag. Pairs with SYNC(consumer-sleep): either the consumer sees our new head before it
        // sleeps, or we see its flag here. A wake-up cannot be lost.
        self.map.atomic_u32(OFF_HEAD).store(self.head, Ordering::Release);
        fence(Ordering::SeqCst);
        let flag = self.map.atomic_u32(OFF_CONSUMER_SLEEPING);
        flag.load(Ordering::Relaxed) != 0 && flag.swap(0, Ordering::AcqRel) != 0
    }

    /// Announces that we are about to wait for space. Returns false (and withdraws the
    /// announcement) if `needed` bytes are already free, in which case the caller must not sleep.
    pub fn prepare_wait_for_space(&mut self, needed: usize) -> Result<bool> {
        // SYNC(producer-wait), PROTOCOL §3.4 step 4: announce, then re-read tail. Pairs with
        // SYNC(release).
        self.map.atomic_u32(OFF_PRODUCER_WAITING).store(1, Ordering::SeqCst);
        if self.free()? >= needed.min(self.capacity) {
            self.map.atomic_u32(OFF_PRODUCER_WAITING).store(0, Ordering::Relaxed);
            return Ok(false);
        }
        Ok(true)
    }

    /// Free bytes the next fragment of a message with `remaining` bytes to go needs, counting
    /// the padding it needs if it does not fit before the end of the ring.
    pub fn space_needed(&self, remaining: usize) -> usize {
        let record = RECORD_HEADER + align8(remaining.min(self.max_fragment()));
        let contiguous = self.capacity - ((self.head as usize) & (self.capacity - 1));
        if record > contiguous {
            contiguous + record
        } else {
            record
        }
    }

    /// Marks the ring closed: the consumer sees end-of-stream after draining it.
    /// Returns true when the consumer sleeps and must be woken.
    pub fn close(&mut self) -> bool {
        self.closer().close()
    }

    /// A handle that can mark this ring closed, the one thing the receiving half of an endpoint
    /// still does to the outgoing ring.
    pub fn closer(&self) -> TxCloser {
        TxCloser { map: self.map.clone() }
    }

    /// Hands the ring over to a writer in another runtime (the Node binding's JS writer). The
    /// producer is consumed, so nothing can write, or compute free space, from its `head` once
    /// another writer moves it on.
    pub fn into_external(self) -> ExternalTx {
        ExternalTx {
            map: self.map,
            head: self.head,
        }
    }

    /// Whether a message is half-written (some fragments in the ring, more to come).
    #[cfg(test)]
    pub(crate) fn in_message(&self) -> bool {
        self.in_message
    }
}

/// An outgoing ring handed to an external writer by [`Producer::into_external`]: its mapping
/// and the validated `head` to start from. The writer follows `docs/PROTOCOL.md` §3.4.
#[derive(Debug)]
pub struct ExternalTx {
    map: Arc<Mapping>,
    head: u32,
}

impl ExternalTx {
    /// The mapping to write records into.
    pub fn mapping(&self) -> &Arc<Mapping> {
        &self.map
    }

    /// Where writing starts: our own validated `head`, never re-read from shared memory (the
    /// peer could have moved the shared word since).
    pub fn head(&self) -> u32 {
        self.head
    }
}

/// Marks an outgoing ring closed; see [`Producer::closer`].
#[derive(Debug)]
pub struct TxCloser {
    map: Arc<Mapping>,
}

impl TxCloser {
    /// Sets `closed`; returns true when the consumer sleeps and must be woken.
    pub fn close(&self) -> bool {
        // SYNC(closed), PROTOCOL §3.6: set closed, full barrier, then the same check as a publish.
        self.map.atomic_u32(OFF_CLOSED).store(1, Ordering::Release);
        fence(Ordering::SeqCst);
        let flag = self.map.atomic_u32(OFF_CONSUMER_SLEEPING);
        flag.swap(0, Ordering::AcqRel) != 0
    }
}

/// What [`Consumer::next_message`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A whole message in one record, still in the ring at `offset..offset+len` of the mapping.
    /// It stays valid until [`Consumer::release`].
    InPlace {
        /// Byte offset of the payload from the start of the mapping.
        offset: usize,
        /// Payload length.
        len: usize,
    },
    /// A message that arrived in fragments, reassembled into our own memory.
    Assembled(Vec<u8>),
}

/// What [`Consumer::next_record`] found: one validated record, left in the ring (valid until
/// [`Consumer::release`]). For a reader that reassembles fragments itself, into memory of its
/// own (the JS binding copies them straight into a JS buffer: one copy instead of two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// A whole message at `offset..offset+len` of the mapping.
    Whole {
        /// Byte offset of the payload from the start of the mapping.
        offset: usize,
        /// Payload length.
        len: usize,
    },
    /// One fragment of a message that spans several records, in order. Its sequence, the
    /// message's running size (against `max_message`) and the reassembly budget are checked
    /// here, as for [`Consumer::next_message`].
    Fragment {
        /// Byte offset of the fragment from the start of the mapping.
        offset: usize,
        /// Fragment length.
        len: usize,
        /// This fragment completes the message.
        last: bool,
    },
}

/// The reading side of a ring.
#[derive(Debug)]
pub struct Consumer {
    map: Arc<Mapping>,
    capacity: usize,
    /// Bytes released back to the producer (our copy of the shared `tail`).
    tail: u32,
    /// Bytes looked at so far; `tail..read` are records handed out and not yet released.
    read: u32,
    /// The message being reassembled by [`Consumer::next_message`].
    assembling: Option<Vec<u8>>,
    /// Bytes of the fragmented message read so far, while one is in progress (either reader).
    fragmented: Option<usize>,
    /// A finished reassembly buffer handed back with [`Consumer::recycle`], reused for the next
    /// fragmented message so its pages are already mapped (fresh buffers cost a page fault per
    /// 4 KiB, which dominated large-message throughput).
    spare: Option<Vec<u8>>,
    /// Shared limit on reassembly memory, charged with the capacity of `assembling` and `spare`.
    budget: Budget,
    /// Bytes of `budget` held for `assembling` and for `spare`.
    charged: (usize, usize),
    max_message: usize,
    poisoned: bool,
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.budget.release(self.charged.0 + self.charged.1);
    }
}

impl Consumer {
    /// Wraps the consumer side of a ring with a valid header, starting from its `tail`.
    /// Messages larger than `max_message` are refused with [`Error::MessageTooLarge`].
    pub fn new(map: Arc<Mapping>, capacity: usize, max_message: usize) -> Result<Self> {
        validate_header(&map, capacity)?;
        let tail = map.atomic_u32(OFF_TAIL).load(Ordering::Acquire);
        if !tail.is_multiple_of(8) {
            return Err(Error::InvalidShm("ring tail is not aligned".into()));
        }
        Ok(Consumer {
            map,
            capacity,
            tail,
            read: tail,
            assembling: None,
            fragmented: None,
            spare: None,
            budget: Budget::unlimited(),
            charged: (0, 0),
            max_message,
            poisoned: false,
        })
    }

    /// Messages larger than `max_message` are refused from now on.
    pub fn set_max_message(&mut self, max_message: usize) {
        self.max_message = max_message;
    }

    /// Charges reassembly memory to `budget` (shared with other consumers) from now on. Only
    /// before the first fragmented message: fails once anything is charged.
    pub fn set_budget(&mut self, budget: Budget) -> Result<()> {
        if self.charged != (0, 0) {
            return Err(Error::InvalidArgument(
                "the reassembly budget is set before the first message".into(),
            ));
        }
        self.budget = budget;
        Ok(())
    }

    /// Drops a half-reassembled message and its charge (the consumer is failing).
    fn abandon_assembly(&mut self) {
        self.assembling = None;
        self.fragmented = None;
        self.budget.release(std::mem::take(&mut self.charged.0));
        self.poisoned = true;
    }

    /// Charges the budget for a fragmented message that has grown to `size` bytes (and makes room
    /// for them in `assembling`, when [`Consumer::next_message`] reassembles it). Charges at least
    /// a whole ring (a fragmented message is at least a ring's quarter, so most are charged once
    /// or not at all), doubling, never past `max_message`.
    fn charge_assembly(&mut self, size: usize) -> Result<()> {
        if size > self.charged.0 {
            let want = size.max(self.charged.0.saturating_mul(2)).max(self.capacity).min(self.max_message);
            if let Err(e) = self.budget.acquire(want - self.charged.0) {
                self.abandon_assembly();
                return Err(e);
            }
            self.charged.0 = want;
        }
        if let Some(buf) = self.assembling.as_mut() {
            // Room for everything charged (doubling), not just this fragment: one realloc per
            // doubling rather than one per fragment.
            buf.reserve_exact(self.charged.0.saturating_sub(buf.len()));
        }
        Ok(())
    }

    fn corrupt(&mut self, what: String) -> Error {
        // Once the ring is inconsistent nothing after the bad record can be trusted.
        self.poisoned = true;
        Error::Corrupt(what)
    }

    /// Returns the next message, or `None` when the ring is empty.
    ///
    /// In-place messages stay in the ring until [`Consumer::release`]; call it once done with
    /// everything returned so far. After an error the consumer stays failed.
    pub fn next_message(&mut self) -> Result<Option<Next>> {
        loop {
            if self.fragmented.is_some() && self.assembling.is_none() {
                return Err(Error::InvalidArgument("a fragmented message is being read with next_record".into()));
            }
            match self.record(true)? {
                None => return Ok(None),
                Some(Record::Whole { offset, len }) => return Ok(Some(Next::InPlace { offset, len })),
                Some(Record::Fragment { offset, len, last }) => {
                    let buf = self.assembling.as_mut().expect("record(true) starts one");
                    self.map.append_to(offset, len, buf);
                    if last {
                        return Ok(self.assembling.take().map(Next::Assembled));
                    }
                }
            }
        }
    }

    /// Returns the next record, or `None` when the ring is empty: a whole message, or one
    /// fragment of a larger one for the caller to reassemble (see [`Record`]). Everything
    /// [`Consumer::next_message`] checks is checked here. Records stay in the ring until
    /// [`Consumer::release`]. A consumer reads either with this or with `next_message`, not both.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        if self.assembling.is_some() {
            return Err(Error::InvalidArgument(
                "a fragmented message is being read with next_message".into(),
            ));
        }
        self.record(false)
    }

    /// The record parser both readers share; `assemble`: reassemble into `assembling`.
    fn record(&mut self, assemble: bool) -> Result<Option<Record>> {
        if self.poisoned {
            return Err(Error::Corrupt("ring already failed".into()));
        }
        loop {
            let head = self.map.atomic_u32(OFF_HEAD).load(Ordering::Acquire);
            let avail = head.wrapping_sub(self.read);
            if !head.is_multiple_of(8) || head.wrapping_sub(self.tail) as usize > self.capacity || avail as usize > self.capacity {
                return Err(self.corrupt(format!("head {head} is impossible with tail {}", self.tail)));
            }
            if avail == 0 {
                return Ok(None);
            }
            let avail = avail as usize;
            let pos = (self.read as usize) & (self.capacity - 1);
            let len = self.map.read_u32(HEADER_SIZE + pos) as usize;
            let flags = self.map.read_u32(HEADER_SIZE + pos + 4);
            if flags & !KNOWN_FLAGS != 0 {
                return Err(self.corrupt(format!("unknown record flags {flags:#x} at {pos}")));
            }
            if flags & FLAG_PAD != 0 {
                let pad = self.capacity - pos;
                if flags != FLAG_PAD || len != pad - RECORD_HEADER || pad > avail {
                    return Err(self.corrupt(format!("bad padding record at {pos}")));
                }
                self.read = self.read.wrapping_add(pad as u32);
                continue;
            }
            let record = RECORD_HEADER + align8(len);
            if len > max_fragment(self.capacity) || record > self.capacity - pos || record > avail {
                return Err(self.corrupt(format!("record of {len} bytes at {pos} does not fit ({avail} published)")));
            }
            let offset = HEADER_SIZE + pos + RECORD_HEADER;
            self.read = self.read.wrapping_add(record as u32);
            let (more, cont) = (flags & FLAG_MORE != 0, flags & FLAG_CONT != 0);
            if cont != self.fragmented.is_some() {
                return Err(self.corrupt(format!("fragment out of sequence at {pos}")));
            }
            if !more && !cont {
                if len > self.max_message {
                    return Err(Error::MessageTooLarge {
                        size: len,
                        limit: self.max_message,
                    });
                }
                return Ok(Some(Record::Whole { offset, len }));
            }
            if self.fragmented.is_none() && assemble {
                // The spare buffer's charge moves with it to the message being assembled.
                self.assembling = Some(self.spare.take().unwrap_or_default());
                self.charged = (std::mem::take(&mut self.charged.1), 0);
            }
            let size = self.fragmented.unwrap_or(0) + len;
            if size > self.max_message {
                // Refused at the first fragment that passes the limit, before anyone copies it.
                self.abandon_assembly();
                return Err(Error::MessageTooLarge {
                    size,
                    limit: self.max_message,
                });
            }
            self.charge_assembly(size)?;
            if more {
                self.fragmented = Some(size);
            } else {
                // Complete: the caller copies it out now (bounded by one ring's worth per poll),
                // so it leaves the budget here.
                self.fragmented = None;
                self.budget.release(std::mem::take(&mut self.charged.0));
            }
            return Ok(Some(Record::Fragment { offset, len, last: !more }));
        }
    }

    /// Hands back the buffer of an [`Next::Assembled`] message once its contents were copied
    /// out, to be reused for the next one. Buffers larger than four rings are dropped instead,
    /// so one huge message does not pin memory for the life of the connection.
    /// The spare is charged to the budget; when the budget has no room, it is dropped, and it is
    /// given back when the consumer goes idle ([`Consumer::prepare_sleep`]).
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.is_none() && buf.capacity() <= 4 * self.capacity && self.budget.acquire(buf.capacity()).is_ok() {
            buf.clear();
            self.charged.1 = buf.capacity();
            self.spare = Some(buf);
        }
    }

    /// Gives every record returned so far back to the producer. Returns true when the producer
    /// was waiting for space and must be woken (the flag is cleared here).
    pub fn release(&mut self) -> bool {
        if self.read == self.tail {
            return false;
        }
        self.tail = self.read;
        // SYNC(release), PROTOCOL §3.5 step 3: store tail, full barrier, then the producer's
        // flag. Pairs with SYNC(producer-wait).
        self.map.atomic_u32(OFF_TAIL).store(self.tail, Ordering::Release);
        fence(Ordering::SeqCst);
        let flag = self.map.atomic_u32(OFF_PRODUCER_WAITING);
        flag.load(Ordering::Relaxed) != 0 && flag.swap(0, Ordering::AcqRel) != 0
    }

    /// Announces that we are about to sleep. Returns false (and withdraws the announcement) when
    /// records are already waiting or the ring is closed, in which case the caller must not sleep.
    pub fn prepare_sleep(&mut self) -> bool {
        // SYNC(consumer-sleep), PROTOCOL §3.5 step 4: announce, then re-load head and closed.
        // Pairs with SYNC(publish).
        let flag = self.map.atomic_u32(OFF_CONSUMER_SLEEPING);
        flag.store(1, Ordering::SeqCst);
        let head = self.map.atomic_u32(OFF_HEAD).load(Ordering::SeqCst);
        if head != self.read || self.is_closed() {
            flag.store(0, Ordering::Relaxed);
            return false;
        }
        // Idle: give the spare buffer's share of the shared reassembly budget back, so idle
        // connections cannot hold it all (review R1). Busy ones never get here and keep it warm.
        if self.spare.take().is_some() {
            self.budget.release(std::mem::take(&mut self.charged.1));
        }
        true
    }

    /// Withdraws a sleep announcement after waking.
    pub fn cancel_sleep(&mut self) {
        self.map.atomic_u32(OFF_CONSUMER_SLEEPING).store(0, Ordering::Relaxed);
    }

    /// Whether the producer closed the ring. Records published before closing are still readable.
    pub fn is_closed(&self) -> bool {
        self.map.atomic_u32(OFF_CLOSED).load(Ordering::Acquire) != 0
    }

    /// Whether the producer published records we have not read yet.
    pub fn has_pending(&self) -> bool {
        self.map.atomic_u32(OFF_HEAD).load(Ordering::Acquire) != self.read
    }

    /// The mapping the in-place offsets refer to.
    pub fn mapping(&self) -> &Arc<Mapping> {
        &self.map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shm::{create_sealed_memfd, Mapping};
    use std::os::fd::AsFd;

    fn ring(capacity: usize, max_message: usize) -> (Producer, Consumer, Arc<Mapping>) {
        let fd = create_sealed_memfd("test", region_size(capacity)).unwrap();
        let a = Arc::new(Mapping::map(fd.as_fd(), region_size(capacity)).unwrap());
        init_header(&a, capacity).unwrap();
        let b = Arc::new(Mapping::map(fd.as_fd(), region_size(capacity)).unwrap());
        (
            Producer::new(a.clone(), capacity).unwrap(),
            Consumer::new(b, capacity, max_message).unwrap(),
            a,
        )
    }

    fn send(p: &mut Producer, msg: &[u8]) -> bool {
        let mut progress = 0;
        let done = p.write(msg, &mut progress).unwrap();
        p.publish();
        done
    }

    fn recv(c: &mut Consumer) -> Option<Vec<u8>> {
        let out = match c.next_message().unwrap()? {
            Next::InPlace { offset, len } => {
                let mut v = vec![0; len];
                c.mapping().read_bytes(offset, &mut v);
                v
            }
            Next::Assembled(v) => v,
        };
        c.release();
        Some(out)
    }

    #[test]
    fn messages_round_trip_in_order_across_many_wraps() {
        let (mut p, mut c, _) = ring(4096, 1 << 20);
        for i in 0..10_000u32 {
            let msg: Vec<u8> = (0..(i % 300)).map(|j| (i + j) as u8).collect();
            assert!(send(&mut p, &msg));
            assert_eq!(recv(&mut c).unwrap(), msg, "message {i}");
        }
        assert!(recv(&mut c).is_none());
    }

    #[test]
    fn indices_wrap_around_u32() {
        let capacity = 4096;
        let fd = create_sealed_memfd("test", region_size(capacity)).unwrap();
        let a = Arc::new(Mapping::map(fd.as_fd(), region_size(capacity)).unwrap());
        init_header(&a, capacity).unwrap();
        let start = u32::MAX - 8 * 100 + 1;
        a.atomic_u32(OFF_HEAD).store(start, Ordering::Relaxed);
        a.atomic_u32(OFF_TAIL).store(start, Ordering::Relaxed);
        let (mut p, mut c) = (
            Producer::new(a.clone(), capacity).unwrap(),
            Consumer::new(a.clone(), capacity, 1 << 20).unwrap(),
        );
        for i in 0..1000u32 {
            let msg = vec![i as u8; (i % 200) as usize];
            assert!(send(&mut p, &msg));
            assert_eq!(recv(&mut c).unwrap(), msg);
        }
        assert!(
            a.atomic_u32(OFF_HEAD).load(Ordering::Relaxed) < start,
            "head must have wrapped past 2^32"
        );
    }

    #[test]
    fn full_ring_refuses_then_accepts_after_release() {
        let (mut p, mut c, _) = ring(4096, 1 << 20);
        let msg = [7u8; 100];
        let mut sent = 0;
        while send(&mut p, &msg) {
            sent += 1;
        }
        assert_eq!(sent, 4096 / 112, "records of 8+104 bytes fill the ring exactly");
        assert_eq!(recv(&mut c).unwrap(), msg);
        assert!(send(&mut p, &msg), "a released record makes room");
        let mut got = 0;
        while recv(&mut c).is_some() {
            got += 1;
        }
        assert_eq!(got, sent);
    }

    #[test]
    fn empty_message_is_a_message() {
        let (mut p, mut c, _) = ring(4096, 1 << 20);
        assert!(send(&mut p, b""));
        assert_eq!(recv(&mut c), Some(vec![]));
        assert_eq!(recv(&mut c), None);
    }

    #[test]
    fn oversized_messages_are_fragmented_and_reassembled() {
        let (mut p, mut c, _) = ring(4096, 1 << 20);
        let big: Vec<u8> = (0..100_000u32).map(|i| (i * 31) as u8).collect();
        let mut progress = 0;
        let mut out = None;
        let mut rounds = 0;
        while out.is_none() {
            p.write(&big, &mut progress).unwrap();
            p.publish();
            while let Some(next) = c.next_message().unwrap() {
                match next {
                    Next::Assembled(v) => out = Some(v),
                    Next::InPlace { .. } => panic!("a 100 kB message cannot be in place in a 4 kB ring"),
                }
            }
            c.release();
            rounds += 1;
        }
        assert_eq!(out.unwrap(), big);
        assert!(rounds > 20, "the message must have needed many rounds, took {rounds}");
        assert!(!p.in_message());
        assert!(send(&mut p, b"after"));
        assert_eq!(recv(&mut c).unwrap(), b"after");
    }

    #[test]
    fn records_give_fragments_in_place_charged_to_the_budget_until_the_last() {
        let budget = Budget::new(1 << 20);
        let (mut p, mut c, _) = ring(4096, 1 << 20);
        c.set_budget(budget.clone()).unwrap();
        let big: Vec<u8> = (0..50_000u32).map(|i| (i * 7) as u8).collect();
        let (mut progress, mut out, mut fragments) = (0, Vec::new(), 0);
        'message: loop {
            p.write(&big, &mut progress).unwrap();
            p.publish();
            while let Some(r) = c.next_record().unwrap() {
                let Record::Fragment { offset, len, last } = r else {
                    panic!("a 50 kB message cannot be whole in a 4 kB ring");
                };
                let mut v = vec![0; len];
                c.mapping().read_bytes(offset, &mut v);
                out.extend_from_slice(&v);
                fragments += 1;
                if last {
                    assert_eq!(budget.used(), 0, "a complete message leaves the budget");
                    break 'message;
                }
                assert!(budget.used() >= out.len(), "charged {} for {} bytes held", budget.used(), out.len());
            }
            c.release();
        }
        assert_eq!(out, big);
        assert!(fragments > 40, "{fragments} fragments");
        assert!(
            matches!(c.next_message(), Ok(None)),
            "a record reader may switch once a message is complete"
        );
    }

    #[test]
    fn records_refuse_a_message_past_max_message_at_the_fragment_that_passes_it() {
        let (mut p, mut c, _) = ring(4096, 2500);
        let mut progress = 0;
        p.write(&[1u8; 5000], &mut progress).unwrap();
        p.publish();
        let mut seen = 0;
        let err = loop {
            match c.next_record() {
                Ok(Some(Record::Fragment { len, .. })) => seen += len,
                Ok(other) => panic!("unexpected {other:?}"),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, Error::MessageTooLarge { limit: 2500, .. }), "{err}");
        assert!(seen <= 2500, "handed out {seen} bytes of a message over the limit");
        assert!(c.next_record().is_err(), "a failed consumer stays failed");
    }

    #[test]
    fn a_fragmented_message_is_read_with_one_reader_only() {
        let (mut p, mut c, _) = ring(4096, 1 << 20);
        let mut progress = 0;
        p.write(&[3u8; 3000], &mut progress).unwrap();
        p.publish();
        assert!(matches!(c.next_record(), Ok(Some(Record::Fragment { last: false, .. }))));
        assert!(matches!(c.next_message(), Err(Error::InvalidArgument(_))));
        let (mut p2, mut c2, _) = ring(4096, 1 << 20);
        let mut progress = 0;
        p2.write(&[3u8; 10_000], &mut progress).unwrap();
        p2.publish();
        // Only part of the message is in the ring yet: next_message is mid-assembly.
        assert!(matches!(c2.next_message(), Ok(None)));
        assert!(matches!(c2.next_record(), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn too_large_message_is_refused_by_consumer() {
        let (mut p, mut c, _) = ring(1 << 16, 1000);
        assert!(send(&mut p, &[1u8; 2000]));
        assert!(matches!(c.next_message(), Err(Error::MessageTooLarge { size: 2000, limit: 1000 })));
    }

    /// Feeds `msg` through `p` into `c` until it arrives or `c` fails.
    fn push_through(p: &mut Producer, c: &mut Consumer, msg: &[u8]) -> Result<Vec<u8>> {
        let mut progress = 0;
        loop {
            p.write(msg, &mut progress).unwrap();
            p.publish();
            while let Some(next) = c.next_message()? {
                if let Next::Assembled(v) = next {
                    c.release();
                    return Ok(v);
                }
            }
            c.release();
        }
    }

    #[test]
    fn reassembly_is_charged_to_a_shared_budget_and_refused_past_it() {
        let budget = Budget::new(64 * 1024);
        let (mut p1, mut c1, _m1) = ring(4096, 1 << 20);
        let (mut p2, mut c2, _m2) = ring(4096, 1 << 20);
        c1.set_budget(budget.clone()).unwrap();
        c2.set_budget(budget.clone()).unwrap();
        // Consumer 1 starts a large message and stops half-way: its buffer stays charged.
        let big = vec![7u8; 40_000];
        let mut progress = 0;
        p1.write(&big, &mut progress).unwrap();
        p1.publish();
        while c1.next_message().unwrap().is_some() {}
        c1.release();
        let held = budget.used();
        assert!((4096..=64 * 1024).contains(&held), "{held}");
        // Consumer 2's message does not fit next to it: refused, with its own charge undone.
        let err = push_through(&mut p2, &mut c2, &vec![1u8; 60_000]).unwrap_err();
        assert!(matches!(err, Error::ResourceExhausted(_)), "{err}");
        assert_eq!(budget.used(), held, "the refused consumer holds nothing");
        assert!(c2.next_message().is_err(), "and stays failed");
        // Dropping consumer 1 gives its bytes back; a fresh consumer can use the budget again.
        drop(c1);
        assert_eq!(budget.used(), 0);
        let (mut p3, mut c3, _m3) = ring(4096, 1 << 20);
        c3.set_budget(budget.clone()).unwrap();
        // Small enough (≤ 4 rings) that its buffer is kept as the spare.
        let msg: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let got = push_through(&mut p3, &mut c3, &msg).unwrap();
        assert_eq!(got, msg);
        assert_eq!(budget.used(), 0, "a handed-out message leaves the budget");
        c3.recycle(got);
        assert!(budget.used() > 0, "a kept spare buffer is charged");
        drop(c3);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn idle_consumers_give_their_spare_back_to_the_budget() {
        // Review R1: with the budget room for two messages, three connections that each
        // reassemble one message and then go idle must all succeed.
        let budget = Budget::new(25_000);
        let mut keep = Vec::new();
        for i in 0..3 {
            let (mut p, mut c, m) = ring(4096, 1 << 20);
            c.set_budget(budget.clone()).unwrap();
            let msg = vec![i as u8; 10_000];
            let got = push_through(&mut p, &mut c, &msg).unwrap_or_else(|e| panic!("connection {i}: {e}"));
            assert_eq!(got, msg);
            c.recycle(got);
            c.release();
            assert!(c.prepare_sleep(), "nothing waiting");
            assert_eq!(budget.used(), 0, "an idle consumer holds no budget");
            keep.push((p, c, m));
        }
    }

    #[test]
    fn an_oversized_fragmented_message_is_refused_at_the_first_fragment_past_the_limit() {
        let (mut p, mut c, _) = ring(4096, 5000);
        let big = vec![0u8; 100_000];
        let mut progress = 0;
        let err = loop {
            p.write(&big, &mut progress).unwrap();
            p.publish();
            match c.next_message() {
                Ok(None) => {
                    c.release();
                }
                Ok(Some(_)) => unreachable!("nothing can be complete"),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, Error::MessageTooLarge { limit: 5000, .. }), "{err}");
        // Refused as soon as the fifth 1016-byte fragment passed 5000 bytes, not at the end.
        assert!(progress < 5000 + 4096, "the producer had written {progress} bytes");
    }

    #[test]
    fn sleep_announcement_is_withdrawn_when_data_is_waiting() {
        let (mut p, mut c, _) = ring(4096, 1 << 20);
        let mut progress = 0;
        p.write(b"x", &mut progress).unwrap();
        assert!(!p.publish(), "consumer awake: doorbell suppressed");
        assert!(!c.prepare_sleep(), "data waiting: must not sleep");
        progress = 0;
        p.write(b"y", &mut progress).unwrap();
        assert!(!p.publish(), "announcement withdrawn: still suppressed");
    }

    #[test]
    fn publish_reports_a_sleeping_consumer_once() {
        let (mut p, mut c, _) = ring(4096, 1 << 20);
        assert!(c.prepare_sleep());
        let mut progress = 0;
        p.write(b"a", &mut progress).unwrap();
        assert!(p.publish(), "consumer asleep: ring");
        progress = 0;
        p.write(b"b", &mut progress).unwrap();
        assert!(!p.publish(), "already rung for this sleep");
    }

    #[test]
    fn producer_waiting_for_space_is_woken_by_release() {
        let (mut p, mut c, _) = ring(4096, 1 << 20);
        while send(&mut p, &[0u8; 500]) {}
        assert!(p.prepare_wait_for_space(p.space_needed(500)).unwrap());
        recv(&mut c).unwrap();
        // `recv` released: the consumer must have seen the flag; the next release owes nothing.
        assert!(!c.release());
        assert!(!p.prepare_wait_for_space(p.space_needed(500)).unwrap(), "space is free now");
    }

    #[test]
    fn closed_ring_drains_then_reports_closed() {
        let (mut p, mut c, _) = ring(4096, 1 << 20);
        send(&mut p, b"last");
        p.close();
        assert!(c.is_closed());
        assert_eq!(recv(&mut c).unwrap(), b"last");
        assert!(!c.prepare_sleep(), "a closed ring is never slept on");
    }

    // ---- a hostile producer: scribble over the shared header and records ----

    const OFF_DATA: usize = HEADER_SIZE;

    fn scribbled(f: impl FnOnce(&Mapping)) -> Error {
        let (mut p, mut c, map) = ring(4096, 1 << 20);
        send(&mut p, b"hello");
        f(&map);
        loop {
            match c.next_message() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("corruption went unnoticed"),
                Err(e) => {
                    // Once failed, the consumer stays failed.
                    assert!(c.next_message().is_err());
                    return e;
                }
            }
        }
    }

    #[test]
    fn head_beyond_capacity_is_detected() {
        let e = scribbled(|m| m.atomic_u32(OFF_HEAD).store(1 << 30, Ordering::Release));
        assert!(matches!(e, Error::Corrupt(_)), "{e}");
    }

    #[test]
    fn unaligned_head_is_detected() {
        let e = scribbled(|m| m.atomic_u32(OFF_HEAD).store(13, Ordering::Release));
        assert!(matches!(e, Error::Corrupt(_)), "{e}");
    }

    #[test]
    fn record_length_past_published_data_is_detected() {
        let e = scribbled(|m| m.write_u32(OFF_DATA, 4000));
        assert!(matches!(e, Error::Corrupt(_)), "{e}");
    }

    #[test]
    fn huge_record_length_is_detected() {
        let e = scribbled(|m| m.write_u32(OFF_DATA, u32::MAX));
        assert!(matches!(e, Error::Corrupt(_)), "{e}");
    }

    #[test]
    fn unknown_flags_are_detected() {
        let e = scribbled(|m| m.write_u32(OFF_DATA + 4, 0x80));
        assert!(matches!(e, Error::Corrupt(_)), "{e}");
    }

    #[test]
    fn stray_continuation_is_detected() {
        let e = scribbled(|m| m.write_u32(OFF_DATA + 4, FLAG_CONT));
        assert!(matches!(e, Error::Corrupt(_)), "{e}");
    }

    #[test]
    fn bogus_padding_is_detected() {
        let e = scribbled(|m| m.write_u32(OFF_DATA + 4, FLAG_PAD));
        assert!(matches!(e, Error::Corrupt(_)), "{e}");
    }

    #[test]
    fn random_garbage_never_escapes_the_mapping() {
        // A cheap xorshift keeps the test deterministic without a dependency.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2000 {
            let (mut p, mut c, map) = ring(4096, 1 << 16);
            for i in 0..(rnd() % 20) {
                send(&mut p, &vec![i as u8; (rnd() % 700) as usize]);
            }
            for _ in 0..(rnd() % 8) {
                let off = (rnd() as usize % (region_size(4096) / 4)) * 4;
                map.write_u32(off, rnd() as u32);
            }
            // Whatever the garbage, reading must end in data, emptiness or a clean error.
            for _ in 0..100 {
                match c.next_message() {
                    Ok(Some(Next::InPlace { offset, len })) => assert!(offset + len <= map.len()),
                    Ok(Some(Next::Assembled(v))) => assert!(v.len() <= 1 << 16),
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }

    #[test]
    fn producer_detects_a_tail_moved_backwards_or_past_head() {
        let (mut p, _c, map) = ring(4096, 1 << 20);
        send(&mut p, b"abc");
        map.atomic_u32(OFF_TAIL).store(4096 * 8, Ordering::Release);
        let mut progress = 0;
        assert!(matches!(p.write(b"x", &mut progress), Err(Error::Corrupt(_))));
    }

    #[test]
    fn bad_header_is_refused() {
        let capacity = 4096;
        let fd = create_sealed_memfd("test", region_size(capacity)).unwrap();
        let m = Arc::new(Mapping::map(fd.as_fd(), region_size(capacity)).unwrap());
        assert!(
            matches!(Consumer::new(m.clone(), capacity, 10), Err(Error::InvalidShm(_))),
            "zero magic"
        );
        init_header(&m, capacity).unwrap();
        assert!(Consumer::new(m.clone(), 8192, 10).is_err(), "capacity mismatch");
        m.write_u32(OFF_VERSION, 99);
        assert!(matches!(Consumer::new(m, capacity, 10), Err(Error::InvalidShm(_))), "version");
    }
}
