//! One side of a duplex channel: a ring each way plus the two doorbells.
//!
//! The server creates everything with [`ChannelFds::create`] and passes the four fds to the
//! client; each side then opens an [`Endpoint`] with its [`Side`]. A side waits on *its own*
//! doorbell both for new messages and for space in its outgoing ring, so an event loop watches
//! exactly one fd per connection.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::doorbell::Doorbell;
use crate::ring::{self, Consumer, Next, Producer};
use crate::shm::{self, Mapping};
use crate::{Error, Result};

/// Which end of the channel this is. The server created the fds; the client received them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Writes ring 0, reads ring 1, waits on doorbell 0.
    Server,
    /// Writes ring 1, reads ring 0, waits on doorbell 1.
    Client,
}

/// The four fds of a channel, in wire order: ring server→client, ring client→server,
/// the server's doorbell, the client's doorbell.
#[derive(Debug)]
pub struct ChannelFds(pub [OwnedFd; 4]);

impl ChannelFds {
    /// Creates two sealed, initialised rings of `capacity` bytes and two doorbells.
    pub fn create(capacity: usize) -> Result<Self> {
        ring::check_capacity(capacity)?;
        let size = ring::region_size(capacity);
        let header = ring::header_prefix(capacity)?;
        // The header goes in with pwrite: mapping the ring just to write 12 bytes (map, fault,
        // unmap) was a third of channel creation, which is on the handshake's critical path.
        let make_ring = || -> Result<OwnedFd> {
            let fd = shm::create_sealed_memfd("lapce-ai-ring", size)?;
            let n = rustix::io::pwrite(&fd, &header, 0).map_err(|e| Error::io("pwrite", e))?;
            if n != header.len() {
                return Err(Error::io("pwrite", std::io::Error::other("short write of ring header")));
            }
            Ok(fd)
        };
        let (r0, r1) = (make_ring()?, make_ring()?);
        Ok(ChannelFds([r0, r1, Doorbell::new()?.into_fd(), Doorbell::new()?.into_fd()]))
    }

    /// Rebuilds the set from fds received in wire order.
    pub fn from_vec(fds: Vec<OwnedFd>) -> Result<Self> {
        let fds: [OwnedFd; 4] = fds
            .try_into()
            .map_err(|v: Vec<OwnedFd>| Error::InvalidShm(format!("expected 4 fds, got {}", v.len())))?;
        Ok(ChannelFds(fds))
    }
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

/// One side of an open channel.
#[derive(Debug)]
pub struct Endpoint {
    tx: Producer,
    rx: Consumer,
    own_bell: Doorbell,
    peer_bell: Doorbell,
    capacity: usize,
    stats: EndpointStats,
}

impl Endpoint {
    /// Opens this side of a channel. The ring fds are checked (sealed memfds of the right size),
    /// mapped and closed; the doorbell fds are kept.
    pub fn open(fds: ChannelFds, side: Side, capacity: usize, max_message: usize) -> Result<Self> {
        ring::check_capacity(capacity)?;
        let size = ring::region_size(capacity);
        let [r0, r1, b0, b1] = fds.0;
        for fd in [&r0, &r1] {
            shm::check_sealed_memfd(fd.as_fd(), size)?;
        }
        let (m0, m1) = (Arc::new(Mapping::map(r0.as_fd(), size)?), Arc::new(Mapping::map(r1.as_fd(), size)?));
        let (b0, b1) = (Doorbell::from_fd(b0)?, Doorbell::from_fd(b1)?);
        let (tx, rx, own_bell, peer_bell) = match side {
            Side::Server => (m0, m1, b0, b1),
            Side::Client => (m1, m0, b1, b0),
        };
        Ok(Endpoint {
            tx: Producer::new(tx, capacity)?,
            rx: Consumer::new(rx, capacity, max_message)?,
            own_bell,
            peer_bell,
            capacity,
            stats: EndpointStats::default(),
        })
    }

    /// Ring capacity of each direction.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn notify(&mut self, peer_asleep: bool) -> Result<()> {
        if peer_asleep {
            self.stats.doorbells_rung += 1;
            self.peer_bell.ring()
        } else {
            self.stats.doorbells_suppressed += 1;
            Ok(())
        }
    }

    /// Writes as much of `msg[*progress..]` as fits and publishes it. Returns true when the whole
    /// message is in the ring. Never blocks and never drops: on false, wait for space
    /// ([`Endpoint::prepare_sleep`] with `want_space`) and call again with the same `progress`.
    pub fn write(&mut self, msg: &[u8], progress: &mut usize) -> Result<bool> {
        let before = *progress;
        let done = self.tx.write(msg, progress)?;
        if *progress != before || (done && msg.is_empty()) {
            let asleep = self.tx.publish();
            self.notify(asleep)?;
        }
        if done {
            self.stats.messages_sent += 1;
            self.stats.bytes_sent += msg.len() as u64;
        } else {
            self.stats.ring_full += 1;
        }
        Ok(done)
    }

    /// The next incoming message, or `None` when none is waiting. In-place messages refer to
    /// [`Endpoint::rx_mapping`] and stay valid until [`Endpoint::release`].
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

    /// Hands every message returned by [`Endpoint::next_message`] back to the peer.
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

    /// The outgoing ring's mapping, for runtimes that write records themselves (the Node binding
    /// does, to avoid a native call per message). Such a writer follows `docs/PROTOCOL.md` and
    /// calls [`Endpoint::ring_peer`] when it finds the peer asleep; [`Endpoint::write`] must then
    /// not be used on this endpoint.
    pub fn tx_mapping(&self) -> &Arc<Mapping> {
        self.tx.mapping()
    }

    /// Rings the peer's doorbell (for external writers that found the peer asleep).
    pub fn ring_peer(&mut self) -> Result<()> {
        self.notify(true)
    }

    /// The mapping that in-place messages point into.
    pub fn rx_mapping(&self) -> &Arc<Mapping> {
        self.rx.mapping()
    }

    /// Announces that this side is going to sleep on its doorbell. `want_space`: bytes we wait
    /// to be free in the outgoing ring (0 when not waiting to send). Returns false when there is
    /// already work (a message or the space), in which case do not sleep.
    pub fn prepare_sleep(&mut self, want_space: usize) -> Result<bool> {
        if !self.rx.prepare_sleep() {
            return Ok(false);
        }
        if want_space > 0 && !self.tx.prepare_wait_for_space(want_space)? {
            self.rx.cancel_sleep();
            return Ok(false);
        }
        Ok(true)
    }

    /// Called after waking: drains the doorbell and withdraws the sleep announcement.
    pub fn woke(&mut self) -> Result<()> {
        self.own_bell.drain()?;
        self.rx.cancel_sleep();
        Ok(())
    }

    /// Space a write of `remaining` more bytes needs before it can make progress.
    pub fn space_needed(&self, remaining: usize) -> usize {
        self.tx.space_needed(remaining)
    }

    /// Whether the peer closed its outgoing ring (check after draining it).
    pub fn peer_closed(&self) -> bool {
        self.rx.is_closed()
    }

    /// Whether a message is waiting to be read.
    pub fn has_pending(&self) -> bool {
        self.rx.has_pending()
    }

    /// Closes our outgoing ring so the peer sees end-of-stream, and wakes it if it sleeps.
    pub fn close(&mut self) -> Result<()> {
        let asleep = self.tx.close();
        self.notify(asleep)
    }

    /// The doorbell this side waits on, for event loops.
    pub fn own_doorbell(&self) -> &Doorbell {
        &self.own_bell
    }

    /// Counters so far.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// Sends a whole message, sleeping on the doorbell while the ring is full.
    /// For threads that may block; event loops use [`Endpoint::write`].
    pub fn send_blocking(&mut self, msg: &[u8], timeout: Option<Duration>) -> Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut progress = 0;
        while !self.write(msg, &mut progress)? {
            let needed = self.space_needed(msg.len() - progress);
            if self.prepare_sleep(needed)? {
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                let rung = self.own_bell.wait(left)?;
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
    pub fn recv_blocking(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(next) = self.next_message()? {
                let out = match next {
                    Next::InPlace { offset, len } => {
                        let mut v = vec![0; len];
                        self.rx.mapping().read_bytes(offset, &mut v);
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
                    self.rx.cancel_sleep();
                    return Ok(None);
                }
                self.own_bell.wait(left)?;
                self.woke()?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn dup(fds: &ChannelFds) -> ChannelFds {
        ChannelFds(fds.0.each_ref().map(|fd| rustix::io::dup(fd).unwrap()))
    }

    fn pair(capacity: usize) -> (Endpoint, Endpoint) {
        let fds = ChannelFds::create(capacity).unwrap();
        let client = Endpoint::open(dup(&fds), Side::Client, capacity, 64 << 20).unwrap();
        let server = Endpoint::open(fds, Side::Server, capacity, 64 << 20).unwrap();
        (server, client)
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
        let fds = ChannelFds::create(4096).unwrap();
        // Swap a ring and a doorbell: the opener must notice.
        let [r0, r1, b0, b1] = fds.0;
        let err = Endpoint::open(ChannelFds([b0, r1, r0, b1]), Side::Client, 4096, 1 << 20).unwrap_err();
        assert!(matches!(err, Error::InvalidShm(_)), "{err}");
    }

    #[test]
    fn wrong_capacity_is_refused() {
        let fds = ChannelFds::create(4096).unwrap();
        assert!(Endpoint::open(fds, Side::Client, 8192, 1 << 20).is_err());
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
                if x % 64 == 0 {
                    for _ in 0..(x % 2000) {
                        std::hint::spin_loop();
                    }
                }
                if x % 4096 == 0 {
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
