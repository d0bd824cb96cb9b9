//! A ring as the peer sees it (`docs/PROTOCOL.md` §2), reached with `pread`/`pwrite` on the memfd
//! rather than a mapping: the page cache is the same memory the other side maps, and a syscall
//! per access is plenty fast for an attacker. Any field can be read or written at will.

use std::os::fd::OwnedFd;

/// Bytes before the data area.
pub const HEADER: u64 = 512;
/// `b"LAIR"` as a little-endian u32.
pub const RING_MAGIC: u32 = 0x5249_414C;
/// Ring layout version.
pub const LAYOUT_VERSION: u32 = 1;
/// Record header bytes.
pub const RECORD_HEADER: u32 = 8;

/// Header word offsets.
pub mod off {
    /// magic
    pub const MAGIC: u64 = 0;
    /// layout version
    pub const VERSION: u64 = 4;
    /// capacity
    pub const CAPACITY: u64 = 8;
    /// head (producer)
    pub const HEAD: u64 = 64;
    /// tail (consumer)
    pub const TAIL: u64 = 128;
    /// consumer_sleeping
    pub const CONSUMER_SLEEPING: u64 = 192;
    /// producer_waiting
    pub const PRODUCER_WAITING: u64 = 256;
    /// closed
    pub const CLOSED: u64 = 320;
}

/// Every header word with its name, for scribbling.
pub const HEADER_WORDS: [(u64, &str); 8] = [
    (off::MAGIC, "magic"),
    (off::VERSION, "version"),
    (off::CAPACITY, "capacity"),
    (off::HEAD, "head"),
    (off::TAIL, "tail"),
    (off::CONSUMER_SLEEPING, "consumer_sleeping"),
    (off::PRODUCER_WAITING, "producer_waiting"),
    (off::CLOSED, "closed"),
];

/// Record flags.
pub const PAD: u32 = 1;
/// More fragments follow.
pub const MORE: u32 = 2;
/// Continues a message.
pub const CONT: u32 = 4;

fn align8(n: u32) -> u32 {
    (n + 7) & !7
}

/// One ring region.
#[derive(Debug)]
pub struct Ring {
    fd: OwnedFd,
    /// Data capacity (power of two).
    pub capacity: u32,
}

impl Ring {
    /// Wraps a ring memfd of `capacity` data bytes.
    pub fn new(fd: OwnedFd, capacity: u32) -> Self {
        Ring { fd, capacity }
    }

    /// A second handle on the same ring (a dup of its fd), for another thread.
    pub fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Ring {
            fd: rustix::io::fcntl_dupfd_cloexec(&self.fd, 0)?,
            capacity: self.capacity,
        })
    }

    /// Reads the u32 at `at` (header or data area, absolute offset).
    pub fn word(&self, at: u64) -> u32 {
        let mut b = [0u8; 4];
        let _ = rustix::io::pread(&self.fd, &mut b, at);
        u32::from_le_bytes(b)
    }

    /// Writes the u32 at `at`.
    pub fn set(&self, at: u64, v: u32) {
        let _ = rustix::io::pwrite(&self.fd, &v.to_le_bytes(), at);
    }

    /// Writes bytes at data position `pos` (taken mod capacity).
    pub fn put(&self, pos: u32, bytes: &[u8]) {
        let at = HEADER + (pos & (self.capacity - 1)) as u64;
        let _ = rustix::io::pwrite(&self.fd, bytes, at);
    }

    /// Reads `len` bytes at data position `pos`.
    pub fn get(&self, pos: u32, len: u32) -> Vec<u8> {
        let mut v = vec![0u8; len as usize];
        let at = HEADER + (pos & (self.capacity - 1)) as u64;
        let _ = rustix::io::pread(&self.fd, &mut v, at);
        v
    }

    /// Writes a fresh header (magic, layout version, capacity).
    pub fn init_header(&self) {
        self.set(off::MAGIC, RING_MAGIC);
        self.set(off::VERSION, LAYOUT_VERSION);
        self.set(off::CAPACITY, self.capacity);
    }

    /// Largest record payload.
    pub fn max_fragment(&self) -> u32 {
        self.capacity / 4 - RECORD_HEADER
    }
}

/// The producing side, following §2.3 (own copy of `head`).
#[derive(Debug)]
pub struct Writer {
    /// The ring.
    pub ring: Ring,
    /// Our copy of `head`.
    pub head: u32,
}

impl Writer {
    /// Starts at the shared `head` (0 on a fresh ring).
    pub fn new(ring: Ring) -> Self {
        let head = ring.word(off::HEAD);
        Writer { ring, head }
    }

    /// Free bytes according to the consumer's `tail` (0 if the tail is impossible).
    pub fn free(&self) -> u32 {
        let used = self.head.wrapping_sub(self.ring.word(off::TAIL));
        self.ring.capacity.saturating_sub(used)
    }

    /// Writes one record (PAD first when it does not fit before the end). False if no room.
    pub fn record(&mut self, payload: &[u8], flags: u32) -> bool {
        let cap = self.ring.capacity;
        let size = RECORD_HEADER + align8(payload.len() as u32);
        let pos = self.head & (cap - 1);
        let contiguous = cap - pos;
        let pad = if size > contiguous { contiguous } else { 0 };
        if pad + size > self.free() {
            return false;
        }
        if pad > 0 {
            let mut h = (pad - RECORD_HEADER).to_le_bytes().to_vec();
            h.extend_from_slice(&PAD.to_le_bytes());
            self.ring.put(pos, &h);
            self.head = self.head.wrapping_add(pad);
        }
        let mut rec = Vec::with_capacity(size as usize);
        rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        rec.extend_from_slice(&flags.to_le_bytes());
        rec.extend_from_slice(payload);
        rec.resize(size as usize, 0);
        self.ring.put(self.head, &rec);
        self.head = self.head.wrapping_add(size);
        true
    }

    /// Writes as many fragments of `msg[*progress..]` as fit. True once all are written.
    pub fn write(&mut self, msg: &[u8], progress: &mut usize) -> bool {
        let max = self.ring.max_fragment() as usize;
        loop {
            let rest = msg.len() - *progress;
            let len = rest.min(max);
            let mut flags = 0;
            if *progress > 0 {
                flags |= CONT;
            }
            if len < rest {
                flags |= MORE;
            }
            if !self.record(&msg[*progress..*progress + len], flags) {
                return false;
            }
            *progress += len;
            if flags & MORE == 0 {
                return true;
            }
        }
    }

    /// Publishes `head`. True when the consumer announced sleep (we cleared it): ring its bell.
    pub fn publish(&mut self) -> bool {
        self.ring.set(off::HEAD, self.head);
        if self.ring.word(off::CONSUMER_SLEEPING) != 0 {
            self.ring.set(off::CONSUMER_SLEEPING, 0);
            return true;
        }
        false
    }
}

/// The consuming side, following §2.4 loosely: enough to read an honest peer's replies and to
/// notice a dishonest one.
#[derive(Debug)]
pub struct Reader {
    /// The ring.
    pub ring: Ring,
    /// Our copy of `tail`.
    pub tail: u32,
    assembling: Option<Vec<u8>>,
}

impl Reader {
    /// Starts at the shared `tail`.
    pub fn new(ring: Ring) -> Self {
        let tail = ring.word(off::TAIL);
        Reader {
            ring,
            tail,
            assembling: None,
        }
    }

    /// The next whole message, `Ok(None)` if none yet, `Err` if the producer wrote nonsense.
    pub fn next(&mut self) -> Result<Option<Vec<u8>>, String> {
        let cap = self.ring.capacity;
        loop {
            let head = self.ring.word(off::HEAD);
            let avail = head.wrapping_sub(self.tail);
            if avail == 0 {
                return Ok(None);
            }
            if avail > cap || !head.is_multiple_of(8) {
                return Err(format!("impossible head {head} (tail {})", self.tail));
            }
            let pos = self.tail & (cap - 1);
            let len = self.ring.word(HEADER + pos as u64);
            let flags = self.ring.word(HEADER + pos as u64 + 4);
            let size = RECORD_HEADER as u64 + align8(len.min(cap)) as u64;
            if flags & !(PAD | MORE | CONT) != 0 || size > (cap - pos) as u64 || size > avail as u64 {
                return Err(format!("bad record len {len} flags {flags} at {pos}"));
            }
            let payload = if flags & PAD != 0 {
                Vec::new()
            } else {
                self.ring.get(self.tail + RECORD_HEADER, len)
            };
            self.tail = self.tail.wrapping_add(size as u32);
            if flags & PAD != 0 {
                continue;
            }
            if flags & MORE != 0 {
                let mut a = self.assembling.take().unwrap_or_default();
                a.extend_from_slice(&payload);
                if a.len() > 64 << 20 {
                    return Err("message over 64 MiB".into());
                }
                self.assembling = Some(a);
                continue;
            }
            return Ok(Some(match self.assembling.take() {
                Some(mut a) => {
                    a.extend_from_slice(&payload);
                    a
                }
                None => payload,
            }));
        }
    }

    /// Releases what was read. True when the producer waits for space (we cleared it): ring.
    pub fn release(&mut self) -> bool {
        self.ring.set(off::TAIL, self.tail);
        if self.ring.word(off::PRODUCER_WAITING) != 0 {
            self.ring.set(off::PRODUCER_WAITING, 0);
            return true;
        }
        false
    }
}
