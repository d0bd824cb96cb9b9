//! Doorbells of both protocol versions (see [`crate::wire::BellKind`]), with the calls an honest
//! peer makes and the tricks a hostile one plays.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags};

use crate::wire::BellKind;

/// Our side of a channel's doorbell.
#[derive(Debug)]
pub struct Bell {
    /// Version 1 or 2 construction.
    pub kind: BellKind,
    /// The fd we ring the peer with (v1: the peer's eventfd; v2: our socket end).
    pub ring_fd: OwnedFd,
    /// The fd we wait on (v1: our own eventfd; v2: `None`, the same socket end).
    pub own_fd: Option<OwnedFd>,
    /// Never touch the doorbell again (after a trick that made it block, or "never read it").
    pub quiet: bool,
}

impl Bell {
    /// The fd to poll for wake-ups.
    pub fn wait_fd(&self) -> BorrowedFd<'_> {
        self.own_fd.as_ref().unwrap_or(&self.ring_fd).as_fd()
    }

    /// Every fd of our side of the doorbell.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        std::iter::once(self.ring_fd.as_fd())
            .chain(self.own_fd.as_ref().map(|f| f.as_fd()))
            .collect()
    }

    /// Poisons the doorbell for the peer: every fd made blocking (for an eventfd that is the
    /// peer's file description too) and saturated (eventfd counter) or flooded (socket buffer);
    /// from now on we never read or ring it. Returns what was done, for the report.
    pub fn poison(&mut self) -> Vec<&'static str> {
        let mut did = Vec::new();
        for fd in self.fds() {
            if make_blocking(fd) {
                did.push("blocking");
            }
            let done = match self.kind {
                BellKind::EventFds => fill_eventfd(fd).then_some("filled"),
                BellKind::SocketPair => (flood_socket(fd) > 0).then_some("flooded"),
            };
            did.extend(done);
        }
        self.quiet = true;
        did
    }

    /// Rings the peer, never blocking on our side (v1 writes may block if the peer cleared
    /// `O_NONBLOCK` on the shared description: we only do that on purpose, elsewhere).
    pub fn ring(&self) {
        if self.quiet {
            return;
        }
        match self.kind {
            BellKind::EventFds => {
                let _ = rustix::io::write(&self.ring_fd, &1u64.to_le_bytes());
            }
            BellKind::SocketPair => {
                let _ = rustix::net::send(&self.ring_fd, &[1], SendFlags::DONTWAIT | SendFlags::NOSIGNAL);
            }
        }
    }

    /// Drains pending rings (bounded).
    pub fn drain(&self) {
        if self.quiet {
            return;
        }
        let mut b = [0u8; 64];
        for _ in 0..16 {
            let r = match self.kind {
                BellKind::EventFds => rustix::io::read(self.wait_fd(), &mut b[..8]),
                BellKind::SocketPair => rustix::net::recv(self.wait_fd(), &mut b, RecvFlags::DONTWAIT).map(|(n, _)| n),
            };
            match r {
                Ok(n) if n > 0 => continue,
                Ok(_) | Err(Errno::AGAIN) | Err(_) => break,
            }
        }
    }
}

/// Clears `O_NONBLOCK` on `fd`'s open file description (shared with the peer for an eventfd).
pub fn make_blocking(fd: BorrowedFd<'_>) -> bool {
    match rustix::fs::fcntl_getfl(fd) {
        Ok(flags) => rustix::fs::fcntl_setfl(fd, flags - rustix::fs::OFlags::NONBLOCK).is_ok(),
        Err(_) => false,
    }
}

/// Saturates an eventfd counter (the next write of 1 by anyone then blocks or fails EAGAIN).
pub fn fill_eventfd(fd: BorrowedFd<'_>) -> bool {
    rustix::io::write(fd, &0xFFFF_FFFF_FFFF_FFFEu64.to_le_bytes()).is_ok()
}

/// Sends bytes into a socket end until its buffer is full. Returns the bytes sent.
pub fn flood_socket(fd: BorrowedFd<'_>) -> usize {
    let buf = [0xAAu8; 65536];
    let mut total = 0;
    for _ in 0..10_000 {
        match rustix::net::send(fd, &buf, SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
            Ok(n) if n > 0 => total += n,
            _ => break,
        }
    }
    total
}
