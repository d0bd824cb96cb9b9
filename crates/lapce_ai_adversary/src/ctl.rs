//! The control socket, from the hostile side: any number of fds on any frame, partial writes,
//! half-closes, and a framed reader that tells a REJECT from an EOF from a timeout.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
    SocketAddrUnix, SocketFlags, SocketType,
};

/// Most fds we make room for when receiving: more than any honest frame carries, so we see
/// (and count) what a server sends rather than having the kernel cut it off.
const RECV_FDS: usize = 32;

/// `<socketPath>.ctl`.
pub fn control_path(socket_path: &str) -> String {
    format!("{socket_path}.ctl")
}

/// Waits until `fd` has one of `events` or `timeout` passes. Returns the events seen.
pub fn wait(fd: BorrowedFd<'_>, events: PollFlags, timeout: Duration) -> PollFlags {
    let mut fds = [PollFd::from_borrowed_fd(fd, events)];
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos() as i64,
    };
    match rustix::event::poll(&mut fds, Some(&ts)) {
        Ok(_) => fds[0].revents(),
        Err(_) => PollFlags::empty(),
    }
}

/// What one read from the control socket produced.
#[derive(Debug)]
pub enum Got {
    /// A whole control frame.
    Frame {
        /// Type byte.
        kind: u8,
        /// Body.
        body: Vec<u8>,
        /// Fds that arrived with the bytes of this frame (and any before it).
        fds: Vec<OwnedFd>,
        /// The kernel dropped fds because our buffer was too small (more than [`RECV_FDS`]).
        truncated: bool,
    },
    /// The peer closed (EOF or reset).
    Eof,
    /// Nothing within the timeout.
    Timeout,
    /// The length prefix is impossible (0 or > 4096).
    BadLength(u32),
}

/// One control connection (either end).
#[derive(Debug)]
pub struct Ctl {
    fd: OwnedFd,
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
    truncated: bool,
}

impl Ctl {
    /// Connects to `<socketPath>.ctl`.
    pub fn connect(socket_path: &str) -> std::io::Result<Self> {
        let addr = SocketAddrUnix::new(control_path(socket_path).as_str())?;
        let fd = rustix::net::socket_with(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
        rustix::net::connect(&fd, &addr)?;
        Ok(Ctl::from_fd(fd))
    }

    /// Wraps a connected socket.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Ctl {
            fd,
            buf: Vec::new(),
            fds: Vec::new(),
            truncated: false,
        }
    }

    /// The socket.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Sends all of `data` with `fds` on its first byte (any number of fds, up to what the
    /// kernel allows: 253). Blocks up to 2 s for room.
    pub fn send(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
        let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(fds.len().max(1)))];
        let mut sent = 0;
        let deadline = Instant::now() + Duration::from_secs(2);
        while sent < data.len() || (data.is_empty() && sent == 0) {
            let mut control = SendAncillaryBuffer::new(&mut space);
            if sent == 0 && !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
                return Err(std::io::Error::other("fds do not fit the control buffer"));
            }
            match rustix::net::sendmsg(
                &self.fd,
                &[IoSlice::new(&data[sent..])],
                &mut control,
                SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
            ) {
                Ok(n) => {
                    sent += n;
                    if data.is_empty() {
                        break;
                    }
                }
                Err(Errno::AGAIN) => {
                    if Instant::now() > deadline {
                        return Err(std::io::Error::from(std::io::ErrorKind::TimedOut));
                    }
                    wait(self.fd(), PollFlags::OUT, Duration::from_millis(50));
                }
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Sends, ignoring errors (the peer may have hung up, which is often the point).
    pub fn send_quiet(&self, data: &[u8]) -> bool {
        self.send(data, &[]).is_ok()
    }

    fn fill(&mut self, timeout: Duration) -> Option<Got> {
        if !wait(self.fd(), PollFlags::IN, timeout).intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
            return Some(Got::Timeout);
        }
        let mut chunk = [0u8; 8192];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(RECV_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let r = rustix::net::recvmsg(
            &self.fd,
            &mut [IoSliceMut::new(&mut chunk)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT,
        );
        match r {
            Ok(m) => {
                for c in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(got) = c {
                        self.fds.extend(got);
                    }
                }
                if m.flags.contains(ReturnFlags::CTRUNC) {
                    self.truncated = true;
                }
                if m.bytes == 0 {
                    return Some(Got::Eof);
                }
                self.buf.extend_from_slice(&chunk[..m.bytes]);
                None
            }
            Err(Errno::AGAIN) | Err(Errno::INTR) => None,
            Err(_) => Some(Got::Eof),
        }
    }

    /// The next control frame, EOF, or a timeout.
    pub fn recv(&mut self, timeout: Duration) -> Got {
        let deadline = Instant::now() + timeout;
        loop {
            if self.buf.len() >= 4 {
                let len = u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                if len == 0 || len as usize > crate::wire::MAX_CONTROL_FRAME {
                    return Got::BadLength(len);
                }
                if self.buf.len() >= 4 + len as usize {
                    let frame: Vec<u8> = self.buf.drain(..4 + len as usize).collect();
                    return Got::Frame {
                        kind: frame[4],
                        body: frame[5..].to_vec(),
                        fds: std::mem::take(&mut self.fds),
                        truncated: std::mem::take(&mut self.truncated),
                    };
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let before = self.buf.len();
            if let Some(g) = self.fill(left) {
                return g;
            }
            if self.buf.len() == before && Instant::now() >= deadline {
                return Got::Timeout;
            }
        }
    }

    /// Waits for the peer to close, discarding frames; true if it did within `timeout`.
    pub fn wait_eof(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Got::Eof => return true,
                Got::Timeout => return false,
                Got::BadLength(_) => self.buf.clear(),
                Got::Frame { .. } => {}
            }
        }
    }

    /// `shutdown(SHUT_WR)`: the peer reads EOF while we can still read.
    pub fn shutdown_write(&self) {
        let _ = rustix::net::shutdown(&self.fd, rustix::net::Shutdown::Write);
    }
}

/// A listening control socket for the hostile server.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    path: String,
}

impl Listener {
    /// Binds `<socketPath>.ctl` (owner-only), replacing a stale file.
    pub fn bind(socket_path: &str) -> std::io::Result<Self> {
        let path = control_path(socket_path);
        if let Some(dir) = Path::new(&path).parent() {
            std::fs::create_dir_all(dir)?;
        }
        let _ = std::fs::remove_file(&path);
        let addr = SocketAddrUnix::new(path.as_str())?;
        let fd = rustix::net::socket_with(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
        rustix::net::bind(&fd, &addr)?;
        rustix::net::listen(&fd, 128)?;
        Ok(Listener { fd, path })
    }

    /// Accepts the next client (blocking).
    pub fn accept(&self) -> std::io::Result<Ctl> {
        loop {
            match rustix::net::accept_with(&self.fd, SocketFlags::CLOEXEC) {
                Ok(fd) => return Ok(Ctl::from_fd(fd)),
                Err(Errno::INTR) | Err(Errno::CONNABORTED) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
