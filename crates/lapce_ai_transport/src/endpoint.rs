//! One side of a duplex channel: a ring each way plus one end of the doorbell socketpair.
//!
//! The server creates everything with [`ChannelFds::create`], keeps its own doorbell end and
//! passes the client the three fds of [`NewChannel::wire`]; each side then opens an [`Endpoint`]
//! with its [`Side`]. A side waits on *its own* doorbell end both for new messages and for space
//! in its outgoing ring, so an event loop watches exactly one fd per connection.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
#[cfg(test)]
use std::time::{Duration, Instant};

use crate::doorbell::Doorbell;
use crate::ring::{self, Consumer, ExternalTx, Next, Producer, Record, TxCloser};
use crate::shm::{self, Mapping};
use crate::{Error, Result};

/// Which end of the channel this is. The server created the fds; the client received them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Writes ring 0 (server→client), reads ring 1.
    Server,
    /// Writes ring 1 (client→server), reads ring 0.
    Client,
}

/// The fds one side opens a channel from: both rings in wire order (server→client,
/// client→server) and this side's own end of the doorbell socketpair. On the client these are
/// exactly the three fds of WELCOME, in that order.
#[derive(Debug)]
pub struct ChannelFds {
    /// The server→client ring memfd.
    pub ring_s2c: OwnedFd,
    /// The client→server ring memfd.
    pub ring_c2s: OwnedFd,
    /// This side's end of the doorbell socketpair.
    pub doorbell: OwnedFd,
}

/// Number of fds a WELCOME carries.
pub const WIRE_FDS: usize = 3;

/// A channel just made by the server: the server's own fds, and the client's doorbell end,
/// which goes to the client and must then be closed here (or the server would never see the
/// client's end hang up).
#[derive(Debug)]
pub struct NewChannel {
    /// What the server opens its [`Endpoint`] from.
    pub server: ChannelFds,
    /// The client's end of the doorbell socketpair.
    pub client_doorbell: OwnedFd,
}

impl NewChannel {
    /// The fds to pass in WELCOME, in wire order: `[ring s→c, ring c→s, client's doorbell end]`.
    pub fn wire(&self) -> [BorrowedFd<'_>; WIRE_FDS] {
        [
            self.server.ring_s2c.as_fd(),
            self.server.ring_c2s.as_fd(),
            self.client_doorbell.as_fd(),
        ]
    }

    /// Copies of the client's fds, for a client in this same process (tests, in-process use).
    pub fn client_fds(&self) -> Result<ChannelFds> {
        let dup = |fd: BorrowedFd<'_>| rustix::io::fcntl_dupfd_cloexec(fd, 0).map_err(|e| Error::io("dup", e));
        Ok(ChannelFds {
            ring_s2c: dup(self.server.ring_s2c.as_fd())?,
            ring_c2s: dup(self.server.ring_c2s.as_fd())?,
            doorbell: dup(self.client_doorbell.as_fd())?,
        })
    }
}

impl ChannelFds {
    /// Creates two sealed, initialised rings of `capacity` bytes and a doorbell socketpair.
    pub fn create(capacity: usize) -> Result<NewChannel> {
        let (ring_s2c, ring_c2s, own, theirs) = create_parts(capacity)?;
        Ok(NewChannel {
            server: ChannelFds {
                ring_s2c,
                ring_c2s,
                doorbell: own.into_fd(),
            },
            client_doorbell: theirs.into_fd(),
        })
    }

    /// Rebuilds the set from the fds of a WELCOME, in wire order (exactly [`WIRE_FDS`]).
    pub fn from_vec(fds: Vec<OwnedFd>) -> Result<Self> {
        let [ring_s2c, ring_c2s, doorbell]: [OwnedFd; WIRE_FDS] = fds
            .try_into()
            .map_err(|v: Vec<OwnedFd>| Error::InvalidShm(format!("expected {WIRE_FDS} fds, got {}", v.len())))?;
        Ok(ChannelFds {
            ring_s2c,
            ring_c2s,
            doorbell,
        })
    }
}

/// Two sealed, initialised rings of `capacity` bytes and both ends of a doorbell socketpair.
fn create_parts(capacity: usize) -> Result<(OwnedFd, OwnedFd, Doorbell, Doorbell)> {
    ring::check_capacity(capacity)?;
    let size = ring::region_size(capacity);
    let header = ring::header_prefix(capacity)?;
    // The header goes in with pwrite: for a set that is not opened here (`ChannelFds::create`),
    // mapping the ring just to write 12 bytes (map, fault, unmap) was a third of its creation.
    // `create_server` maps right after and could store the header instead, saving a pwrite per
    // ring; one way of initialising rings is worth more than that, off the handshake's path.
    let make_ring = || -> Result<OwnedFd> {
        let fd = shm::create_sealed_memfd("lapce-ai-ring", size)?;
        let n = rustix::io::pwrite(&fd, &header, 0).map_err(|e| Error::io("pwrite", e))?;
        if n != header.len() {
            return Err(Error::io("pwrite", std::io::Error::other("short write of ring header")));
        }
        Ok(fd)
    };
    let (r0, r1) = (make_ring()?, make_ring()?);
    let (own, theirs) = Doorbell::pair()?;
    Ok((r0, r1, own, theirs))
}

/// Counters kept by an endpoint. Monotonic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Messages fully written into the outgoing ring.
    pub messages_sent: u64,
    /// Payload bytes written.
    pub bytes_sent: u64,
    /// Messages read from the incoming ring.
    pub messages_received: u64,
    /// Payload bytes read.
    pub bytes_received: u64,
    /// Doorbell writes made because the peer was asleep.
    pub doorbells_rung: u64,
    /// Publishes and releases that needed no doorbell because the peer was awake.
    pub doorbells_suppressed: u64,
    /// Writes that found the outgoing ring too full to finish.
    pub ring_full: u64,
}

/// One side of an open channel: the producer of the outgoing ring and a [`Receiver`] for the
/// rest. Runtimes that write the outgoing ring themselves split it with
/// [`Endpoint::into_external_tx`]. Everything of [`Receiver`] is available here too (`Deref`).
#[derive(Debug)]
pub struct Endpoint {
    tx: Producer,
    rx: Receiver,
}

/// Everything of an endpoint but the producer: the incoming ring, the doorbell, the `closed`
/// word of the outgoing ring, and the counters. Once the outgoing ring is written by someone
/// else (see [`Endpoint::into_external_tx`]), this is all that is left on the Rust side, so no
/// write or space computation can use a stale `head`.
#[derive(Debug)]
pub struct Receiver {
    rx: Consumer,
    tx_closer: TxCloser,
    bell: Doorbell,
    /// The doorbell showed that the peer closed its end (or died).
    peer_gone: bool,
    capacity: usize,
    stats: EndpointStats,
}

impl Endpoint {
    /// Opens this side of a channel. The fds are checked before anything is mapped (each ring a
    /// memfd sealed SHRINK|GROW|SEAL and not against writing, of the right size, the two rings
    /// two different files; the doorbell an `AF_UNIX` stream socket), the rings mapped and their
    /// fds closed; the doorbell fd is kept.
    pub fn open(fds: ChannelFds, side: Side, capacity: usize, max_message: usize) -> Result<Self> {
        ring::check_capacity(capacity)?;
        let size = ring::region_size(capacity);
        let ChannelFds {
            ring_s2c,
            ring_c2s,
            doorbell,
        } = fds;
        let id0 = shm::check_sealed_memfd(ring_s2c.as_fd(), size)?;
        let id1 = shm::check_sealed_memfd(ring_c2s.as_fd(), size)?;
        if id0 == id1 {
            // One memfd for both directions would have each side read its own records.
            return Err(Error::InvalidShm("both rings are the same memfd".into()));
        }
        let bell = Doorbell::from_fd(doorbell)?;
        Self::assemble(ring_s2c.as_fd(), ring_c2s.as_fd(), bell, side, capacity, max_message)
    }

    /// Makes a new channel and opens its server side at once, on rings and a socketpair this
    /// process has just created (so none of [`Endpoint::open`]'s checks apply: no peer has
    /// touched them). Returns the endpoint and the client's set, in WELCOME's wire order.
    ///
    /// This is all of a channel's setup a server can do before it knows its client: the
    /// mappings and the header pages they fault in. A server that keeps a few of these ready
    /// has nothing to map when its client's READY arrives. Until the client's set is sent and
    /// dropped, the endpoint cannot see its client hang up (this process holds both ends).
    pub fn create_server(capacity: usize, max_message: usize) -> Result<(Endpoint, ChannelFds)> {
        let (ring_s2c, ring_c2s, own, theirs) = create_parts(capacity)?;
        let ep = Self::assemble(ring_s2c.as_fd(), ring_c2s.as_fd(), own, Side::Server, capacity, max_message)?;
        let client = ChannelFds {
            ring_s2c,
            ring_c2s,
            doorbell: theirs.into_fd(),
        };
        Ok((ep, client))
    }

    /// Maps both rings (of [`ring::region_size`] for `capacity`) and builds the endpoint of `side`.
    fn assemble(
        ring_s2c: BorrowedFd<'_>,
        ring_c2s: BorrowedFd<'_>,
        bell: Doorbell,
        side: Side,
        capacity: usize,
        max_message: usize,
    ) -> Result<Self> {
        let size = ring::region_size(capacity);
        let (m0, m1) = (Arc::new(Mapping::map(ring_s2c, size)?), Arc::new(Mapping::map(ring_c2s, size)?));
        let (tx, rx) = match side {
            Side::Server => (m0, m1),
            Side::Client => (m1, m0),
        };
        let tx = Producer::new(tx, capacity)?;
        Ok(Endpoint {
            rx: Receiver {
                rx: Consumer::new(rx, capacity, max_message)?,
                tx_closer: tx.closer(),
                bell,
                peer_gone: false,
                capacity,
                stats: EndpointStats::default(),
            },
            tx,
        })
    }

    /// Hands the outgoing ring to an external writer (the Node binding's JS writer, which
    /// writes records without a native call per message and rings through
    /// [`Receiver::ring_peer`]). The producer is gone afterwards: writing and computing space
    /// are the external writer's alone.
    pub fn into_external_tx(self) -> (ExternalTx, Receiver) {
        (self.tx.into_external(), self.rx)
    }

    /// Writes as much of `msg[*progress..]` as fits and publishes it. Returns true when the whole
    /// message is in the ring. Never blocks and never drops: on false, wait for space
    /// ([`Endpoint::prepare_sleep`] with `want_space`) and call again with the same `progress`.
    pub fn write(&mut self, msg: &[u8], progress: &mut usize) -> Result<bool> {
        let before = *progress;
        let done = self.tx.write(msg, progress)?;
        if *progress != before || (done && msg.is_empty()) {
            let asleep = self.tx.publish();
            self.rx.notify(asleep)?;
        }
        let stats = &mut self.rx.stats;
        if done {
            stats.messages_sent += 1;
            stats.bytes_sent += msg.len() as u64;
        } else {
            stats.ring_full += 1;
        }
        Ok(done)
    }

    /// Announces that this side is going to sleep on its doorbell. `want_space`: bytes we wait
    /// to be free in the outgoing ring (0 when not waiting to send). Returns false when there is
    /// already work (a message or the space), in which case do not sleep.
    pub fn prepare_sleep(&mut self, want_space: usize) -> Result<bool> {
        if !self.rx.prepare_sleep() {
            return Ok(false);
        }
        if want_space > 0 && !self.tx.prepare_wait_for_space(want_space)? {
            self.rx.rx.cancel_sleep();
            return Ok(false);
        }
        Ok(true)
    }

    /// Space a write of `remaining` more bytes needs before it can make progress.
    pub fn space_needed(&self, remaining: usize) -> usize {
        self.tx.space_needed(remaining)
    }
}

impl std::ops::Deref for Endpoint {
    type Target = Receiver;
    fn deref(&self) -> &Receiver {
        &self.rx
    }
}

impl std::ops::DerefMut for Endpoint {
    fn deref_mut(&mut self) -> &mut Receiver {
        &mut self.rx
    }
}

impl Receiver {
    /// Charges this endpoint's reassembly memory to `budget`, shared with other endpoints (one
    /// per process or per server). Call before the first message.
    pub fn set_reassembly_budget(&mut self, budget: crate::Budget) -> Result<()> {
        self.rx.set_budget(budget)
    }

    /// Sets the largest incoming message accepted from now on (see [`Endpoint::open`]). A
    /// fragmented message already under way is held to the new limit at its next fragment.
    pub fn set_max_message(&mut self, max_message: usize) {
        self.rx.set_max_message(max_message);
    }

    /// Ring capacity of each direction.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn notify(&mut self, peer_asleep: bool) -> Result<()> {
        if peer_asleep {
            self.stats.doorbells_rung += 1;
            // A peer that closed its end is gone: remembered, reported by `peer_closed`, never
            // an error of the call that happened to ring.
            if !self.bell.ring()? {
                self.peer_gone = true;
            }
        } else {
            self.stats.doorbells_suppressed += 1;
        }
        Ok(())
    }

    /// The next incoming message, or `None` when none is waiting. In-place messages refer to
    /// [`Receiver::rx_mapping`] and stay valid until [`Receiver::release`].
    pub fn next_message(&mut self) -> Result<Option<Next>> {
        let next = self.rx.next_message()?;
        if let Some(n) = &next {
            self.stats.messages_received += 1;
            self.stats.bytes_received += match n {
                Next::InPlace { len, .. } => *len,
                Next::Assembled(v) => v.len(),
            } as u64;
        }
        Ok(next)
    }

    /// The next incoming record, for a reader that reassembles fragments itself (see
    /// [`Consumer::next_record`]). Records refer to [`Receiver::rx_mapping`] and stay valid
    /// until [`Receiver::release`]. A receiver reads with this or with `next_message`, not both.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        let next = self.rx.next_record()?;
        match next {
            Some(Record::Whole { len, .. }) => {
                self.stats.messages_received += 1;
                self.stats.bytes_received += len as u64;
            }
            Some(Record::Fragment { len, last, .. }) => {
                self.stats.messages_received += u64::from(last);
                self.stats.bytes_received += len as u64;
            }
            None => {}
        }
        Ok(next)
    }

    /// Hands every message returned by [`Receiver::next_message`] back to the peer.
    pub fn release(&mut self) -> Result<()> {
        let waiting = self.rx.release();
        if waiting {
            self.notify(true)?;
        }
        Ok(())
    }

    /// Hands back an assembled message's buffer for reuse (see [`Consumer::recycle`]).
    pub fn recycle(&mut self, buf: Vec<u8>) {
        self.rx.recycle(buf);
    }

    /// Rings the peer's doorbell (for external writers that found the peer asleep).
    pub fn ring_peer(&mut self) -> Result<()> {
        self.notify(true)
    }

    /// The mapping that in-place messages point into.
    pub fn rx_mapping(&self) -> &Arc<Mapping> {
        self.rx.mapping()
    }

    /// Announces that this side is going to sleep on its doorbell for incoming messages (an
    /// external writer announces its own wait for space). Returns false when there is already
    /// work, or the peer is gone: then do not sleep.
    pub fn prepare_sleep(&mut self) -> bool {
        !self.peer_gone && self.rx.prepare_sleep()
    }

    /// Called after waking: drains the doorbell (bounded) and withdraws the sleep announcement.
    /// Returns true once the peer has hung up its doorbell end: it is gone, and the caller
    /// finishes reading what is in the ring and closes (see [`Receiver::peer_closed`]).
    pub fn woke(&mut self) -> Result<bool> {
        if self.bell.drain()?.hung_up {
            self.peer_gone = true;
        }
        self.rx.cancel_sleep();
        Ok(self.peer_gone)
    }

    /// Whether the peer closed its outgoing ring or hung up its doorbell (check after draining
    /// the ring: records published before closing are still readable).
    pub fn peer_closed(&self) -> bool {
        self.peer_gone || self.rx.is_closed()
    }

    /// Whether a message is waiting to be read.
    pub fn has_pending(&self) -> bool {
        self.rx.has_pending()
    }

    /// Closes our outgoing ring (the `closed` word) so the peer sees end-of-stream, and wakes it
    /// if it sleeps.
    pub fn close(&mut self) -> Result<()> {
        let asleep = self.tx_closer.close();
        self.notify(asleep)
    }

    /// The doorbell this side waits on, for event loops.
    pub fn own_doorbell(&self) -> &Doorbell {
        &self.bell
    }

    /// Counters so far.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }
}

/// Blocking helpers for threads (the tests; the client crate has its own loop).
#[cfg(test)]
impl Endpoint {
    /// Sends a whole message, sleeping on the doorbell while the ring is full.
    pub(crate) fn send_blocking(&mut self, msg: &[u8], timeout: Option<Duration>) -> Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut progress = 0;
        while !self.write(msg, &mut progress)? {
            let needed = self.space_needed(msg.len() - progress);
            if self.prepare_sleep(needed)? {
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                let rung = self.own_doorbell().wait(left)?;
                self.woke()?;
                if !rung && left.is_some_and(|l| l.is_zero()) {
                    return Err(Error::io("send", std::io::Error::from(std::io::ErrorKind::TimedOut)));
                }
            }
        }
        Ok(())
    }

    /// Receives one message as an owned vector, sleeping on the doorbell while none is waiting.
    /// Returns `Ok(None)` on timeout and [`Error::Closed`] once the peer closed and all is read.
    pub(crate) fn recv_blocking(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(next) = self.next_message()? {
                let out = match next {
                    Next::InPlace { offset, len } => {
                        let mut v = vec![0; len];
                        self.rx_mapping().read_bytes(offset, &mut v);
                        v
                    }
                    Next::Assembled(v) => v,
                };
                self.release()?;
                return Ok(Some(out));
            }
            // Fragments of a message larger than the ring were copied out: give their space back
            // before sleeping, or a producer waiting for it would wait for ever.
            self.release()?;
            if self.peer_closed() && !self.has_pending() {
                return Err(Error::Closed);
            }
            if self.prepare_sleep(0)? {
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                if left.is_some_and(|l| l.is_zero()) {
                    self.rx.rx.cancel_sleep();
                    return Ok(None);
                }
                self.own_doorbell().wait(left)?;
                self.woke()?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn pair(capacity: usize) -> (Endpoint, Endpoint) {
        let new = ChannelFds::create(capacity).unwrap();
        let client = Endpoint::open(new.client_fds().unwrap(), Side::Client, capacity, 64 << 20).unwrap();
        let server = Endpoint::open(new.server, Side::Server, capacity, 64 << 20).unwrap();
        (server, client)
    }

    fn dup(fd: &OwnedFd) -> OwnedFd {
        rustix::io::dup(fd).unwrap()
    }

    #[test]
    fn duplex_messages_flow_both_ways() {
        let (mut s, mut c) = pair(4096);
        s.send_blocking(b"to client", None).unwrap();
        c.send_blocking(b"to server", None).unwrap();
        assert_eq!(c.recv_blocking(None).unwrap().unwrap(), b"to client");
        assert_eq!(s.recv_blocking(None).unwrap().unwrap(), b"to server");
    }

    #[test]
    fn wrong_fd_count_and_kind_are_refused() {
        assert!(ChannelFds::from_vec(vec![]).is_err());
        let new = ChannelFds::create(4096).unwrap();
        let c = new.client_fds().unwrap();
        assert!(ChannelFds::from_vec(vec![dup(&c.ring_s2c), dup(&c.ring_c2s), dup(&c.doorbell), dup(&c.doorbell)]).is_err());
        // A ring where the doorbell goes, and the other way round: the opener must notice.
        let swapped = ChannelFds {
            ring_s2c: dup(&c.doorbell),
            ring_c2s: dup(&c.ring_c2s),
            doorbell: dup(&c.ring_s2c),
        };
        let err = Endpoint::open(swapped, Side::Client, 4096, 1 << 20).unwrap_err();
        assert!(matches!(err, Error::InvalidShm(_)), "{err}");
        // The same memfd for both rings.
        let same = ChannelFds {
            ring_s2c: dup(&c.ring_s2c),
            ring_c2s: dup(&c.ring_s2c),
            doorbell: dup(&c.doorbell),
        };
        let err = Endpoint::open(same, Side::Client, 4096, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("same memfd"), "{err}");
        // An eventfd as the doorbell (protocol v1).
        let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
        let v1 = ChannelFds {
            ring_s2c: dup(&c.ring_s2c),
            ring_c2s: dup(&c.ring_c2s),
            doorbell: efd,
        };
        assert!(matches!(Endpoint::open(v1, Side::Client, 4096, 1 << 20), Err(Error::InvalidShm(_))));
        Endpoint::open(c, Side::Client, 4096, 1 << 20).unwrap();
    }

    #[test]
    fn a_peer_that_hangs_up_its_doorbell_is_seen_as_closed() {
        let (mut s, c) = pair(4096);
        s.send_blocking(b"last words", None).unwrap();
        drop(c);
        assert!(s.own_doorbell().wait(Some(Duration::from_secs(5))).unwrap());
        assert!(s.woke().unwrap(), "EOF on the doorbell");
        assert!(s.peer_closed());
        assert!(!s.prepare_sleep(0).unwrap(), "never sleep on a dead peer");
        // Writing to a gone peer's ring is harmless; ringing its doorbell is not an error.
        let mut p = 0;
        assert!(s.write(b"x", &mut p).unwrap());
        assert!(matches!(s.recv_blocking(Some(Duration::from_secs(1))), Err(Error::Closed)));
    }

    #[test]
    fn ringing_a_client_that_closed_its_doorbell_is_not_an_error() {
        let (mut s, mut c) = pair(4096);
        assert!(c.prepare_sleep(0).unwrap());
        let Endpoint {
            rx: Receiver { bell, .. }, ..
        } = c;
        drop(bell);
        let mut p = 0;
        // The client announced sleep, so this write rings, and finds the end closed.
        assert!(s.write(b"x", &mut p).unwrap());
        assert!(s.peer_closed());
    }

    #[test]
    fn a_server_made_by_create_server_talks_to_a_client_that_checks_what_it_got() {
        let (mut s, wire) = Endpoint::create_server(4096, 64).unwrap();
        // The client's set passes every check a client makes on received fds.
        let mut c = Endpoint::open(wire, Side::Client, 4096, 1 << 20).unwrap();
        s.send_blocking(b"to client", None).unwrap();
        c.send_blocking(b"to server", None).unwrap();
        assert_eq!(c.recv_blocking(None).unwrap().unwrap(), b"to client");
        assert_eq!(s.recv_blocking(None).unwrap().unwrap(), b"to server");
        // The limit given at creation holds, and a later one replaces it.
        c.send_blocking(&[7; 65], None).unwrap();
        assert!(matches!(s.recv_blocking(None), Err(Error::MessageTooLarge { .. })));
        let (mut s, wire) = Endpoint::create_server(4096, 64).unwrap();
        let mut c = Endpoint::open(wire, Side::Client, 4096, 1 << 20).unwrap();
        s.set_max_message(128);
        c.send_blocking(&[7; 100], None).unwrap();
        assert_eq!(s.recv_blocking(None).unwrap().unwrap(), [7; 100]);
        // The client hanging up is seen once its set is gone from this process.
        drop(c);
        assert!(s.own_doorbell().wait(Some(Duration::from_secs(5))).unwrap());
        assert!(s.woke().unwrap());
        assert!(s.peer_closed());
    }

    #[test]
    fn wrong_capacity_is_refused() {
        let fds = ChannelFds::create(4096).unwrap();
        assert!(Endpoint::open(fds.server, Side::Client, 8192, 1 << 20).is_err());
    }

    /// Lost-wake-up race: the consumer sleeps as often as it can, the producer sends in bursts of
    /// random size with random pauses. A lost wake-up would hang `recv_blocking`; the timeout
    /// turns a hang into a failure.
    #[test]
    fn no_wake_up_is_lost_under_races() {
        const N: u32 = 200_000;
        let (mut s, mut c) = pair(4096);
        let producer = thread::spawn(move || {
            let mut x: u32 = 12345;
            for i in 0..N {
                s.send_blocking(&i.to_le_bytes(), Some(Duration::from_secs(10))).unwrap();
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if x.is_multiple_of(64) {
                    for _ in 0..(x % 2000) {
                        std::hint::spin_loop();
                    }
                }
                if x.is_multiple_of(4096) {
                    thread::yield_now();
                }
            }
            s.close().unwrap();
            s.stats()
        });
        for i in 0..N {
            let msg = c
                .recv_blocking(Some(Duration::from_secs(10)))
                .unwrap()
                .expect("lost wake-up: timed out");
            assert_eq!(u32::from_le_bytes(msg.try_into().unwrap()), i);
        }
        assert!(matches!(c.recv_blocking(Some(Duration::from_secs(10))), Err(Error::Closed)));
        let stats = producer.join().unwrap();
        assert_eq!(stats.messages_sent, N as u64);
        assert!(stats.doorbells_rung > 0, "the consumer slept sometimes");
        assert!(stats.doorbells_suppressed > 0, "and was awake other times");
    }

    /// The same race on the space side: a tiny ring, a slow consumer, a producer that keeps
    /// waiting for space.
    #[test]
    fn no_space_wake_up_is_lost_under_races() {
        const N: usize = 20_000;
        let (mut s, mut c) = pair(4096);
        let producer = thread::spawn(move || {
            for i in 0..N {
                let msg = vec![(i % 251) as u8; 1 + (i * 7919) % 3000];
                s.send_blocking(&msg, Some(Duration::from_secs(10))).unwrap();
            }
            s.stats()
        });
        for i in 0..N {
            let msg = c.recv_blocking(Some(Duration::from_secs(10))).unwrap().expect("timed out");
            assert_eq!(msg.len(), 1 + (i * 7919) % 3000);
            assert!(msg.iter().all(|&b| b == (i % 251) as u8));
        }
        let stats = producer.join().unwrap();
        assert!(stats.ring_full > 0, "the ring must have filled up");
    }

    #[test]
    fn large_messages_cross_a_small_ring_between_threads() {
        let (mut s, mut c) = pair(4096);
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let expect = big.clone();
        let t = thread::spawn(move || s.send_blocking(&big, Some(Duration::from_secs(10))).unwrap());
        let got = c.recv_blocking(Some(Duration::from_secs(10))).unwrap().unwrap();
        t.join().unwrap();
        assert_eq!(got, expect);
    }
}
