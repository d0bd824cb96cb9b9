//! Doorbells: one `eventfd` per direction.
//!
//! A side waits on its own doorbell only after announcing in shared memory that it is going to
//! sleep (see [`crate::ring`]), and the peer rings only when it sees that announcement. While
//! messages flow, no doorbell syscall is made at all.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use rustix::event::{EventfdFlags, PollFd, PollFlags};
use rustix::io::Errno;

use crate::{Error, Result};

/// A non-blocking eventfd.
#[derive(Debug)]
pub struct Doorbell {
    fd: OwnedFd,
}

impl Doorbell {
    /// A new doorbell, not rung.
    pub fn new() -> Result<Self> {
        let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).map_err(|e| Error::io("eventfd", e))?;
        Ok(Doorbell { fd })
    }

    /// Wraps a doorbell fd received from a peer (checked to be an eventfd by [`Doorbell::check`]).
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        Self::check(fd.as_fd())?;
        Ok(Doorbell { fd })
    }

    /// Checks that `fd` is an eventfd, so a peer cannot make us block on a pipe or a socket.
    pub fn check(fd: BorrowedFd<'_>) -> Result<()> {
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(|e| Error::io("readlink(/proc/self/fd)", e))?;
        if link.as_os_str() != "anon_inode:[eventfd]" {
            return Err(Error::InvalidShm(format!("doorbell fd is {}, not an eventfd", link.display())));
        }
        let flags = rustix::fs::fcntl_getfl(fd).map_err(|e| Error::io("fcntl(F_GETFL)", e))?;
        if !flags.contains(rustix::fs::OFlags::NONBLOCK) {
            // The fd shares its file status with the peer's; we rely on it never blocking.
            rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK).map_err(|e| Error::io("fcntl(F_SETFL)", e))?;
        }
        Ok(())
    }

    /// Wakes whoever waits on this doorbell.
    pub fn ring(&self) -> Result<()> {
        match rustix::io::write(&self.fd, &1u64.to_ne_bytes()) {
            // EAGAIN means the counter is saturated: the sleeper is certainly going to wake.
            Ok(_) | Err(Errno::AGAIN) => Ok(()),
            Err(e) => Err(Error::io("eventfd write", e)),
        }
    }

    /// Resets the doorbell; returns how many times it was rung since the last drain.
    pub fn drain(&self) -> Result<u64> {
        let mut buf = [0u8; 8];
        match rustix::io::read(&self.fd, &mut buf) {
            Ok(_) => Ok(u64::from_ne_bytes(buf)),
            Err(Errno::AGAIN) => Ok(0),
            Err(e) => Err(Error::io("eventfd read", e)),
        }
    }

    /// Blocks until rung or until `timeout` passes (`None`: forever). Returns true when rung.
    /// Does not drain: call [`Doorbell::drain`] after.
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

    #[test]
    fn ring_wakes_wait_and_drain_resets() {
        let bell = Doorbell::new().unwrap();
        assert!(!bell.wait(Some(Duration::from_millis(1))).unwrap());
        bell.ring().unwrap();
        bell.ring().unwrap();
        assert!(bell.wait(Some(Duration::from_millis(1))).unwrap());
        assert_eq!(bell.drain().unwrap(), 2);
        assert_eq!(bell.drain().unwrap(), 0);
    }

    #[test]
    fn non_eventfd_is_refused() {
        let fd = crate::shm::create_sealed_memfd("x", 4096).unwrap();
        assert!(matches!(Doorbell::from_fd(fd), Err(Error::InvalidShm(_))));
    }
}
