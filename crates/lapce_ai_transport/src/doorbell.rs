//! Doorbells: one `AF_UNIX` stream socketpair per channel (protocol version 2, `docs/PROTOCOL.md`
//! "Doorbell").
//!
//! A side waits on its own end only after announcing in shared memory that it is going to sleep
//! (see [`crate::ring`]), and the peer rings only when it sees that announcement. While messages
//! flow, no doorbell syscall is made at all.
//!
//! Why a socketpair and not an eventfd: the two ends are two file descriptions, so the peer
//! cannot change the blocking mode of ours (with one shared eventfd it could clear `O_NONBLOCK`
//! and saturate the counter, and our next write blocked in the kernel for ever). Every call here
//! passes `MSG_DONTWAIT` anyway, so the mode of the fd does not matter at all, and `MSG_NOSIGNAL`,
//! so a peer that closed its end costs an `EPIPE`, never a `SIGPIPE`. The peer closing its end
//! (or dying) also shows up here as end-of-file, a direct "peer gone" signal. Socketpairs exist on
//! every Unix, eventfds only on Linux.
//!
//! SYNC(doorbell): ring = `send([1], MSG_DONTWAIT | MSG_NOSIGNAL)`, `EAGAIN` is success (bytes are
//! pending, the sleeper will wake); wait = poll for `POLLIN`; drain = at most [`DRAIN_READS`]
//! non-blocking reads, `0` = the peer hung up.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::fs::FileType;
use rustix::io::Errno;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

use crate::{Error, Result};

/// Most reads one [`Doorbell::drain`] makes. Bounded so a peer that floods its end cannot keep
/// us in a loop; bytes left over only cost one spurious wake-up.
pub const DRAIN_READS: usize = 16;

/// What [`Doorbell::drain`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Bytes read (each ring of the peer sends one; several may merge).
    pub bytes: usize,
    /// The peer closed its end (or the socket is unusable): it will never ring again.
    pub hung_up: bool,
}

/// One end of a doorbell socketpair.
#[derive(Debug)]
pub struct Doorbell {
    fd: OwnedFd,
}

impl Doorbell {
    /// A new connected pair of doorbell ends, not rung: the server keeps one and passes the other.
    pub fn pair() -> Result<(Self, Self)> {
        let (a, b) = crate::control::stream_socketpair()?;
        Ok((Doorbell { fd: a }, Doorbell { fd: b }))
    }

    /// Wraps a doorbell fd received from a peer, after [`Doorbell::check`].
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        Self::check(fd.as_fd())?;
        Ok(Doorbell { fd })
    }

    /// Checks that `fd` is a connected `AF_UNIX` stream socket (not listening), so a peer cannot
    /// hand us an fd whose reads or writes behave otherwise (a pipe, an eventfd, a datagram or
    /// TCP socket, a listener).
    pub fn check(fd: BorrowedFd<'_>) -> Result<()> {
        let st = rustix::fs::fstat(fd).map_err(|e| Error::io("fstat", e))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Socket {
            return Err(Error::InvalidShm("doorbell fd is not a socket".into()));
        }
        let domain = rustix::net::sockopt::socket_domain(fd).map_err(|e| Error::io("getsockopt(SO_DOMAIN)", e))?;
        if domain != AddressFamily::UNIX {
            return Err(Error::InvalidShm(format!("doorbell socket is of family {domain:?}, not AF_UNIX")));
        }
        let kind = rustix::net::sockopt::socket_type(fd).map_err(|e| Error::io("getsockopt(SO_TYPE)", e))?;
        if kind != SocketType::STREAM {
            return Err(Error::InvalidShm(format!("doorbell socket is of type {kind:?}, not SOCK_STREAM")));
        }
        if rustix::net::sockopt::socket_acceptconn(fd).map_err(|e| Error::io("getsockopt(SO_ACCEPTCONN)", e))? {
            return Err(Error::InvalidShm("doorbell socket is a listening socket".into()));
        }
        Ok(())
    }

    /// Wakes whoever waits on the other end. Returns false when the peer is gone (its end is
    /// closed): the caller treats that as the peer having closed. Never blocks.
    pub fn ring(&self) -> Result<bool> {
        loop {
            match rustix::net::send(&self.fd, &[1], SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
                // EAGAIN: the peer's receive buffer is full of earlier rings, so it will wake.
                Ok(_) | Err(Errno::AGAIN) => return Ok(true),
                Err(Errno::INTR) => continue,
                Err(Errno::PIPE | Errno::CONNRESET | Errno::NOTCONN) => return Ok(false),
                Err(e) => return Err(Error::io("doorbell send", e)),
            }
        }
    }

    /// Resets the doorbell: reads what is pending, at most [`DRAIN_READS`] times. Never blocks.
    pub fn drain(&self) -> Result<Drained> {
        let mut buf = [0u8; 64];
        let mut out = Drained::default();
        for _ in 0..DRAIN_READS {
            match rustix::net::recv(&self.fd, &mut buf, RecvFlags::DONTWAIT) {
                Ok((0, _)) => {
                    out.hung_up = true;
                    break;
                }
                Ok((n, _)) => {
                    out.bytes += n;
                    if n < buf.len() {
                        break;
                    }
                }
                Err(Errno::AGAIN) => break,
                Err(Errno::INTR) => continue,
                Err(Errno::CONNRESET | Errno::NOTCONN | Errno::PIPE) => {
                    out.hung_up = true;
                    break;
                }
                Err(e) => return Err(Error::io("doorbell recv", e)),
            }
        }
        Ok(out)
    }

    /// Blocks until rung (or hung up) or until `timeout` passes (`None`: forever). Returns true
    /// when readable. Does not drain: call [`Doorbell::drain`] after.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        let ts = timeout.map(|d| rustix::event::Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: d.subsec_nanos() as i64,
        });
        loop {
            match rustix::event::poll(&mut fds, ts.as_ref()) {
                Ok(n) => return Ok(n > 0),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(Error::io("poll", e)),
            }
        }
    }

    /// Gives up the fd (to pass it to a peer).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// The raw fd, for event loops that watch it (libuv's `uv_poll`).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Doorbell {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::net::SocketFlags;

    #[test]
    fn ring_wakes_wait_and_drain_resets() {
        let (a, b) = Doorbell::pair().unwrap();
        assert!(!b.wait(Some(Duration::from_millis(1))).unwrap());
        assert!(a.ring().unwrap());
        assert!(a.ring().unwrap());
        assert!(b.wait(Some(Duration::from_millis(1))).unwrap());
        assert_eq!(b.drain().unwrap(), Drained { bytes: 2, hung_up: false });
        assert_eq!(b.drain().unwrap(), Drained::default());
    }

    #[test]
    fn ringing_never_blocks_even_when_the_peer_never_drains() {
        let (a, _b) = Doorbell::pair().unwrap();
        // Far more than any socket buffer holds: every ring returns at once.
        for _ in 0..1_000_000 {
            assert!(a.ring().unwrap());
        }
    }

    #[test]
    fn the_peer_clearing_o_nonblock_on_its_end_changes_nothing_here() {
        let (a, b) = Doorbell::pair().unwrap();
        rustix::fs::fcntl_setfl(&b, rustix::fs::OFlags::empty()).unwrap();
        rustix::fs::fcntl_setfl(&a, rustix::fs::OFlags::empty()).unwrap();
        // Even our own end in blocking mode: MSG_DONTWAIT keeps every call non-blocking.
        for _ in 0..1_000_000 {
            assert!(a.ring().unwrap());
        }
        assert_eq!(a.drain().unwrap(), Drained::default());
    }

    #[test]
    fn a_flooded_doorbell_drains_in_bounded_reads() {
        let (a, b) = Doorbell::pair().unwrap();
        for _ in 0..100_000 {
            a.ring().unwrap();
        }
        let d = b.drain().unwrap();
        assert!(d.bytes > 0 && d.bytes <= DRAIN_READS * 64, "{d:?}");
        assert!(!d.hung_up);
    }

    #[test]
    fn a_closed_peer_is_reported_not_raised() {
        let (a, b) = Doorbell::pair().unwrap();
        a.ring().unwrap();
        drop(b);
        assert!(!a.ring().unwrap(), "EPIPE means the peer is gone");
        assert!(a.wait(Some(Duration::from_millis(1))).unwrap(), "hang-up wakes a sleeper");
        assert!(a.drain().unwrap().hung_up);
        assert!(a.drain().unwrap().hung_up, "and stays so");
    }

    #[test]
    fn other_kinds_of_fd_are_refused() {
        let memfd = crate::shm::create_sealed_memfd("x", 4096).unwrap();
        assert!(matches!(Doorbell::from_fd(memfd), Err(Error::InvalidShm(_))));
        let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
        assert!(matches!(Doorbell::from_fd(efd), Err(Error::InvalidShm(_))));
        let (dgram, _) = rustix::net::socketpair(AddressFamily::UNIX, SocketType::DGRAM, SocketFlags::CLOEXEC, None).unwrap();
        assert!(matches!(Doorbell::from_fd(dgram), Err(Error::InvalidShm(_))));
        let tcp = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
        assert!(matches!(Doorbell::from_fd(tcp), Err(Error::InvalidShm(_))));
    }
}
