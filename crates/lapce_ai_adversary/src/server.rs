//! A hostile server for the library's `IpcClient` (issue 7, items 11–13 and 15).
//!
//! It binds `<socketPath>.ctl`, prints `{"type":"listening"}`, and handles every connection
//! with the chosen attack, printing one `{"type":"connection",...}` line each: what the client
//! sent back (REJECT 10, EOF, READY...). The client's side (typed error, no crash, no hang) is the
//! test's to check.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::EventfdFlags;
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::ctl::{Ctl, Got, Listener};
use crate::out::Line;
use crate::peer::{Channel, Side};
use crate::ring::{self, off, Ring};
use crate::rng::Rng;
use crate::wire::{self, kind, BellKind, Layout, Welcome};

/// Options of the hostile server.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Socket path.
    pub socket: String,
    /// Connections to handle before exiting (0: until killed).
    pub iterations: usize,
    /// Seed for garbage.
    pub seed: u64,
}

/// Every server attack, with a line of help.
pub const ATTACKS: &[(&str, &str)] = &[
    ("echo", "an honest echo server (checks this tool against the real client)"),
    ("goaway-short", "item 11: GOAWAY with a 2-byte body after READY"),
    ("goaway-empty", "item 11: GOAWAY with an empty body"),
    ("control-unknown", "a control frame of unknown type after READY"),
    ("control-fds", "a GOAWAY carrying 4 fds after READY"),
    (
        "doorbell-block",
        "item 12: poison the doorbell (blocking + saturated / flooded, never read) and serve",
    ),
    ("doorbell-shutdown", "item 12: shutdown our doorbell end, then serve"),
    ("head-livelock", "item 12: head = 0xFFFFFFFF in the server->client ring after READY"),
    ("head-livelock-early", "item 12: head = 0xFFFFFFFF before WELCOME"),
    (
        "tail-livelock",
        "tail = 0xFFFFFFFF in the client->server ring WELCOME passes (the client's first send must see it)",
    ),
    ("welcome-eventfd", "item 13: an eventfd (v1: EFD_SEMAPHORE) as doorbell"),
    ("welcome-pipe", "item 13: a pipe as doorbell"),
    ("welcome-dgram", "item 13: a datagram socketpair as doorbell"),
    ("welcome-same-memfd", "item 13: one memfd for both rings"),
    ("welcome-unsealed", "item 13: unsealed memfds"),
    ("welcome-no-seal-seal", "item 13: memfds without F_SEAL_SEAL"),
    ("welcome-write-seal", "item 13: memfds sealed against writing"),
    ("welcome-wrong-size", "item 13: memfds one page too large"),
    ("welcome-few-fds", "WELCOME with 2 fds"),
    ("welcome-extra-fds", "WELCOME with one fd too many"),
    ("welcome-no-fds", "WELCOME with no fds"),
    ("welcome-bad-version", "WELCOME naming version 99"),
    ("welcome-bad-ring-magic", "rings with a wrong magic"),
    ("welcome-bad-capacity", "WELCOME with capacity 1000"),
    ("welcome-close", "WELCOME, then close"),
    ("reject-full", "item 15: REJECT 7 with a message"),
    ("ring-garbage", "garbage records in the server->client ring after READY"),
    ("frame-short", "a 4-byte frame in reply"),
    ("frame-unknown-kind", "a reply of kind 99"),
    ("frame-bad-error", "an ERROR whose payload is not JSON"),
    ("frame-unknown-id", "a RESPONSE for an id nobody used, then the real one"),
    ("silent", "READY accepted, requests never answered"),
    (
        "vanish",
        "the server process dies (exit, no clean-up) at a random moment after READY",
    ),
    ("silent-handshake", "HELLO read, nothing ever sent"),
];

/// Runs the hostile server; false when `attack` is unknown.
pub fn run(attack: &str, o: &Opts) -> bool {
    if !ATTACKS.iter().any(|(a, _)| *a == attack) {
        return false;
    }
    let listener = match Listener::bind(&o.socket) {
        Ok(l) => l,
        Err(e) => {
            Line::new("error").s("error", &format!("bind: {e}")).print();
            std::process::exit(2);
        }
    };
    Line::new("listening").s("attack", attack).n("pid", std::process::id()).print();
    let mut threads = Vec::new();
    let mut i = 0;
    loop {
        let Ok(ctl) = listener.accept() else { break };
        let (attack, seed) = (attack.to_string(), o.seed.wrapping_add(i as u64));
        threads.push(std::thread::spawn(move || {
            let l = handle(&attack, ctl, &mut Rng::new(seed));
            Line::new("connection").s("attack", &attack).n("i", i as u32).merge(l).print();
        }));
        i += 1;
        if o.iterations > 0 && i >= o.iterations {
            break;
        }
    }
    for t in threads {
        let _ = t.join();
    }
    true
}

const CAPACITY: u32 = 64 * 1024;

/// What to put in WELCOME instead of an honest channel.
#[derive(Clone, Copy, Debug, Default)]
struct Tamper {
    seals: Option<SealFlags>,
    extra_size: u64,
    same_memfd: bool,
    bell: Option<&'static str>,
    fd_count: Option<isize>,
    version: Option<u16>,
    capacity: Option<u32>,
    ring_magic: Option<u32>,
    head: Option<u32>,
    tail: Option<u32>,
}

fn memfd(size: u64, seals: SealFlags) -> std::io::Result<OwnedFd> {
    let fd = rustix::fs::memfd_create("adversary-ring", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    rustix::fs::ftruncate(&fd, size)?;
    if !seals.is_empty() {
        rustix::fs::fcntl_add_seals(&fd, seals)?;
    }
    Ok(fd)
}

fn dup(fd: BorrowedFd<'_>) -> OwnedFd {
    rustix::io::fcntl_dupfd_cloexec(fd, 0).expect("dup")
}

/// Makes the channel: the fds to send, and our side of it.
fn make_channel(layout: Layout, t: &Tamper) -> std::io::Result<(Vec<OwnedFd>, Channel)> {
    let honest = SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL;
    let seals = t.seals.unwrap_or(honest);
    let size = ring::HEADER + CAPACITY as u64 + t.extra_size;
    // Rings are initialised before any seal against writing would stop us: seal afterwards.
    let pre = seals - (SealFlags::WRITE | SealFlags::FUTURE_WRITE | SealFlags::SEAL);
    let r0 = memfd(size, pre)?;
    let r1 = if t.same_memfd { dup(r0.as_fd()) } else { memfd(size, pre)? };
    for r in [&r0, &r1] {
        let ring = Ring::new(dup(r.as_fd()), CAPACITY);
        ring.init_header();
        if let Some(m) = t.ring_magic {
            ring.set(off::MAGIC, m);
        }
    }
    if let Some(h) = t.head {
        Ring::new(dup(r0.as_fd()), CAPACITY).set(off::HEAD, h);
    }
    if let Some(v) = t.tail {
        Ring::new(dup(r1.as_fd()), CAPACITY).set(off::TAIL, v);
    }
    let rest = seals - pre;
    if !rest.is_empty() && !t.same_memfd {
        rustix::fs::fcntl_add_seals(&r0, rest)?;
        rustix::fs::fcntl_add_seals(&r1, rest)?;
    } else if !rest.is_empty() {
        rustix::fs::fcntl_add_seals(&r0, rest)?;
    }
    let nb = EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC;
    // (fds for the wire, fds for our side) of the doorbell.
    let (wire_bells, our_bells): (Vec<OwnedFd>, Vec<OwnedFd>) = match (layout.bell, t.bell) {
        (BellKind::EventFds, Some("eventfd")) => {
            let a = rustix::event::eventfd(0, nb | EventfdFlags::SEMAPHORE)?;
            let b = rustix::event::eventfd(0, nb | EventfdFlags::SEMAPHORE)?;
            (vec![dup(a.as_fd()), dup(b.as_fd())], vec![a, b])
        }
        (BellKind::EventFds, _) => {
            let a = rustix::event::eventfd(0, nb)?;
            let b = rustix::event::eventfd(0, nb)?;
            (vec![dup(a.as_fd()), dup(b.as_fd())], vec![a, b])
        }
        (BellKind::SocketPair, Some("eventfd")) => {
            let a = rustix::event::eventfd(0, nb)?;
            (vec![dup(a.as_fd())], vec![a])
        }
        (BellKind::SocketPair, Some("pipe")) => {
            let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK)?;
            (vec![r], vec![w])
        }
        (BellKind::SocketPair, Some("dgram")) => {
            let (a, b) = rustix::net::socketpair(
                AddressFamily::UNIX,
                SocketType::DGRAM,
                SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
                None,
            )?;
            (vec![b], vec![a])
        }
        (BellKind::SocketPair, _) => {
            let (a, b) = rustix::net::socketpair(
                AddressFamily::UNIX,
                SocketType::STREAM,
                SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
                None,
            )?;
            (vec![b], vec![a])
        }
    };
    let mut wire_fds = vec![dup(r0.as_fd()), dup(r1.as_fd())];
    wire_fds.extend(wire_bells);
    let mut ours = vec![r0, r1];
    ours.extend(our_bells);
    let ch = Channel::from_fds(ours, layout, CAPACITY, Side::Server).map_err(std::io::Error::other)?;
    match t.fd_count {
        Some(n) if n >= 0 => wire_fds.truncate(n as usize),
        Some(n) => {
            for _ in 0..(-n) {
                let (r, _w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                wire_fds.push(r);
            }
        }
        None => {}
    }
    Ok((wire_fds, ch))
}

fn tamper_for(attack: &str) -> Tamper {
    let t = Tamper::default();
    match attack {
        "welcome-eventfd" => Tamper {
            bell: Some("eventfd"),
            ..t
        },
        "welcome-pipe" => Tamper { bell: Some("pipe"), ..t },
        "welcome-dgram" => Tamper { bell: Some("dgram"), ..t },
        "welcome-same-memfd" => Tamper { same_memfd: true, ..t },
        "welcome-unsealed" => Tamper {
            seals: Some(SealFlags::empty()),
            ..t
        },
        "welcome-no-seal-seal" => Tamper {
            seals: Some(SealFlags::SHRINK | SealFlags::GROW),
            ..t
        },
        "welcome-write-seal" => Tamper {
            seals: Some(SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL),
            ..t
        },
        "welcome-wrong-size" => Tamper { extra_size: 4096, ..t },
        "welcome-few-fds" => Tamper { fd_count: Some(2), ..t },
        "welcome-extra-fds" => Tamper { fd_count: Some(-1), ..t },
        "welcome-no-fds" => Tamper { fd_count: Some(0), ..t },
        "welcome-bad-version" => Tamper { version: Some(99), ..t },
        "welcome-bad-ring-magic" => Tamper {
            ring_magic: Some(0x0BAD_F00D),
            ..t
        },
        "welcome-bad-capacity" => Tamper { capacity: Some(1000), ..t },
        "head-livelock-early" => Tamper { head: Some(u32::MAX), ..t },
        "tail-livelock" => Tamper { tail: Some(u32::MAX), ..t },
        _ => t,
    }
}

/// The client's answer to WELCOME, as a label.
fn answer(ctl: &mut Ctl, timeout: Duration) -> String {
    match ctl.recv(timeout) {
        Got::Frame { kind, .. } if kind == wire::ctl::READY => "ready".into(),
        Got::Frame { kind, body, .. } if kind == wire::ctl::REJECT => format!("reject{}", wire::parse_reject(&body).0),
        Got::Frame { kind, .. } => format!("frame{kind}"),
        Got::Eof => "eof".into(),
        Got::Timeout => "timeout".into(),
        Got::BadLength(n) => format!("badlength{n}"),
    }
}

fn handle(attack: &str, mut ctl: Ctl, rng: &mut Rng) -> Line {
    let hello = match ctl.recv(Duration::from_secs(10)) {
        Got::Frame { kind, body, .. } if kind == wire::ctl::HELLO => wire::parse_hello(&body),
        _ => None,
    };
    let Some(hello) = hello else {
        return Line::default().s("client", "no HELLO");
    };
    // The highest version we both know; the layout follows from it.
    let Some(layout) = wire::LAYOUTS
        .iter()
        .rev()
        .copied()
        .find(|l| (hello.min..=hello.max).contains(&l.version))
    else {
        ctl.send_quiet(&wire::reject_frame(wire::reject::NO_COMMON_VERSION, "adversary speaks 1 and 2"));
        return Line::default().s("client", "no common version");
    };
    let base = Line::default().n("version", layout.version).n("clientMax", hello.max);
    match attack {
        "silent-handshake" => {
            let closed = ctl.wait_eof(Duration::from_secs(60));
            return base.s("client", if closed { "eof" } else { "still open" });
        }
        "reject-full" => {
            ctl.send_quiet(&wire::reject_frame(wire::reject::SERVER_FULL, "adversary: every slot is taken"));
            return base.s("client", "rejected with 7");
        }
        _ => {}
    }
    let t = tamper_for(attack);
    let (fds, mut ch) = match make_channel(layout, &t) {
        Ok(x) => x,
        Err(e) => return base.s("error", &format!("make channel: {e}")),
    };
    let welcome = Welcome {
        version: t.version.unwrap_or(layout.version),
        slot: 3,
        generation: 1,
        capacity: t.capacity.unwrap_or(CAPACITY),
        max_message: 16 << 20,
        max_streams: 64,
        features: 0,
        idle_timeout_ms: 0,
        server_pid: std::process::id(),
    };
    let b: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
    if let Err(e) = ctl.send(&welcome.frame(), &b) {
        return base.s("error", &format!("send WELCOME: {e}"));
    }
    drop(b);
    drop(fds);
    if attack == "welcome-close" {
        return base.s("client", "closed after WELCOME");
    }
    let got = answer(&mut ctl, Duration::from_secs(10));
    let base = base.s("client", &got);
    if got != "ready" {
        return base;
    }
    let outcome = after_ready(attack, &mut ctl, &mut ch, layout, rng);
    let closed = ctl.wait_eof(Duration::from_secs(30));
    base.s("outcome", &outcome).b("clientClosed", closed)
}

/// Serves echo until `stop` says so or the client goes. `poison` keeps announcing sleep so the
/// client rings a poisoned doorbell on every send.
fn serve(ctl: &mut Ctl, ch: &mut Channel, poison: bool, mut reply: impl FnMut(&wire::Frame) -> Vec<Vec<u8>>) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut served = 0;
    loop {
        if poison {
            ch.rx.ring.set(off::CONSUMER_SLEEPING, 1);
        }
        match ch.drain_rx() {
            Ok(msgs) => {
                for m in msgs {
                    if let Some(f) = wire::Frame::parse(&m) {
                        for r in reply(&f) {
                            ch.send(&r, Duration::from_secs(2));
                        }
                        served += 1;
                    }
                }
            }
            Err(e) => return format!("client ring corrupt: {e}"),
        }
        if Instant::now() > deadline {
            return format!("served {served}, timed out");
        }
        if ctl_gone(ctl) {
            return format!("served {served}");
        }
    }
}

fn ctl_gone(ctl: &mut Ctl) -> bool {
    !crate::ctl::wait(ctl.fd(), rustix::event::PollFlags::IN, Duration::from_millis(1)).is_empty()
        && matches!(ctl.recv(Duration::ZERO), Got::Eof)
}

fn echo(f: &wire::Frame) -> Vec<Vec<u8>> {
    match f.kind {
        kind::REQUEST => vec![wire::frame(kind::RESPONSE, f.flags, f.id, "", &f.payload)],
        kind::STREAM_OPEN => vec![wire::frame(kind::STREAM_END, 0, f.id, "", &[])],
        _ => vec![],
    }
}

fn after_ready(attack: &str, ctl: &mut Ctl, ch: &mut Channel, _layout: Layout, rng: &mut Rng) -> String {
    match attack {
        "goaway-short" => {
            ctl.send_quiet(&wire::control(wire::ctl::GOAWAY, &[1, 0]));
            "sent GOAWAY with a 2-byte body".into()
        }
        "goaway-empty" => {
            ctl.send_quiet(&wire::control(wire::ctl::GOAWAY, &[]));
            "sent empty GOAWAY".into()
        }
        "control-unknown" => {
            ctl.send_quiet(&wire::control(77, b"??"));
            "sent control type 77".into()
        }
        "control-fds" => {
            let pipes: Vec<OwnedFd> = (0..2)
                .flat_map(|_| {
                    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
                    [r, w]
                })
                .collect();
            let b: Vec<BorrowedFd<'_>> = pipes.iter().map(|f| f.as_fd()).collect();
            let _ = ctl.send(&wire::goaway(1000, "with fds"), &b);
            "sent GOAWAY with 4 fds".into()
        }
        "doorbell-block" => {
            let did = ch.bell.poison();
            let r = serve(ctl, ch, true, echo);
            format!("{} ({})", r, did.join(","))
        }
        "doorbell-shutdown" => {
            let _ = rustix::net::shutdown(&ch.bell.ring_fd, rustix::net::Shutdown::Both);
            ch.bell.quiet = true;
            serve(ctl, ch, false, echo)
        }
        "head-livelock" => {
            ch.tx.ring.set(off::HEAD, u32::MAX);
            "head = 0xFFFFFFFF".into()
        }
        // Never read: releasing would overwrite the poisoned tail with our real one.
        "tail-livelock" => "tail = 0xFFFFFFFF, never reading".into(),
        "ring-garbage" => {
            let g = rng.bytes(256);
            ch.tx.ring.put(0, &g);
            ch.tx.head = 256;
            ch.flush();
            "256 garbage bytes published".into()
        }
        "frame-short" => serve(ctl, ch, false, |_| vec![vec![2, 0, 0, 0]]),
        "frame-unknown-kind" => serve(ctl, ch, false, |f| vec![wire::frame(99, 0, f.id, "", b"?")]),
        "frame-bad-error" => serve(ctl, ch, false, |f| vec![wire::frame(kind::ERROR, 1, f.id, "", b"{not json")]),
        "frame-unknown-id" => serve(ctl, ch, false, |f| {
            let mut v = vec![wire::frame(kind::RESPONSE, 1, f.id ^ 0x00F0_0000, "", b"\"stray\"")];
            v.extend(echo(f));
            v
        }),
        "silent" => "never answering".into(),
        "vanish" => {
            // Like a kill -9: no GOAWAY, no closed word; the kernel closes every fd.
            std::thread::sleep(Duration::from_micros(rng.below(3000) as u64));
            Line::new("vanishing").print();
            std::process::exit(9);
        }
        _ => serve(ctl, ch, false, echo),
    }
}
