//! The client side of the handshake (`docs/PROTOCOL.md` §2.4): HELLO, WELCOME with 3 fds
//! (checked by the transport before anything is mapped), READY.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lapce_ai_transport::endpoint::WIRE_FDS;
use lapce_ai_transport::{ChannelFds, ControlStream, Endpoint, Side};
use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::error::{Error, RejectReason, Result};
use crate::wire::control::{ControlFrame, ControlReader, Hello, Reject, Welcome, HELLO_MAGIC, PROTOCOL_VERSION};

/// What a finished handshake hands to the connection.
pub(crate) struct Established {
    pub ctl: ControlStream,
    /// Bytes that followed READY's reply on the control socket (a GOAWAY may be buffered).
    pub reader: ControlReader,
    pub endpoint: Endpoint,
    /// A duplicate of our doorbell end, polled by the I/O thread while the endpoint's lock is free.
    pub doorbell: OwnedFd,
    pub welcome: Welcome,
}

/// The control socket for a user-given path: `P.ctl` for `P`, or the path itself if it already
/// ends in `.ctl`.
pub(crate) fn control_path(path: &Path) -> PathBuf {
    if path.extension().is_some_and(|e| e == "ctl") {
        path.to_owned()
    } else {
        let mut p = path.as_os_str().to_owned();
        p.push(".ctl");
        PathBuf::from(p)
    }
}

/// Waits until `fd` is readable (or writable) or the deadline passes. True when ready.
pub(crate) fn wait_fd(fd: impl AsFd, flags: PollFlags, deadline: Instant) -> Result<bool> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ts = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        let mut fds = [PollFd::new(&fd, flags)];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(n) => return Ok(n > 0),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::io("poll", e)),
        }
    }
}

/// Connects without ever blocking past `deadline`: a server whose accept queue is full makes a
/// blocking `connect()` sleep with no timeout, so the socket is non-blocking from the start and
/// `EAGAIN` (queue full) is retried until the deadline.
fn connect(ctl_path: &Path, deadline: Instant) -> Result<ControlStream> {
    let addr =
        SocketAddrUnix::new(ctl_path).map_err(|e| Error::InvalidArgument(format!("control socket path {}: {e}", ctl_path.display())))?;
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(|e| Error::io("socket", e))?;
    loop {
        match rustix::net::connect(&fd, &addr) {
            Ok(()) => break,
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => {
                if Instant::now() >= deadline {
                    return Err(Error::ConnectionLost(format!(
                        "{}: the server's accept queue stayed full (EAGAIN) until the handshake timeout",
                        ctl_path.display()
                    )));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(Errno::INPROGRESS) => {
                if !wait_fd(&fd, PollFlags::OUT, deadline)? {
                    return Err(Error::HandshakeTimeout(deadline.saturating_duration_since(Instant::now())));
                }
                break;
            }
            Err(e) => {
                let e = std::io::Error::from(e);
                return Err(Error::Io {
                    op: "connect",
                    kind: e.kind(),
                    message: format!("{}: {e}", ctl_path.display()),
                });
            }
        }
    }
    ControlStream::from_fd(fd).map_err(Error::from)
}

/// Refuses a server that runs as a user we do not trust, before it is sent anything: without
/// `XDG_RUNTIME_DIR` the socket lives in `/tmp`, where another user could have created it first.
fn check_server_uid(ctl: &ControlStream, server_uids: &[u32]) -> Result<()> {
    let uid = ctl.peer_cred()?.uid;
    let trusted = if server_uids.is_empty() {
        vec![rustix::process::getuid().as_raw()]
    } else {
        server_uids.to_vec()
    };
    if trusted.contains(&uid) {
        Ok(())
    } else {
        Err(Error::PeerNotTrusted { uid, trusted })
    }
}

/// Sends all of `bytes` on the (non-blocking) control socket.
pub(crate) fn send_all(ctl: &ControlStream, bytes: &[u8], deadline: Instant) -> Result<()> {
    let mut sent = 0;
    while sent < bytes.len() {
        let n = ctl.send(&bytes[sent..], &[])?;
        sent += n;
        if n == 0 && !wait_fd(ctl, PollFlags::OUT, deadline)? {
            return Err(Error::ConnectionLost("control socket stayed full".into()));
        }
    }
    Ok(())
}

/// Tells the server why we refuse its WELCOME, then fails with the same reason.
fn refuse(ctl: &ControlStream, reason: RejectReason, message: String, deadline: Instant) -> Error {
    let frame = ControlFrame::Reject(Reject {
        reason,
        message: message.clone(),
    })
    .encode();
    // Best effort: the socket closes right after either way.
    let _ = send_all(ctl, &frame, deadline);
    ctl.shutdown();
    Error::Rejected { reason, message }
}

/// Connects and runs the handshake.
/// `max_incoming`: the largest message this client accepts, whatever the server's `max_message`
/// says (a server announcing 4 GiB must not make us reassemble 4 GiB).
/// `server_uids`: the uids the server may run as (empty: our own), checked before HELLO.
pub(crate) fn handshake(path: &Path, name: &str, timeout: Duration, max_incoming: usize, server_uids: &[u32]) -> Result<Established> {
    let deadline = Instant::now() + timeout;
    let ctl = connect(&control_path(path), deadline)?;
    check_server_uid(&ctl, server_uids)?;
    let hello = ControlFrame::Hello(Hello {
        magic: HELLO_MAGIC,
        min_version: PROTOCOL_VERSION,
        max_version: PROTOCOL_VERSION,
        pid: std::process::id(),
        features: 0,
        name: name.to_owned(),
    });
    send_all(&ctl, &hello.encode(), deadline)?;

    // Every recvmsg has room for the transport's MAX_FDS (8) fds, so WELCOME's 3 always arrive.
    let mut reader = ControlReader::default();
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut buf = [0u8; 4096];
    let frame = loop {
        match reader.next_frame() {
            Ok(Some(f)) => break f,
            Ok(None) => {}
            Err(msg) => return Err(refuse(&ctl, RejectReason::Malformed, msg, deadline)),
        }
        match ctl.recv(&mut buf) {
            Ok(Some(r)) if r.bytes == 0 => {
                return Err(Error::ConnectionLost(
                    "the server closed the control socket during the handshake".into(),
                ))
            }
            Ok(Some(r)) => {
                let truncated = r.truncated;
                fds.extend(r.fds);
                if truncated || fds.len() > WIRE_FDS {
                    let msg = format!("the server attached more than {WIRE_FDS} fds");
                    drop(fds);
                    return Err(refuse(&ctl, RejectReason::Malformed, msg, deadline));
                }
                reader.push(&buf[..r.bytes]);
            }
            Ok(None) => {
                if !wait_fd(&ctl, PollFlags::IN, deadline)? {
                    return Err(Error::HandshakeTimeout(timeout));
                }
            }
            Err(lapce_ai_transport::Error::InvalidShm(msg)) => return Err(refuse(&ctl, RejectReason::Malformed, msg, deadline)),
            Err(e) => return Err(e.into()),
        }
    };
    let welcome = match frame {
        ControlFrame::Reject(r) => {
            return Err(Error::Rejected {
                reason: r.reason,
                message: r.message,
            })
        }
        ControlFrame::Welcome(w) => w,
        other => {
            let msg = format!("expected WELCOME, got {other:?}");
            return Err(refuse(&ctl, RejectReason::Malformed, msg, deadline));
        }
    };
    if fds.len() > WIRE_FDS {
        let msg = format!("WELCOME carried {} fds, expected {WIRE_FDS}", fds.len());
        drop(fds);
        return Err(refuse(&ctl, RejectReason::Malformed, msg, deadline));
    }
    if fds.len() < WIRE_FDS {
        let msg = format!("WELCOME carried {} fds, expected {WIRE_FDS}", fds.len());
        return Err(refuse(&ctl, RejectReason::ClientRejected, msg, deadline));
    }
    if welcome.version != PROTOCOL_VERSION {
        let msg = format!(
            "server chose protocol version {}, this client speaks {PROTOCOL_VERSION}",
            welcome.version
        );
        return Err(refuse(&ctl, RejectReason::ClientRejected, msg, deadline));
    }
    if welcome.max_message < 8 {
        let msg = format!("max_message {} cannot hold a frame header", welcome.max_message);
        return Err(refuse(&ctl, RejectReason::ClientRejected, msg, deadline));
    }
    let channel = ChannelFds::from_vec(fds).map_err(Error::from)?;
    let doorbell = match rustix::io::fcntl_dupfd_cloexec(&channel.doorbell, 0) {
        Ok(fd) => fd,
        Err(e) => return Err(refuse(&ctl, RejectReason::Internal, format!("dup: {e}"), deadline)),
    };
    let max_in = (welcome.max_message as usize).min(max_incoming);
    let endpoint = match Endpoint::open(channel, Side::Client, welcome.ring_capacity as usize, max_in) {
        Ok(ep) => ep,
        Err(e) => {
            return Err(refuse(
                &ctl,
                RejectReason::ClientRejected,
                format!("server's channel is unusable: {e}"),
                deadline,
            ))
        }
    };
    let ready = ControlFrame::Ready {
        slot: welcome.slot,
        generation: welcome.generation,
    };
    send_all(&ctl, &ready.encode(), deadline)?;
    Ok(Established {
        ctl,
        reader,
        endpoint,
        doorbell,
        welcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_path_accepts_both_forms() {
        assert_eq!(control_path(Path::new("/run/ai.sock")), Path::new("/run/ai.sock.ctl"));
        assert_eq!(control_path(Path::new("/run/ai.sock.ctl")), Path::new("/run/ai.sock.ctl"));
    }
}
