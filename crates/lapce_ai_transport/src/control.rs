//! The control socket: a Unix stream socket that carries the handshake, the ring and doorbell
//! fds (`SCM_RIGHTS`) and, by staying open, tells each side when the other dies.
//!
//! All sockets here are non-blocking; an event loop waits for readability and calls
//! [`ControlListener::accept`] or [`ControlStream::recv`] until they report nothing more.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, Statx, StatxFlags};
use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
    SocketAddrUnix, SocketFlags, SocketType,
};

use crate::{Error, Result};

/// Most fds accepted in one message; a peer sending more gets the message refused (the kernel
/// closes the excess, so nothing leaks).
pub const MAX_FDS: usize = 8;

/// Credentials of the process at the other end, from `SO_PEERCRED` (taken by the kernel at
/// `connect()`, so the peer cannot forge them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCred {
    /// Process id.
    pub pid: i32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// The listening control socket of a server.
#[derive(Debug)]
pub struct ControlListener {
    fd: OwnedFd,
    path: PathBuf,
    /// Which file we created, so we never unlink a successor's.
    identity: FileId,
}

/// A connected non-blocking, close-on-exec `AF_UNIX` stream socketpair (control pairs and
/// doorbells).
pub(crate) fn stream_socketpair() -> Result<(OwnedFd, OwnedFd)> {
    rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(|e| Error::io("socketpair", e))
}

fn unix_socket() -> Result<OwnedFd> {
    rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(|e| Error::io("socket", e))
}

/// A file's identity: device and inode, and its birth time where the file system keeps one.
/// The inode alone is not enough: ext4 gives a file made right after another was deleted the
/// deleted one's inode number, so a successor's socket would pass for ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    born: Option<(i64, u32)>,
}

impl FileId {
    fn of(st: &Statx) -> Self {
        FileId {
            dev: rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor),
            ino: st.stx_ino,
            born: (st.stx_mask & StatxFlags::BTIME.bits() != 0).then_some((st.stx_btime.tv_sec, st.stx_btime.tv_nsec)),
        }
    }
}

/// `lstat` with what [`FileId`] needs.
fn statx_no_follow(path: &Path) -> rustix::io::Result<Statx> {
    rustix::fs::statx(
        rustix::fs::CWD,
        path,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::TYPE | StatxFlags::INO | StatxFlags::BTIME,
    )
}

fn identity(path: &Path) -> Option<FileId> {
    statx_no_follow(path).ok().map(|st| FileId::of(&st))
}

/// The socket address of `path`; a path too long for `sun_path` is refused, never truncated.
fn unix_addr(path: &Path) -> Result<SocketAddrUnix> {
    SocketAddrUnix::new(path).map_err(|e| Error::InvalidArgument(format!("socket path {}: {e}", path.display())))
}

/// A socket listening at `path`, or the error that kept it from `path` (`EEXIST` or
/// `EADDRINUSE`: something is there).
///
/// `bind()` creates the file and `listen()` follows, so a socket bound at `path` itself would
/// exist for a moment with nobody listening, and a client connecting then gets ECONNREFUSED,
/// which means "no server" (a CI run caught a client there while the server was descheduled).
/// So the socket is bound and listening under a private name in the same directory first and
/// then hard-linked into place: `link()` makes `path` appear already listening, and never
/// replaces what is there. Where that cannot be done (the private name would not fit in
/// `sun_path`, or the file system refuses hard links) it binds at `path` directly.
fn bind_and_place(path: &Path) -> Result<std::result::Result<OwnedFd, Errno>> {
    // A few names, in case one is taken (a crashed server's leftover with a reused pid).
    for _ in 0..4 {
        let Some(tmp) = staging_name(path) else { break };
        let fd = match bind_listening(&tmp)? {
            Ok(fd) => fd,
            Err(Errno::ADDRINUSE) => continue,
            Err(_) => break,
        };
        let linked = rustix::fs::link(&tmp, path);
        // The socket stays reachable through `path` (the same inode), or it is dropped below.
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => return Ok(Ok(fd)),
            Err(e @ Errno::EXIST) => return Ok(Err(e)),
            // EPERM, EOPNOTSUPP...: this file system does not link sockets.
            Err(_) => break,
        }
    }
    bind_listening(path)
}

/// Whether a server listens on the socket file at `path`. Only a refusal (or the file gone)
/// says no: an error that says nothing about the server (EMFILE making our socket, EACCES) must
/// not get a live server's file removed, so it is returned instead.
fn someone_listens(path: &Path) -> Result<bool> {
    let addr = unix_addr(path)?;
    let fd = unix_socket()?;
    loop {
        match rustix::net::connect(&fd, &addr) {
            // A full accept queue (EAGAIN) also means someone listens.
            Ok(()) | Err(Errno::AGAIN) => return Ok(true),
            Err(Errno::INTR) => {}
            Err(Errno::CONNREFUSED | Errno::NOENT) => return Ok(false),
            Err(e) => return Err(Error::io("connect", e)),
        }
    }
}

/// Removes the stale socket file at `path` whose identity was `probed`, but not a successor's.
///
/// Another server starting at the same moment may have replaced the stale file with its live
/// socket since we probed it; removing by name would take that one away (it would listen on
/// nothing reachable). So the file is moved aside first (`rename` is atomic) and only deleted if
/// it is the one probed; a successor's goes back, and our retry then finds it live.
fn remove_stale(path: &Path, probed: FileId) {
    let Some(aside) = staging_name(path) else {
        let _ = std::fs::remove_file(path);
        return;
    };
    match rustix::fs::rename(path, &aside) {
        Ok(()) => {}
        // Gone already: whoever removed it, there is nothing of ours to remove.
        Err(Errno::NOENT) => return,
        Err(_) => {
            let _ = std::fs::remove_file(path);
            return;
        }
    }
    if identity(&aside) != Some(probed) {
        // Someone else's (link, not rename: never over whatever took the path meanwhile).
        let _ = rustix::fs::link(&aside, path);
    }
    let _ = std::fs::remove_file(&aside);
}

/// A private name next to `path` for [`bind_and_place`], if it fits in `sun_path`.
fn staging_name(path: &Path) -> Option<PathBuf> {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.parent()?.join(format!(".{}.{n}.bind", std::process::id()));
    SocketAddrUnix::new(&tmp).ok().map(|_| tmp)
}

/// A new socket bound and listening at `path`, or the bind error.
fn bind_listening(path: &Path) -> Result<std::result::Result<OwnedFd, Errno>> {
    let addr = unix_addr(path)?;
    let fd = unix_socket()?;
    // The umask is per process, so for the microseconds of bind() a file created by another
    // thread would also get 0600; bind() creating the file with the right mode is what closes
    // the chmod window, and is worth that.
    let old = rustix::process::umask(Mode::from_bits_truncate(0o177));
    let bound = rustix::net::bind(&fd, &addr);
    rustix::process::umask(old);
    if let Err(e) = bound {
        return Ok(Err(e));
    }
    #[cfg(test)]
    std::thread::sleep(tests::BIND_TO_LISTEN.get());
    if let Err(e) = rustix::net::listen(&fd, 4096) {
        // We made the file: it must not stay behind, unreachable, under either name.
        let _ = std::fs::remove_file(path);
        return Err(Error::io("listen", e));
    }
    Ok(Ok(fd))
}

impl ControlListener {
    /// Binds and listens on `path`, owner-only (mode 0600) from the moment the file exists, and
    /// listening from that moment too.
    ///
    /// A socket file left by a dead server (nobody accepts on it) is replaced. A live server is
    /// never displaced: that is [`Error::AddressInUse`]. A path that exists and is not a socket
    /// is never removed.
    pub fn bind(path: &Path) -> Result<Self> {
        unix_addr(path)?;
        let mut replaced_stale = false;
        loop {
            match bind_and_place(path)? {
                Ok(fd) => {
                    let identity = identity(path).ok_or_else(|| Error::io("stat", std::io::Error::other("socket file vanished")))?;
                    return Ok(ControlListener {
                        fd,
                        path: path.to_owned(),
                        identity,
                    });
                }
                Err(Errno::ADDRINUSE | Errno::EXIST) if !replaced_stale => {
                    let st = statx_no_follow(path).map_err(|e| Error::io("lstat", e))?;
                    if FileType::from_raw_mode(st.stx_mode.into()) != FileType::Socket {
                        return Err(Error::AddressInUse(format!("{} (exists and is not a socket)", path.display())));
                    }
                    if someone_listens(path)? {
                        return Err(Error::AddressInUse(path.display().to_string()));
                    }
                    // Nobody listens: a dead server's leftover. Remove it and try once more.
                    #[cfg(test)]
                    std::thread::sleep(tests::PROBE_TO_REMOVE.get());
                    remove_stale(path, FileId::of(&st));
                    replaced_stale = true;
                }
                Err(Errno::ADDRINUSE | Errno::EXIST) => return Err(Error::AddressInUse(path.display().to_string())),
                Err(e) => return Err(Error::io("bind", e)),
            }
        }
    }

    /// Accepts one pending connection, or `None` when none is waiting.
    pub fn accept(&self) -> Result<Option<ControlStream>> {
        loop {
            match rustix::net::accept_with(&self.fd, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK) {
                Ok(fd) => return Ok(Some(ControlStream { fd })),
                Err(Errno::AGAIN) => return Ok(None),
                // The peer gave up before we got to it: not our error, look at the next one.
                Err(Errno::CONNABORTED) | Err(Errno::INTR) => continue,
                Err(e) => return Err(Error::io("accept", e)),
            }
        }
    }

    /// The path we listen on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the socket file, if it is still the one we created.
    pub fn unlink(&self) {
        if identity(&self.path) == Some(self.identity) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// The raw fd, for event loops.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// What [`ControlStream::recv`] got.
#[derive(Debug)]
pub struct Received {
    /// Bytes placed in the buffer; 0 means the peer closed the connection.
    pub bytes: usize,
    /// Fds that came with those bytes (close-on-exec, owned by us now).
    pub fds: Vec<OwnedFd>,
    /// The peer attached more fds than [`MAX_FDS`]: the kernel closed the rest. The bytes are
    /// still returned, so the caller can answer (REJECT 6) instead of losing the frame.
    pub truncated: bool,
}

/// A connected control socket.
#[derive(Debug)]
pub struct ControlStream {
    fd: OwnedFd,
}

impl ControlStream {
    /// Connects to a server's control socket without ever blocking: fails at once when nobody
    /// listens, and with [`Error::AcceptQueueFull`] when the listener's accept queue is full (a
    /// blocking connect would sleep with no timeout there; the caller retries with a timer).
    pub fn connect(path: &Path) -> Result<Self> {
        let addr = unix_addr(path)?;
        let fd = unix_socket()?;
        loop {
            // An AF_UNIX connect either completes at once or fails; it never returns EINPROGRESS.
            match rustix::net::connect(&fd, &addr) {
                Ok(()) => return Ok(ControlStream { fd }),
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => return Err(Error::AcceptQueueFull(path.display().to_string())),
                Err(e) => return Err(Error::io("connect", e)),
            }
        }
    }

    /// A connected pair, for tests and for parents handing one end to a child process.
    pub fn pair() -> Result<(Self, Self)> {
        let (a, b) = stream_socketpair()?;
        Ok((ControlStream { fd: a }, ControlStream { fd: b }))
    }

    /// Wraps an fd that is a connected Unix stream socket (e.g. inherited from a parent).
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        let flags = rustix::fs::fcntl_getfl(&fd).map_err(|e| Error::io("fcntl", e))?;
        rustix::fs::fcntl_setfl(&fd, flags | rustix::fs::OFlags::NONBLOCK).map_err(|e| Error::io("fcntl", e))?;
        Ok(ControlStream { fd })
    }

    /// The peer's pid, uid and gid.
    pub fn peer_cred(&self) -> Result<PeerCred> {
        let c = rustix::net::sockopt::socket_peercred(&self.fd).map_err(|e| Error::io("getsockopt(SO_PEERCRED)", e))?;
        Ok(PeerCred {
            pid: c.pid.as_raw_nonzero().get(),
            uid: c.uid.as_raw(),
            gid: c.gid.as_raw(),
        })
    }

    /// Sends `data`, with `fds` attached to its first byte. Returns the bytes sent: fewer than
    /// `data.len()` (possibly 0) when the socket buffer is full; the caller sends the rest later,
    /// without fds. Never raises SIGPIPE; a closed peer is [`Error::Closed`].
    pub fn send(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<usize> {
        if fds.len() > MAX_FDS {
            return Err(Error::InvalidArgument(format!("at most {MAX_FDS} fds per message")));
        }
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(Error::InvalidArgument("fds do not fit the control buffer".into()));
        }
        loop {
            match rustix::net::sendmsg(
                &self.fd,
                &[IoSlice::new(data)],
                &mut control,
                SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
            ) {
                Ok(n) => return Ok(n),
                Err(Errno::AGAIN) => return Ok(0),
                Err(Errno::INTR) => continue,
                Err(Errno::PIPE) | Err(Errno::CONNRESET) => return Err(Error::Closed),
                Err(e) => return Err(Error::io("sendmsg", e)),
            }
        }
    }

    /// Receives into `buf`. `None`: nothing to read now. `Some(bytes: 0)`: the peer closed.
    pub fn recv(&self, buf: &mut [u8]) -> Result<Option<Received>> {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = loop {
            match rustix::net::recvmsg(
                &self.fd,
                &mut [IoSliceMut::new(buf)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT,
            ) {
                Ok(m) => break m,
                Err(Errno::AGAIN) => return Ok(None),
                Err(Errno::INTR) => continue,
                Err(Errno::CONNRESET) => {
                    return Ok(Some(Received {
                        bytes: 0,
                        fds: Vec::new(),
                        truncated: false,
                    }))
                }
                Err(e) => return Err(Error::io("recvmsg", e)),
            }
        };
        // Take ownership of every fd first, so whatever happens next they are closed, not leaked.
        let mut fds = Vec::new();
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = m {
                fds.extend(received);
            }
        }
        Ok(Some(Received {
            bytes: msg.bytes,
            // The control buffer's alignment can leave room for a few more than MAX_FDS.
            truncated: msg.flags.contains(ReturnFlags::CTRUNC) || fds.len() > MAX_FDS,
            fds,
        }))
    }

    /// Shuts both directions down; the peer sees EOF at once, even if another process holds a
    /// duplicate of this fd.
    pub fn shutdown(&self) {
        let _ = rustix::net::shutdown(&self.fd, rustix::net::Shutdown::Both);
    }

    /// The raw fd, for event loops.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Gives up the fd (for handing it to a child process).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for ControlStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{ChannelFds, Endpoint, Side};
    use std::os::unix::fs::PermissionsExt;

    thread_local! {
        /// A pause between bind() and listen() in this thread, to widen the window a client
        /// could fall into from microseconds to something a test can hit every time.
        pub(super) static BIND_TO_LISTEN: std::cell::Cell<std::time::Duration> = const { std::cell::Cell::new(std::time::Duration::ZERO) };
        /// A pause between finding a socket file stale and removing it, in this thread.
        pub(super) static PROBE_TO_REMOVE: std::cell::Cell<std::time::Duration> = const { std::cell::Cell::new(std::time::Duration::ZERO) };
    }

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lapce-ai-transport-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("ai.sock.ctl")
    }

    fn recv_blocking(s: &ControlStream, buf: &mut [u8]) -> Received {
        for _ in 0..10_000 {
            if let Some(r) = s.recv(buf).unwrap() {
                return r;
            }
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
        panic!("nothing received");
    }

    #[test]
    fn socket_is_owner_only_and_peer_credentials_are_ours() {
        let path = temp_path("perm");
        let l = ControlListener::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let c = ControlStream::connect(&path).unwrap();
        let s = loop {
            if let Some(s) = l.accept().unwrap() {
                break s;
            }
        };
        let cred = s.peer_cred().unwrap();
        assert_eq!(cred.pid as u32, std::process::id());
        assert_eq!(cred.uid, rustix::process::getuid().as_raw());
        assert_eq!(c.peer_cred().unwrap().pid as u32, std::process::id());
        l.unlink();
        assert!(!path.exists());
    }

    /// A listener with a full accept queue (listen(0), never accepting), as a wedged server.
    fn wedged_listener(path: &Path) -> OwnedFd {
        let fd = unix_socket().unwrap();
        rustix::net::bind(&fd, &SocketAddrUnix::new(path).unwrap()).unwrap();
        rustix::net::listen(&fd, 0).unwrap();
        fd
    }

    #[test]
    fn connect_to_a_full_accept_queue_fails_at_once_and_bind_treats_it_as_live() {
        let path = temp_path("full-queue");
        let _l = wedged_listener(&path);
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        // In a thread, so that a blocking connect shows up as a timeout rather than a hung test.
        std::thread::spawn(move || {
            let mut held = Vec::new();
            let r = loop {
                match ControlStream::connect(&p) {
                    Ok(s) if held.len() < 8 => held.push(s),
                    Ok(_) => break Err("the queue never filled".to_string()),
                    Err(e) => break Ok(e),
                }
            };
            let bind = ControlListener::bind(&p).map(|_| ()).map_err(|e| e.code());
            let _ = tx.send((r.map(|e| e.code()), bind));
            drop(held);
        });
        let (connect, bind) = rx.recv_timeout(std::time::Duration::from_secs(5)).expect("connect blocked");
        assert_eq!(connect, Ok("ACCEPT_QUEUE_FULL"));
        assert_eq!(bind, Err("ADDRESS_IN_USE"), "a listener with a full queue is live, not stale");
        assert!(path.exists(), "and its socket file is not removed");
    }

    #[test]
    fn live_server_is_not_displaced_but_stale_socket_is_replaced() {
        let path = temp_path("stale");
        let live = ControlListener::bind(&path).unwrap();
        assert!(matches!(ControlListener::bind(&path), Err(Error::AddressInUse(_))));
        // Dropping without unlink leaves a stale file, as a killed server would.
        drop(live);
        assert!(path.exists());
        let again = ControlListener::bind(&path).unwrap();
        again.unlink();
    }

    /// What is in the socket's directory besides the socket: no staging name may be left behind.
    fn others_in_dir(path: &Path) -> Vec<String> {
        let own = path.file_name().unwrap();
        std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != own)
            .map(|n| n.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_socket_file_is_listening_from_the_moment_it_exists() {
        let path = temp_path("listening");
        BIND_TO_LISTEN.set(std::time::Duration::from_millis(2));
        for round in 0..20 {
            let p = path.clone();
            // Connects the instant the file appears, as a client started next to the server does.
            let watcher = std::thread::spawn(move || loop {
                if p.exists() {
                    return ControlStream::connect(&p).map(drop).map_err(|e| e.to_string());
                }
                std::hint::spin_loop();
            });
            let l = ControlListener::bind(&path).unwrap();
            assert_eq!(
                watcher.join().unwrap(),
                Ok(()),
                "round {round}: the file existed before anyone listened on it"
            );
            l.unlink();
        }
        BIND_TO_LISTEN.set(std::time::Duration::ZERO);
        assert_eq!(others_in_dir(&path), Vec::<String>::new());
    }

    #[test]
    fn binding_leaves_no_staging_file_whatever_the_outcome() {
        let path = temp_path("staging");
        let live = ControlListener::bind(&path).unwrap();
        assert!(matches!(ControlListener::bind(&path), Err(Error::AddressInUse(_))));
        assert_eq!(others_in_dir(&path), Vec::<String>::new(), "after a refused bind");
        drop(live);
        let again = ControlListener::bind(&path).unwrap();
        assert_eq!(others_in_dir(&path), Vec::<String>::new(), "after replacing a stale file");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        drop(ControlStream::connect(&path).unwrap());
        again.unlink();
        assert!(!path.exists());
    }

    #[test]
    fn a_path_too_long_for_a_staging_name_still_binds() {
        // sun_path holds 107 bytes and a NUL; a one-letter name in a directory filling the rest
        // leaves no room for the staging name, so bind falls back to binding in place.
        let base = temp_path("long");
        let dir = base.parent().unwrap();
        let pad = (107 - 3usize)
            .checked_sub(dir.as_os_str().len())
            .expect("TMPDIR is too long for this test");
        let deep = dir.join("d".repeat(pad));
        std::fs::create_dir_all(&deep).unwrap();
        let path = deep.join("s");
        assert_eq!(path.as_os_str().len(), 107);
        assert!(staging_name(&path).is_none());
        let l = ControlListener::bind(&path).unwrap();
        drop(ControlStream::connect(&path).unwrap());
        assert!(matches!(ControlListener::bind(&path), Err(Error::AddressInUse(_))));
        l.unlink();
        assert!(!path.exists());
    }

    #[test]
    fn a_socket_that_answers_with_an_error_but_a_refusal_is_never_removed() {
        // A live datagram socket at the path: a stream connect to it fails with EPROTOTYPE,
        // which says nothing about whether someone is there, so it must not count as stale.
        let path = temp_path("dgram");
        let dgram = rustix::net::socket(AddressFamily::UNIX, SocketType::DGRAM, None).unwrap();
        rustix::net::bind(&dgram, &SocketAddrUnix::new(&path).unwrap()).unwrap();
        let before = identity(&path);
        let err = ControlListener::bind(&path).unwrap_err();
        assert!(err.to_string().contains("connect"), "{err}");
        assert_eq!(identity(&path), before, "the datagram socket's file was replaced");
        assert_eq!(others_in_dir(&path), Vec::<String>::new());
    }

    #[test]
    fn a_server_replacing_a_stale_file_never_removes_a_live_one_that_came_meanwhile() {
        let path = temp_path("stale-race");
        drop(ControlListener::bind(&path).unwrap()); // a dead server's leftover
        let p = path.clone();
        // Server A finds the file stale, then is held up before removing it.
        let a = std::thread::spawn(move || {
            PROBE_TO_REMOVE.set(std::time::Duration::from_millis(200));
            ControlListener::bind(&p).map(drop).map_err(|e| e.code())
        });
        // Server B, meanwhile, also replaces the stale file, and listens.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let b = ControlListener::bind(&path).unwrap();
        assert_eq!(a.join().unwrap(), Err("ADDRESS_IN_USE"), "A displaced B");
        let _c = ControlStream::connect(&path).expect("B's socket is no longer at the path");
        let accepted = (0..1000).find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(1));
            b.accept().unwrap()
        });
        assert!(accepted.is_some(), "the connection did not reach B");
        assert_eq!(others_in_dir(&path), Vec::<String>::new());
        b.unlink();
    }

    #[test]
    fn regular_file_at_path_is_never_removed() {
        let path = temp_path("file");
        std::fs::write(&path, b"precious").unwrap();
        assert!(matches!(ControlListener::bind(&path), Err(Error::AddressInUse(_))));
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    }

    #[test]
    fn unlink_leaves_a_successors_socket_alone() {
        let path = temp_path("succ");
        let first = ControlListener::bind(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let second = ControlListener::bind(&path).unwrap();
        first.unlink();
        assert!(path.exists(), "the first server must not remove the second's socket");
        second.unlink();
    }

    #[test]
    fn channel_fds_travel_over_scm_rights_and_work() {
        let (a, b) = ControlStream::pair().unwrap();
        let new = ChannelFds::create(4096).unwrap();
        assert_eq!(a.send(b"hello", &new.wire()).unwrap(), 5);
        let mut buf = [0u8; 16];
        let got = recv_blocking(&b, &mut buf);
        assert_eq!(&buf[..got.bytes], b"hello");
        assert_eq!(got.fds.len(), 3);
        let mut client = Endpoint::open(ChannelFds::from_vec(got.fds).unwrap(), Side::Client, 4096, 1 << 20).unwrap();
        let mut server = Endpoint::open(new.server, Side::Server, 4096, 1 << 20).unwrap();
        server.send_blocking(b"through shm", None).unwrap();
        assert_eq!(client.recv_blocking(None).unwrap().unwrap(), b"through shm");
    }

    #[test]
    fn too_many_fds_are_refused_and_closed() {
        let (a, b) = ControlStream::pair().unwrap();
        // Send MAX_FDS now (allowed), then check the receiver caps what it accepts per message.
        let bells: Vec<_> = (0..MAX_FDS).map(|_| crate::Doorbell::pair().unwrap().0).collect();
        let borrowed: Vec<BorrowedFd<'_>> = bells.iter().map(|d| d.as_fd()).collect();
        assert!(a.send(b"x", &borrowed).is_ok());
        let mut buf = [0u8; 4];
        assert_eq!(recv_blocking(&b, &mut buf).fds.len(), MAX_FDS);
        assert!(a.send(b"x", &[borrowed[0]; MAX_FDS + 1]).is_err());
    }

    #[test]
    fn more_fds_than_a_read_holds_are_reported_with_the_bytes_not_lost() {
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
        let (a, b) = ControlStream::pair().unwrap();
        let bells: Vec<_> = (0..MAX_FDS + 4).map(|_| crate::Doorbell::pair().unwrap().0).collect();
        let borrowed: Vec<BorrowedFd<'_>> = bells.iter().map(|d| d.as_fd()).collect();
        // A hostile peer: sendmsg by hand, past our own sender's limit.
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS + 4))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        assert!(control.push(SendAncillaryMessage::ScmRights(&borrowed)));
        rustix::net::sendmsg(&a, &[std::io::IoSlice::new(b"HELLO")], &mut control, SendFlags::empty()).unwrap();
        let mut buf = [0u8; 16];
        let got = recv_blocking(&b, &mut buf);
        assert_eq!(&buf[..got.bytes], b"HELLO", "the frame's bytes are kept");
        assert!(got.truncated, "{} fds, truncated not set", got.fds.len());
    }

    #[test]
    fn eof_is_reported_when_the_peer_goes_away() {
        let (a, b) = ControlStream::pair().unwrap();
        drop(a);
        let mut buf = [0u8; 4];
        assert_eq!(recv_blocking(&b, &mut buf).bytes, 0);
        assert!(matches!(b.send(b"x", &[]), Err(Error::Closed)));
    }
}
