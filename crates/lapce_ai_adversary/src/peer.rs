//! An honest-enough client session (handshake steps one by one, a channel to send and receive
//! on) that attacks start from and then betray.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

use crate::bell::Bell;
use crate::ctl::{Ctl, Got};
use crate::ring::{Reader, Ring, Writer};
use crate::wire::{self, BellKind, Frame, Layout, Welcome};

/// One direction pair of a channel, from either side.
#[derive(Debug)]
pub struct Channel {
    /// The ring we produce into.
    pub tx: Writer,
    /// The ring we consume.
    pub rx: Reader,
    /// Doorbell.
    pub bell: Bell,
}

/// Which end of the channel we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Produces into ring c→s (fd 1), consumes ring s→c (fd 0).
    Client,
    /// The opposite.
    Server,
}

impl Channel {
    /// Builds the channel from WELCOME's fds in the order of `layout` (the one place that knows it).
    pub fn from_fds(mut fds: Vec<OwnedFd>, layout: Layout, capacity: u32, side: Side) -> Result<Self, String> {
        if fds.len() != layout.fds {
            return Err(format!(
                "expected {} fds for version {}, got {}",
                layout.fds,
                layout.version,
                fds.len()
            ));
        }
        let mut it = fds.drain(..);
        let s2c = Ring::new(it.next().unwrap(), capacity);
        let c2s = Ring::new(it.next().unwrap(), capacity);
        let bell = match layout.bell {
            BellKind::EventFds => {
                let server_bell = it.next().unwrap();
                let client_bell = it.next().unwrap();
                match side {
                    Side::Client => Bell {
                        kind: layout.bell,
                        ring_fd: server_bell,
                        own_fd: Some(client_bell),
                        quiet: false,
                    },
                    Side::Server => Bell {
                        kind: layout.bell,
                        ring_fd: client_bell,
                        own_fd: Some(server_bell),
                        quiet: false,
                    },
                }
            }
            BellKind::SocketPair => Bell {
                kind: layout.bell,
                ring_fd: it.next().unwrap(),
                own_fd: None,
                quiet: false,
            },
        };
        let (tx, rx) = match side {
            Side::Client => (c2s, s2c),
            Side::Server => (s2c, c2s),
        };
        Ok(Channel {
            tx: Writer::new(tx),
            rx: Reader::new(rx),
            bell,
        })
    }

    /// Writes `msg` and publishes, waiting up to `timeout` for room. False if it never fit.
    pub fn send(&mut self, msg: &[u8], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut progress = 0;
        loop {
            let done = self.tx.write(msg, &mut progress);
            if self.tx.publish() {
                self.bell.ring();
            }
            if done {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            self.tx.ring.set(crate::ring::off::PRODUCER_WAITING, 1);
            self.bell.drain();
            let _ = crate::ctl::wait(self.bell.wait_fd(), PollFlags::IN, Duration::from_millis(1));
        }
    }

    /// Writes `msg` without waiting and without publishing. False if it does not fit now.
    pub fn stage(&mut self, msg: &[u8]) -> bool {
        let mut progress = 0;
        let head = self.tx.head;
        if self.tx.write(msg, &mut progress) {
            return true;
        }
        // Half a message must never be left behind: roll our copy of head back.
        self.tx.head = head;
        false
    }

    /// Publishes what was staged and rings if the consumer sleeps.
    pub fn flush(&mut self) {
        if self.tx.publish() {
            self.bell.ring();
        }
    }

    /// Reads every message available now.
    pub fn drain_rx(&mut self) -> Result<Vec<Vec<u8>>, String> {
        let mut out = Vec::new();
        while let Some(m) = self.rx.next()? {
            out.push(m);
            if out.len() >= 4096 {
                break;
            }
        }
        if !out.is_empty() && self.rx.release() {
            self.bell.ring();
        }
        Ok(out)
    }
}

/// How a session ended from our point of view.
#[derive(Debug, Default)]
pub struct Ending {
    /// The server closed the control socket.
    pub eof: bool,
    /// The code of an ERROR frame with id 0, if one came.
    pub error0: Option<String>,
    /// The server's outgoing ring had `closed` set.
    pub closed_word: bool,
    /// The server's ring became unreadable (its own writes, or our scribbles).
    pub ring_error: Option<String>,
    /// Frames received meanwhile.
    pub frames: usize,
}

/// A client session after (or during) the handshake.
#[derive(Debug)]
pub struct Session {
    /// Control connection.
    pub ctl: Ctl,
    /// WELCOME as received.
    pub welcome: Welcome,
    /// Layout of the chosen version.
    pub layout: Layout,
    /// The channel.
    pub ch: Channel,
    next_id: u32,
}

/// How a handshake attempt ended.
#[derive(Debug)]
pub enum HandshakeEnd {
    /// REJECT with reason and message.
    Rejected(u16, String),
    /// The server closed the socket.
    Eof,
    /// Nothing came.
    Timeout,
    /// Something else (unexpected frame, bad fds).
    Other(String),
}

impl HandshakeEnd {
    /// A short label for the JSON line.
    pub fn label(&self) -> String {
        match self {
            HandshakeEnd::Rejected(r, _) => format!("reject{r}"),
            HandshakeEnd::Eof => "eof".into(),
            HandshakeEnd::Timeout => "timeout".into(),
            HandshakeEnd::Other(s) => format!("other: {s}"),
        }
    }
}

/// Connects and sends a well-formed HELLO.
pub fn hello(socket_path: &str, name: &str) -> Result<Ctl, HandshakeEnd> {
    let ctl = Ctl::connect(socket_path).map_err(|e| HandshakeEnd::Other(format!("connect: {e}")))?;
    ctl.send(&wire::hello(name), &[])
        .map_err(|e| HandshakeEnd::Other(format!("send HELLO: {e}")))?;
    Ok(ctl)
}

/// Waits for WELCOME. Returns it with its fds.
pub fn welcome(ctl: &mut Ctl, timeout: Duration) -> Result<(Welcome, Vec<OwnedFd>), HandshakeEnd> {
    match ctl.recv(timeout) {
        Got::Frame { truncated: true, .. } => Err(HandshakeEnd::Other("more than 32 fds on one frame".into())),
        Got::Frame { kind, body, fds, .. } if kind == wire::ctl::WELCOME => match Welcome::parse(&body) {
            Some(w) => Ok((w, fds)),
            None => Err(HandshakeEnd::Other(format!("WELCOME of {} bytes", body.len()))),
        },
        Got::Frame { kind, body, .. } if kind == wire::ctl::REJECT => {
            let (r, m) = wire::parse_reject(&body);
            Err(HandshakeEnd::Rejected(r, m))
        }
        Got::Frame { kind, .. } => Err(HandshakeEnd::Other(format!("unexpected control frame {kind}"))),
        Got::Eof => Err(HandshakeEnd::Eof),
        Got::Timeout => Err(HandshakeEnd::Timeout),
        Got::BadLength(n) => Err(HandshakeEnd::Other(format!("bad control length {n}"))),
    }
}

/// The reply to whatever we sent last in the handshake (READY, a bad frame): REJECT or EOF.
pub fn handshake_reply(ctl: &mut Ctl, timeout: Duration) -> HandshakeEnd {
    match ctl.recv(timeout) {
        Got::Frame { kind, body, .. } if kind == wire::ctl::REJECT => {
            let (r, m) = wire::parse_reject(&body);
            HandshakeEnd::Rejected(r, m)
        }
        Got::Frame { kind, .. } => HandshakeEnd::Other(format!("control frame {kind}")),
        Got::Eof => HandshakeEnd::Eof,
        Got::Timeout => HandshakeEnd::Timeout,
        Got::BadLength(n) => HandshakeEnd::Other(format!("bad control length {n}")),
    }
}

impl Session {
    /// Maps WELCOME's fds as a client would (without the checks an honest client makes: we are
    /// attacking the server, not checking it).
    pub fn open(ctl: Ctl, welcome: Welcome, fds: Vec<OwnedFd>) -> Result<Self, String> {
        let layout = wire::layout(welcome.version).ok_or_else(|| format!("server chose unknown version {}", welcome.version))?;
        let ch = Channel::from_fds(fds, layout, welcome.capacity, Side::Client)?;
        Ok(Session {
            ctl,
            welcome,
            layout,
            ch,
            next_id: 1,
        })
    }

    /// Full handshake: HELLO, WELCOME, map, READY.
    pub fn connect(socket_path: &str, name: &str) -> Result<Self, String> {
        let mut ctl = hello(socket_path, name).map_err(|e| e.label())?;
        let (w, fds) = welcome(&mut ctl, Duration::from_secs(5)).map_err(|e| e.label())?;
        let s = Session::open(ctl, w, fds)?;
        s.ready()?;
        Ok(s)
    }

    /// Sends READY.
    pub fn ready(&self) -> Result<(), String> {
        self.ctl
            .send(&wire::ready(self.welcome.slot, self.welcome.generation), &[])
            .map_err(|e| format!("send READY: {e}"))
    }

    /// A fresh call id.
    pub fn id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    /// Opens a stream and, under v2, grants it `credit` (chunks, bytes) in the same batch.
    pub fn open_stream(&mut self, method: &str, json: &str, credit: Option<(u32, u32)>) -> Option<u32> {
        let id = self.id();
        if !self.ch.stage(&wire::stream_open(id, method, json)) {
            return None;
        }
        if let (true, Some((c, b))) = (self.layout.credit, credit) {
            self.ch.stage(&wire::credit(id, c, b));
        }
        self.ch.flush();
        Some(id)
    }

    /// Sends a JSON request and waits for its reply (other frames are dropped).
    pub fn call(&mut self, method: &str, json: &str, timeout: Duration) -> Result<Frame, String> {
        let id = self.id();
        if !self.ch.send(&wire::request(id, method, json), timeout) {
            return Err("ring full".into());
        }
        self.await_reply(id, timeout)
    }

    /// Waits for the terminal frame of call `id`.
    pub fn await_reply(&mut self, id: u32, timeout: Duration) -> Result<Frame, String> {
        let deadline = Instant::now() + timeout;
        loop {
            for m in self.ch.drain_rx()? {
                if let Some(f) = Frame::parse(&m) {
                    if f.id == id && matches!(f.kind, wire::kind::RESPONSE | wire::kind::ERROR | wire::kind::STREAM_END) {
                        return Ok(f);
                    }
                    if f.id == 0 && f.kind == wire::kind::ERROR {
                        return Err(format!("session error {}", f.error_code().unwrap_or_default()));
                    }
                }
            }
            if Instant::now() > deadline {
                return Err("no reply".into());
            }
            if self.idle_wait(Duration::from_millis(2)) {
                return Err("server closed the control socket".into());
            }
        }
    }

    /// Sleeps up to `d` on the doorbell and the control socket. True if the control socket hit EOF.
    pub fn idle_wait(&mut self, d: Duration) -> bool {
        let mut fds = [
            PollFd::from_borrowed_fd(self.ctl.fd(), PollFlags::IN),
            PollFd::from_borrowed_fd(self.ch.bell.wait_fd(), PollFlags::IN),
        ];
        let ts = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: d.as_nanos().min(999_999_999) as i64,
        };
        let _ = rustix::event::poll(&mut fds, Some(&ts));
        let ctl_ready = !fds[0].revents().is_empty();
        self.ch.bell.drain();
        if ctl_ready {
            return matches!(self.ctl.recv(Duration::ZERO), Got::Eof);
        }
        false
    }

    /// Reads frames and the control socket until the server closes it or `timeout` passes.
    pub fn await_end(&mut self, timeout: Duration) -> Ending {
        let deadline = Instant::now() + timeout;
        let mut end = Ending::default();
        loop {
            if end.ring_error.is_none() {
                match self.ch.drain_rx() {
                    Ok(msgs) => {
                        for m in msgs {
                            end.frames += 1;
                            if let Some(f) = Frame::parse(&m) {
                                if f.id == 0 && f.kind == wire::kind::ERROR {
                                    end.error0 = f.error_code();
                                }
                            }
                        }
                    }
                    Err(e) => end.ring_error = Some(e),
                }
            }
            if self.ch.rx.ring.word(crate::ring::off::CLOSED) != 0 {
                end.closed_word = true;
            }
            if end.eof || Instant::now() > deadline {
                return end;
            }
            end.eof = self.idle_wait(Duration::from_millis(2));
        }
    }
}
