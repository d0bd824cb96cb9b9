//! `NativeListener` and `NativeControlStream`: the control socket, non-blocking, with the event
//! loop told of readability by a [`Watch`].

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use lapce_ai_transport::{ControlListener, ControlStream};
use napi::bindgen_prelude::{Function, Uint8ArraySlice};
use napi::Env;
use napi_derive::napi;

use crate::error::{closed, invalid, js_err, Result};
use crate::fds::NativeFds;
use crate::wake::{WakeMode, Watch};

/// Credentials of the peer process (`SO_PEERCRED`).
#[napi(object)]
pub struct PeerCredentials {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// A listening control socket.
#[napi]
pub struct NativeListener {
    inner: Option<ControlListener>,
    watch: Watch,
}

#[napi]
impl NativeListener {
    /// Binds `path` owner-only (0600). Replaces a dead server's socket file; refuses a live one
    /// with code `ADDRESS_IN_USE`.
    #[napi(factory)]
    pub fn bind(path: String) -> Result<Self> {
        let l = ControlListener::bind(Path::new(&path)).map_err(js_err)?;
        Ok(NativeListener {
            inner: Some(l),
            watch: Watch::default(),
        })
    }

    /// Accepts one waiting connection, or returns null.
    #[napi]
    pub fn accept(&self) -> Result<Option<NativeControlStream>> {
        let l = self.inner.as_ref().ok_or_else(closed)?;
        Ok(l.accept().map_err(js_err)?.map(NativeControlStream::new))
    }

    /// Calls `callback` from the event loop whenever a connection is waiting.
    #[napi]
    pub fn watch(&mut self, env: Env, callback: Function<'_, (), ()>) -> Result<()> {
        let fd = self.inner.as_ref().ok_or_else(closed)?.raw_fd();
        self.watch.start(&env, WakeMode::Uv, fd, None, callback, "listener")
    }

    /// Stops the watch without closing the listener (to pause accepting, e.g. at the fd limit);
    /// `watch()` again resumes.
    #[napi]
    pub fn unwatch(&mut self) {
        self.watch.stop();
    }

    /// Stops listening; with `unlink`, removes the socket file if it is still ours.
    #[napi]
    pub fn close(&mut self, unlink: bool) {
        self.unwatch();
        if let Some(l) = self.inner.take() {
            if unlink {
                l.unlink();
            }
        }
    }
}

/// A connected control socket.
#[napi]
pub struct NativeControlStream {
    inner: Option<ControlStream>,
    watch: Watch,
    received_fds: Vec<OwnedFd>,
    truncated: bool,
}

impl NativeControlStream {
    fn new(s: ControlStream) -> Self {
        NativeControlStream {
            inner: Some(s),
            watch: Watch::default(),
            received_fds: Vec::new(),
            truncated: false,
        }
    }

    fn stream(&self) -> Result<&ControlStream> {
        self.inner.as_ref().ok_or_else(closed)
    }
}

#[napi]
impl NativeControlStream {
    /// Connects to a listening control socket.
    #[napi(factory)]
    pub fn connect(path: String) -> Result<Self> {
        let s = ControlStream::connect(Path::new(&path)).map_err(js_err)?;
        Ok(NativeControlStream::new(s))
    }

    /// Adopts an inherited fd that is a connected Unix stream socket.
    #[napi(factory)]
    pub fn from_fd(fd: i32) -> Result<Self> {
        if fd < 0 {
            return Err(invalid("negative fd"));
        }
        let owned = crate::raw::adopt_fd(fd);
        Ok(NativeControlStream::new(ControlStream::from_fd(owned).map_err(js_err)?))
    }

    /// The raw fd (for handing to a child process's stdio).
    #[napi(getter)]
    pub fn fd(&self) -> Result<i32> {
        Ok(self.stream()?.raw_fd())
    }

    /// The peer's pid, uid and gid, as the kernel recorded them at connect time.
    #[napi]
    pub fn peer_credentials(&self) -> Result<PeerCredentials> {
        let c = self.stream()?.peer_cred().map_err(js_err)?;
        Ok(PeerCredentials {
            pid: c.pid,
            uid: c.uid,
            gid: c.gid,
        })
    }

    /// Sends bytes, with the fds of `fds` (which keeps them) attached to the first byte.
    /// Returns how many bytes went out (fewer when the socket buffer is full).
    #[napi]
    pub fn send(&self, data: &[u8], fds: Option<&NativeFds>) -> Result<u32> {
        let borrowed: Vec<BorrowedFd<'_>> = fds.map(|f| f.fds.iter().map(|fd| fd.as_fd()).collect()).unwrap_or_default();
        Ok(self.stream()?.send(data, &borrowed).map_err(js_err)? as u32)
    }

    /// Reads into `buf` and returns the byte count: -1 when nothing is waiting, 0 when the peer
    /// closed. Fds that arrived with the bytes wait in `takeFds()`.
    #[napi]
    pub fn recv(&mut self, mut buf: Uint8ArraySlice<'_>) -> Result<i32> {
        let buf = crate::raw::u8_slice_mut(&mut buf);
        let Some(r) = self.stream()?.recv(buf).map_err(js_err)? else {
            return Ok(-1);
        };
        self.received_fds.extend(r.fds);
        self.truncated |= r.truncated;
        Ok(r.bytes as i32)
    }

    /// Whether a `recv()` since the last `takeFds()` came with more fds than the 8 a read makes
    /// room for (the kernel closed the rest): the frame is malformed (REJECT 6), and its bytes
    /// were still returned so it can be answered.
    #[napi(getter)]
    pub fn fds_truncated(&self) -> bool {
        self.truncated
    }

    /// Fds received so far and not yet taken, or null.
    #[napi]
    pub fn take_fds(&mut self) -> Option<NativeFds> {
        self.truncated = false;
        if self.received_fds.is_empty() {
            None
        } else {
            Some(NativeFds::received(std::mem::take(&mut self.received_fds)))
        }
    }

    /// Calls `callback` from the event loop whenever the socket is readable or hung up.
    #[napi]
    pub fn watch(&mut self, env: Env, callback: Function<'_, (), ()>) -> Result<()> {
        let fd = self.stream()?.raw_fd();
        self.watch.start(&env, WakeMode::Uv, fd, None, callback, "control")
    }

    /// Whether the watch keeps the process alive (default true).
    #[napi]
    pub fn set_ref(&self, keep_alive: bool) {
        self.watch.set_ref(keep_alive);
    }

    /// Shuts the connection down (the peer sees EOF) and closes the fd and any fds received and
    /// not taken. Idempotent.
    #[napi]
    pub fn close(&mut self) {
        self.watch.stop();
        self.received_fds.clear();
        if let Some(s) = self.inner.take() {
            s.shutdown();
        }
    }
}

/// A connected pair of control sockets (for tests and for handing one end to a child).
#[napi]
pub fn control_socket_pair() -> Result<Vec<NativeControlStream>> {
    let (a, b) = ControlStream::pair().map_err(js_err)?;
    Ok(vec![NativeControlStream::new(a), NativeControlStream::new(b)])
}
