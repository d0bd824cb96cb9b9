//! Hostile clients against an `IpcServer` (issue 7, items 1–10 and 15, plus fuzzing).
//!
//! Every attack prints one JSON line per iteration (`"type":"iteration"`, with `ok`: whether the
//! server behaved as docs/PROTOCOL.md and the v2 plan require *as far as this client can see*),
//! and a final `"type":"done"` line. What only the server's side can show (fds, mappings,
//! sessions, RSS, liveness) is the test's to check.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::bell;
use crate::ctl::{Ctl, Got};
use crate::out::Line;
use crate::peer::{self, HandshakeEnd, Session};
use crate::ring::{self, off};
use crate::rng::Rng;
use crate::wire::{self, kind, reject};

/// Options common to all client attacks.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Socket path (the control socket is this plus `.ctl`).
    pub socket: String,
    /// Iterations (connections, cases) to run.
    pub iterations: usize,
    /// Seed of the fuzzers.
    pub seed: u64,
    /// Duration of floods, ms.
    pub duration_ms: u64,
    /// Concurrent connections for attacks that hold many.
    pub connections: usize,
}

/// Every client attack, with a line of help.
pub const ATTACKS: &[(&str, &str)] = &[
    (
        "ring-tail-garbage",
        "item 1: garbage tail in the server->client ring, then a request",
    ),
    (
        "doorbell-block",
        "item 2: make our doorbell blocking, saturate/flood it, announce sleep, then a request",
    ),
    ("doorbell-flood", "item 2: flood the doorbell socket and never read it"),
    ("doorbell-shutdown", "item 2: shutdown(SHUT_RDWR) our doorbell end"),
    ("doorbell-close", "item 2: close our doorbell fd(s)"),
    ("hello-close", "item 3: close in the middle of HELLO"),
    ("welcome-close", "item 3: close between WELCOME and READY"),
    ("ready-close", "item 3: READY then close at 0 us"),
    ("streams-close", "item 3: close with streams in flight"),
    ("storm", "item 3: all of the above in a loop (for kill -9 at random points)"),
    ("head-sentinel", "item 4: head = 0xFFFFFFFF in the client->server ring before READY"),
    ("tail-sentinel", "item 4: tail = 0xFFFFFFFF in the server->client ring before READY"),
    (
        "frame-flood",
        "item 5: flood cheap frames (CANCEL of unknown ids) for --duration-ms",
    ),
    ("unread-replies", "item 6: requests whose replies are never read, for --duration-ms"),
    (
        "in-flight",
        "item 6: more never-finishing calls than maxInFlight; expect TOO_MANY_REQUESTS",
    ),
    (
        "held-payloads",
        "1000 never-finishing calls of 256 KiB each (250 MiB); expect TOO_MANY_REQUESTS past maxInFlightBytes",
    ),
    (
        "ctl-fds",
        "item 7: a control frame with 8 fds (even iterations) or a second READY (odd) after READY",
    ),
    ("hello-fds", "items 7/15: HELLO carrying 2 fds; expect REJECT 6"),
    ("hello-many-fds", "item 15: HELLO carrying 12 fds; expect REJECT 6"),
    (
        "fragment-hold",
        "item 9: --connections sessions each leave a 15 MiB message unfinished",
    ),
    ("session-churn", "item 10: full sessions opened, used once and closed"),
    (
        "session-burst",
        "item 10: --connections sessions open at once, each used, held --duration-ms, then all closed together",
    ),
    ("scribble", "seeded: scribble header words and record fields of both rings"),
    (
        "scribble-live",
        "seeded: a thread scribbles both rings for --duration-ms while calls are in flight",
    ),
    ("handshake-fuzz", "seeded: random/truncated frames, wrong magic/versions/slot"),
    ("malformed-frames", "every malformed data frame of the plan's section 6"),
    ("stream-no-credit", "streams opened and never credited; other calls must go on"),
    (
        "credit-overflow",
        "a stream granted u32::MAX chunks and bytes ten times over (sums clamp at 2^31), never read for --duration-ms",
    ),
    (
        "fd-exhaust",
        "item 8: hold up to --connections sessions until the server runs out of fds, then keep connecting for --duration-ms",
    ),
];

fn iteration(attack: &str, i: usize) -> Line {
    Line::new("iteration").s("attack", attack).n("i", i as u32)
}

fn done(attack: &str, runs: usize, ok: usize) -> Line {
    Line::new("done")
        .s("attack", attack)
        .n("iterations", runs as u32)
        .n("ok", ok as u32)
}

fn ending_line(l: Line, e: &peer::Ending) -> Line {
    l.b("eof", e.eof)
        .opt("code", e.error0.as_deref())
        .b("closedWord", e.closed_word)
        .opt("ringError", e.ring_error.as_deref())
        .n("frames", e.frames as u32)
}

const END_WAIT: Duration = Duration::from_secs(3);
const CALL_WAIT: Duration = Duration::from_secs(5);

/// Runs `attack`; returns false when it is unknown.
pub fn run(attack: &str, o: &Opts) -> bool {
    match attack {
        "ring-tail-garbage" => repeat(attack, o, |i, _| ring_tail_garbage(o, i)),
        "doorbell-block" | "doorbell-flood" | "doorbell-shutdown" | "doorbell-close" => repeat(attack, o, |_, _| doorbell(attack, o)),
        "hello-close" | "welcome-close" | "ready-close" | "streams-close" => repeat(attack, o, |_, _| early_close(attack, o)),
        "storm" => repeat(attack, o, |i, _| {
            let which = ["hello-close", "welcome-close", "ready-close", "streams-close"][i % 4];
            early_close(which, o).s("variant", which)
        }),
        "head-sentinel" | "tail-sentinel" => repeat(attack, o, |_, _| sentinel(attack, o)),
        "frame-flood" => repeat(attack, o, |_, _| frame_flood(o)),
        "unread-replies" => repeat(attack, o, |_, _| unread_replies(o)),
        "in-flight" => repeat(attack, o, |_, _| in_flight(o)),
        "held-payloads" => repeat(attack, o, |_, _| held_payloads(o)),
        "ctl-fds" => repeat(attack, o, |i, _| ctl_fds(o, i)),
        "hello-fds" => repeat(attack, o, |_, _| hello_with_fds(o, 2)),
        "hello-many-fds" => repeat(attack, o, |_, _| hello_with_fds(o, 12)),
        "fragment-hold" => fragment_hold(o),
        "session-churn" => repeat(attack, o, |i, _| session_churn(o, i)),
        "session-burst" => repeat(attack, o, |_, _| session_burst(o)),
        "scribble" => repeat(attack, o, |_, rng| scribble(o, rng)),
        "scribble-live" => repeat(attack, o, |_, rng| scribble_live(o, rng)),
        "handshake-fuzz" => repeat(attack, o, |i, rng| handshake_fuzz(o, i, rng)),
        "malformed-frames" => {
            let cases = malformed_cases();
            let mut ok = 0;
            for (i, (name, frames, must_end)) in cases.iter().enumerate() {
                let (line, good) = malformed(o, i, name, frames, *must_end);
                ok += good as usize;
                line.print();
            }
            done(attack, cases.len(), ok).print();
        }
        "stream-no-credit" => repeat(attack, o, |_, _| stream_no_credit(o)),
        "credit-overflow" => repeat(attack, o, |_, _| credit_overflow(o)),
        "fd-exhaust" => repeat(attack, o, |_, _| fd_exhaust(o)),
        _ => return false,
    }
    true
}

/// Runs `one` `o.iterations` times; each returns its line with an `ok` field already set.
fn repeat(attack: &str, o: &Opts, mut one: impl FnMut(usize, &mut Rng) -> Line) {
    let mut rng = Rng::new(o.seed);
    let mut ok = 0;
    for i in 0..o.iterations {
        let l = one(i, &mut rng);
        let good = l_ok(&l);
        ok += good as usize;
        iteration(attack, i).merge(l).print();
    }
    done(attack, o.iterations, ok).print();
}

/// Our lines carry `"ok":true` or `"ok":false`; this reads it back (cheap: we wrote it).
fn l_ok(l: &Line) -> bool {
    l.contains("\"ok\":true")
}

fn connect(o: &Opts, name: &str) -> Result<Session, Line> {
    Session::connect(&o.socket, name).map_err(|e| Line::default().b("ok", false).s("error", &format!("handshake: {e}")))
}

fn ring_tail_garbage(o: &Opts, i: usize) -> Line {
    {
        let mut s = match connect(o, "adv-tail-garbage") {
            Ok(s) => s,
            Err(l) => return l,
        };
        // The reply of `slow` is sent from a promise callback (the path the issue saw crash),
        // that of `echo` synchronously: alternate.
        s.ch.rx.ring.set(off::TAIL, 1_417_435_350);
        let id = s.id();
        let req = if i.is_multiple_of(2) {
            wire::request(id, "slow", "{\"ms\":20}")
        } else {
            wire::request(id, "echo", "{\"x\":1}")
        };
        s.ch.send(&req, CALL_WAIT);
        let e = s.await_end(END_WAIT);
        ending_line(Line::default().b("ok", e.eof), &e)
    }
}

fn doorbell(attack: &str, o: &Opts) -> Line {
    let mut s = match connect(o, attack) {
        Ok(s) => s,
        Err(l) => return l,
    };
    let mut did = Vec::new();
    match attack {
        "doorbell-block" => did = s.ch.bell.poison(),
        "doorbell-flood" if bell::flood_socket(s.ch.bell.ring_fd.as_fd()) > 0 => did.push("flooded"),
        "doorbell-shutdown" => {
            for fd in s.ch.bell.fds() {
                if rustix::net::shutdown(fd, rustix::net::Shutdown::Both).is_ok() {
                    did.push("shutdown");
                }
            }
        }
        _ => {}
    }
    if attack == "doorbell-close" {
        // Replace our doorbell fds by fresh eventfds we never use, closing the real ones.
        let dummy = || rustix::event::eventfd(0, rustix::event::EventfdFlags::NONBLOCK | rustix::event::EventfdFlags::CLOEXEC);
        if let Ok(d) = dummy() {
            drop(std::mem::replace(&mut s.ch.bell.ring_fd, d));
            did.push("closed");
        }
        if s.ch.bell.own_fd.is_some() {
            s.ch.bell.own_fd = dummy().ok();
        }
    }
    s.ch.bell.quiet = true;
    // Announce sleep on the ring the server writes, so its next reply rings the poisoned bell.
    s.ch.rx.ring.set(off::CONSUMER_SLEEPING, 1);
    let started = Instant::now();
    let r = s.call("echo", "{\"bell\":1}", CALL_WAIT);
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let (ok, outcome) = match &r {
        Ok(f) if f.kind == kind::RESPONSE => (true, "reply".to_string()),
        Ok(f) => (true, format!("frame kind {}", f.kind)),
        Err(e) if e.contains("closed") || e.starts_with("session error") => (true, e.clone()),
        Err(e) => (false, e.clone()),
    };
    Line::default()
        .b("ok", ok)
        .s("outcome", &outcome)
        .s("did", &did.join(","))
        .n("replyMs", ms)
        .n("version", s.layout.version)
}

fn early_close(which: &str, o: &Opts) -> Line {
    let l = Line::default().b("ok", true);
    match which {
        "hello-close" => {
            let Ok(ctl) = Ctl::connect(&o.socket) else {
                return Line::default().b("ok", false).s("error", "connect");
            };
            let h = wire::hello("adv-hello-close");
            ctl.send_quiet(&h[..h.len() / 2]);
            l
        }
        "welcome-close" => match peer::hello(&o.socket, "adv-welcome-close") {
            Ok(mut ctl) => match peer::welcome(&mut ctl, CALL_WAIT) {
                Ok(_) => l,
                Err(e) => Line::default().b("ok", false).s("error", &e.label()),
            },
            Err(e) => Line::default().b("ok", false).s("error", &e.label()),
        },
        "ready-close" => match connect(o, "adv-ready-close") {
            // Dropped right after READY was sent: the control socket closes within microseconds.
            Ok(_) => l,
            Err(e) => e,
        },
        _ => {
            let mut s = match connect(o, "adv-streams-close") {
                Ok(s) => s,
                Err(e) => return e,
            };
            for t in 0..4 {
                s.open_stream("ticker", &format!("{{\"tag\":{t},\"intervalMs\":1}}"), Some(wire::DEFAULT_CREDIT));
            }
            let deadline = Instant::now() + Duration::from_secs(2);
            let mut chunks = 0;
            while chunks == 0 && Instant::now() < deadline {
                chunks += s.ch.drain_rx().map(|m| m.len()).unwrap_or(0);
                s.idle_wait(Duration::from_millis(1));
            }
            l.n("chunks", chunks as u32)
        }
    }
}

fn sentinel(attack: &str, o: &Opts) -> Line {
    let mut ctl = match peer::hello(&o.socket, attack) {
        Ok(c) => c,
        Err(e) => return Line::default().b("ok", false).s("error", &e.label()),
    };
    let (w, fds) = match peer::welcome(&mut ctl, CALL_WAIT) {
        Ok(x) => x,
        Err(e) => return Line::default().b("ok", false).s("error", &e.label()),
    };
    let mut s = match Session::open(ctl, w, fds) {
        Ok(s) => s,
        Err(e) => return Line::default().b("ok", false).s("error", &e),
    };
    if attack == "head-sentinel" {
        s.ch.tx.ring.set(off::HEAD, u32::MAX);
    } else {
        s.ch.rx.ring.set(off::TAIL, u32::MAX);
    }
    let _ = s.ready();
    if attack == "tail-sentinel" {
        // The server only looks at our tail when it writes: make it write.
        let id = s.id();
        s.ch.tx.record(&wire::request(id, "echo", "1"), 0);
        s.ch.flush();
    }
    let e = s.await_end(END_WAIT);
    ending_line(Line::default().b("ok", e.eof), &e)
}

fn frame_flood(o: &Opts) -> Line {
    let mut s = match connect(o, "adv-flood") {
        Ok(s) => s,
        Err(e) => return e,
    };
    let deadline = Instant::now() + Duration::from_millis(o.duration_ms);
    let mut sent: u64 = 0;
    let mut id: u32 = 0x4000_0000;
    let mut ended = false;
    // Big batches of 8-byte CANCELs for ids nobody uses: the cheapest frames there are, and the
    // server must read (and ignore) every one.
    let batch: usize = 4096;
    while Instant::now() < deadline {
        let mut n = 0;
        while n < batch {
            id = id.wrapping_add(1) | 0x4000_0000;
            if !s.ch.stage(&wire::cancel(id)) {
                break;
            }
            n += 1;
        }
        s.ch.flush();
        sent += n as u64;
        let _ = s.ch.drain_rx();
        if n < batch && s.idle_wait(Duration::from_micros(200)) {
            ended = true;
            break;
        }
    }
    Line::default().b("ok", true).n("framesSent", sent as f64).b("ended", ended)
}

fn unread_replies(o: &Opts) -> Line {
    let mut s = match connect(o, "adv-unread") {
        Ok(s) => s,
        Err(e) => return e,
    };
    s.ch.bell.quiet = true;
    // `slow` with ms 0 answers from a promise callback, so a server that does not apply
    // backpressure keeps reading requests while their replies pile up.
    let payload = format!("{{\"ms\":0,\"value\":\"{}\"}}", "x".repeat(4000));
    let deadline = Instant::now() + Duration::from_millis(o.duration_ms);
    let (mut sent, mut blocked_ms) = (0u64, 0f64);
    while Instant::now() < deadline {
        let id = s.id();
        let t = Instant::now();
        if s.ch.send(&wire::request(id, "slow", &payload), Duration::from_millis(50)) {
            sent += 1;
        } else {
            blocked_ms += t.elapsed().as_secs_f64() * 1000.0;
        }
        if s.idle_wait(Duration::ZERO) {
            break;
        }
    }
    Line::default()
        .b("ok", true)
        .n("requestsSent", sent as f64)
        .n("blockedMs", blocked_ms)
        .n(
            "outRingUsed",
            s.ch.rx.ring.word(off::HEAD).wrapping_sub(s.ch.rx.ring.word(off::TAIL)),
        )
}

fn in_flight(o: &Opts) -> Line {
    let mut s = match connect(o, "adv-in-flight") {
        Ok(s) => s,
        Err(e) => return e,
    };
    never_finishing_calls(&mut s, 3000, "{}", 1024).line()
}

/// What came back for calls to `hang`, which never answers on its own.
#[derive(Default)]
struct Refusals {
    sent: u32,
    too_many: u32,
    other: u32,
}

impl Refusals {
    /// The attack's result: ok when the server refused some of the calls.
    fn line(&self) -> Line {
        Line::default()
            .b("ok", self.too_many > 0)
            .n("sent", self.sent)
            .n("tooManyRequests", self.too_many)
            .n("otherFrames", self.other)
    }

    fn count(&mut self, s: &mut Session) {
        for f in s.ch.drain_rx().unwrap_or_default().iter().filter_map(|m| wire::Frame::parse(m)) {
            match f.error_code().as_deref() {
                Some("TOO_MANY_REQUESTS") => self.too_many += 1,
                _ => self.other += 1,
            }
        }
    }
}

/// Sends `calls` requests to `hang` with payload `json`, then waits (up to 2 s) until all but
/// `admitted` of them were answered (refused, since `hang` never answers).
fn never_finishing_calls(s: &mut Session, calls: u32, json: &str, admitted: u32) -> Refusals {
    let mut t = Refusals::default();
    for _ in 0..calls {
        let id = s.id();
        if !s.ch.send(&wire::request(id, "hang", json), CALL_WAIT) {
            break;
        }
        t.sent += 1;
        t.count(s);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && t.too_many + t.other < t.sent.saturating_sub(admitted) {
        t.count(s);
        s.idle_wait(Duration::from_millis(2));
    }
    t
}

/// Parks large payloads on a handler that never returns (`hang`): 1000 calls of 256 KiB, far
/// within `maxInFlight` calls but 250 MiB in all. The server must refuse the calls past its
/// byte limit (TOO_MANY_REQUESTS) rather than hold every payload; its RSS is the harness's to
/// watch. Ends by closing, which must free what the handlers held.
fn held_payloads(o: &Opts) -> Line {
    let mut s = match connect(o, "adv-held-payloads") {
        Ok(s) => s,
        Err(e) => return e,
    };
    let json = format!("{{\"pad\":\"{}\"}}", "x".repeat(256 << 10));
    // The default 64 MiB admits about 256 of them.
    never_finishing_calls(&mut s, 1000, &json, 256).line()
}

/// `n` fds that are cheap and recognisable in /proc: pipe ends.
fn junk_fds(n: usize) -> Vec<OwnedFd> {
    let mut v = Vec::new();
    while v.len() < n {
        if let Ok((r, w)) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
            v.push(r);
            v.push(w);
        } else {
            break;
        }
    }
    v.truncate(n);
    v
}

fn ctl_fds(o: &Opts, i: usize) -> Line {
    let mut s = match connect(o, "adv-ctl-fds") {
        Ok(s) => s,
        Err(e) => return e,
    };
    // Make sure the session is open before the fds arrive.
    let first = s.call("echo", "1", CALL_WAIT).is_ok();
    // Even iterations: an unknown control frame with 8 fds; odd ones: a second READY, no fds.
    // Any control frame after READY ends the session, and fds on it are closed at once.
    let (frame, fds) = if i.is_multiple_of(2) {
        (wire::control(99, b"fds"), junk_fds(8))
    } else {
        (wire::ready(s.welcome.slot, s.welcome.generation), Vec::new())
    };
    let b: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
    let sent = s.ctl.send(&frame, &b).is_ok();
    drop(fds);
    let e = s.await_end(Duration::from_secs(3));
    ending_line(Line::default().b("ok", e.eof).b("sessionWorked", first).b("sent", sent), &e)
}

fn hello_with_fds(o: &Opts, n: usize) -> Line {
    let Ok(mut ctl) = Ctl::connect(&o.socket) else {
        return Line::default().b("ok", false).s("error", "connect");
    };
    let fds = junk_fds(n);
    let b: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
    let sent = ctl.send(&wire::hello("adv-hello-fds"), &b);
    drop(fds);
    let r = peer::handshake_reply(&mut ctl, CALL_WAIT);
    let ok = matches!(r, HandshakeEnd::Rejected(reject::MALFORMED, _));
    let msg = if let HandshakeEnd::Rejected(_, m) = &r {
        m.clone()
    } else {
        String::new()
    };
    Line::default()
        .b("ok", ok)
        .s("got", &r.label())
        .s("message", &msg)
        .b("sent", sent.is_ok())
        .n("fds", n as u32)
}

fn fragment_hold(o: &Opts) {
    let attack = "fragment-hold";
    let mut sessions = Vec::new();
    for i in 0..o.connections {
        match connect(o, "adv-fragment-hold") {
            Ok(mut s) => {
                // 15 MiB in fragments, all but the last: the server must hold them until we finish.
                let max = s.ch.tx.ring.max_fragment() as usize;
                let total = 15 << 20;
                let frag = vec![0x5Au8; max];
                let mut sent = 0usize;
                let mut first = true;
                let mut full = false;
                let deadline = Instant::now() + Duration::from_secs(10);
                while sent + max < total {
                    let mut f = frag.clone();
                    if first {
                        let h = wire::raw_frame(kind::REQUEST, 0, 4, 1, b"echo");
                        f[..h.len()].copy_from_slice(&h);
                    }
                    let flags = if first { ring::MORE } else { ring::MORE | ring::CONT };
                    if s.ch.tx.record(&f, flags) {
                        sent += f.len();
                        first = false;
                        s.ch.flush();
                    } else if Instant::now() > deadline {
                        full = true;
                        break;
                    } else {
                        s.ch.flush();
                        if s.idle_wait(Duration::from_millis(1)) {
                            break;
                        }
                    }
                }
                Line::new("progress")
                    .s("attack", attack)
                    .n("i", i as u32)
                    .n("bytesHeld", sent as f64)
                    .b("ringStalled", full)
                    .print();
                sessions.push(s);
            }
            Err(l) => iteration(attack, i).merge(l).print(),
        }
    }
    let hold = Instant::now() + Duration::from_millis(o.duration_ms);
    let mut ok = 0;
    let n = sessions.len();
    for (i, mut s) in sessions.into_iter().enumerate() {
        let left = hold.saturating_duration_since(Instant::now());
        let e = s.await_end(left.max(Duration::from_millis(10)));
        // Past the budget a session must end with RESOURCE_EXHAUSTED; within it, it may stay.
        let good = !e.eof || e.error0.as_deref() == Some("RESOURCE_EXHAUSTED");
        ok += good as usize;
        iteration(attack, i).merge(ending_line(Line::default().b("ok", good), &e)).print();
    }
    done(attack, n, ok).print();
}

fn session_churn(o: &Opts, i: usize) -> Line {
    let mut s = match connect(o, "adv-churn") {
        Ok(s) => s,
        Err(e) => return e,
    };
    let body = format!("{{\"churn\":{i}}}");
    match s.call("echo", &body, CALL_WAIT) {
        Ok(f) if f.kind == kind::RESPONSE && f.payload == body.as_bytes() => Line::default().b("ok", true),
        Ok(f) => Line::default()
            .b("ok", false)
            .s("error", &format!("reply kind {} {:?}", f.kind, String::from_utf8_lossy(&f.payload))),
        Err(e) => Line::default().b("ok", false).s("error", &e),
    }
}

fn scribble(o: &Opts, rng: &mut Rng) -> Line {
    let mut s = match connect(o, "adv-scribble") {
        Ok(s) => s,
        Err(e) => return e,
    };
    let cap = s.welcome.capacity;
    // Some traffic first, so records exist in both rings to scribble over.
    let warm = s.call("echo", "\"warm\"", CALL_WAIT).is_ok();
    let tx_side = rng.below(2) == 0;
    let value = rng.nasty_u32(cap);
    let target;
    let id = s.id();
    let req = wire::request(id, "echo", "\"after\"");
    if rng.below(3) == 0 {
        // A record field of a request we are about to publish (tx) or of the last reply (rx).
        let field = *rng.pick(&["len", "flags", "kind", "methodLen", "id"]);
        let at = if tx_side {
            s.ch.tx.head
        } else {
            s.ch.rx.tail.wrapping_sub(8 + 24) & !7
        };
        if tx_side {
            s.ch.tx.record(&req, 0);
        }
        let ring = if tx_side { &s.ch.tx.ring } else { &s.ch.rx.ring };
        let word_at = ring::HEADER
            + (at & (cap - 1)) as u64
            + match field {
                "len" => 0,
                "flags" => 4,
                "kind" | "methodLen" => 8,
                _ => 12,
            };
        let v = match field {
            "kind" => (ring.word(word_at) & !0xFF) | (value & 0xFF),
            "methodLen" => (ring.word(word_at) & 0xFFFF) | (value << 16),
            _ => value,
        };
        ring.set(word_at, v);
        target = format!("{}.record.{field}", if tx_side { "c2s" } else { "s2c" });
        if tx_side {
            s.ch.flush();
        }
    } else {
        let (word, name) = *rng.pick(&ring::HEADER_WORDS);
        let ring = if tx_side { &s.ch.tx.ring } else { &s.ch.rx.ring };
        ring.set(word, value);
        target = format!("{}.{name}", if tx_side { "c2s" } else { "s2c" });
        s.ch.send(&req, Duration::from_millis(500));
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut outcome = "silent".to_string();
    loop {
        match s.ch.drain_rx() {
            Ok(msgs) => {
                for m in msgs {
                    if let Some(f) = wire::Frame::parse(&m) {
                        if f.id == id && f.kind == kind::RESPONSE {
                            outcome = "reply".into();
                        } else if f.id == 0 && f.kind == kind::ERROR {
                            outcome = format!("error0 {}", f.error_code().unwrap_or_default());
                        } else if f.id == id {
                            outcome = format!("reply kind {} {}", f.kind, f.error_code().unwrap_or_default());
                        } else if f.kind == kind::RESPONSE || f.kind == kind::ERROR {
                            // A scribbled id: the server answered the id it read.
                            outcome = format!("reply to id {}", f.id);
                        }
                    }
                }
            }
            Err(_) => {
                // We broke our own view of the server's ring (we wrote its producer words):
                // only the server's liveness and clean-up say anything now.
                outcome = "own-view-broken".into();
            }
        }
        if outcome != "silent" && !outcome.starts_with("error0") {
            break;
        }
        if s.idle_wait(Duration::from_millis(2)) {
            outcome = if outcome.starts_with("error0") {
                format!("{outcome}, ended")
            } else {
                "ended".into()
            };
            break;
        }
        if Instant::now() > deadline {
            break;
        }
    }
    // Silence is fine only for scribbles that a server may legitimately not notice yet.
    // Words the server writes and never reads back (its own index copies) only break our view.
    let harmless =
        target.ends_with("consumer_sleeping") || target.ends_with("producer_waiting") || target.starts_with("s2c") || target == "c2s.tail";
    let ok = outcome != "silent" || harmless;
    Line::default()
        .b("ok", ok)
        .s("target", &target)
        .n("value", value)
        .s("outcome", &outcome)
        .b("warm", warm)
}

/// What a fuzz case may legitimately get back.
fn fuzz_case(i: usize, rng: &mut Rng) -> (&'static str, Vec<u8>, &'static [&'static str]) {
    let pid = std::process::id();
    let (min, max) = wire::offered_versions();
    let malformed: &[&str] = &["reject6", "eof"];
    let cases = 14;
    let pick = if i < cases { i } else { rng.below(cases + 2) };
    match pick {
        0 => (
            "bad-magic",
            wire::control(wire::ctl::HELLO, &wire::hello_body(0xDEAD_BEEF, min, max, pid, b"x")),
            &["reject1"],
        ),
        1 => (
            "no-common-version",
            wire::control(wire::ctl::HELLO, &wire::hello_body(wire::HELLO_MAGIC, 90, 99, pid, b"x")),
            &["reject2"],
        ),
        2 => (
            "version-zero",
            wire::control(wire::ctl::HELLO, &wire::hello_body(wire::HELLO_MAGIC, 0, 0, pid, b"x")),
            &["reject2"],
        ),
        3 => (
            "reversed-range",
            wire::control(wire::ctl::HELLO, &wire::hello_body(wire::HELLO_MAGIC, max + 3, min, pid, b"x")),
            &["reject2", "reject6"],
        ),
        4 => (
            "wrong-pid",
            wire::control(
                wire::ctl::HELLO,
                &wire::hello_body(wire::HELLO_MAGIC, min, max, pid ^ 0x40_0000, b"x"),
            ),
            &["reject4"],
        ),
        5 => {
            let mut f = wire::hello("x");
            f.truncate(10);
            ("truncated-hello", f, &["eof", "reject5", "reject6"])
        }
        6 => ("zero-length", 0u32.to_le_bytes().to_vec(), malformed),
        7 => {
            let mut f = 100_000u32.to_le_bytes().to_vec();
            f.push(wire::ctl::HELLO);
            ("huge-length", f, malformed)
        }
        8 => ("ready-first", wire::ready(0, 1), malformed),
        9 => {
            let mut b = wire::hello_body(wire::HELLO_MAGIC, min, max, pid, b"x");
            b.truncate(b.len() - 1);
            b[16] = 200;
            ("bad-text-length", wire::control(wire::ctl::HELLO, &b), malformed)
        }
        10 => (
            "non-utf8-name",
            wire::control(
                wire::ctl::HELLO,
                &wire::hello_body(wire::HELLO_MAGIC, min, max, pid, &[0xFF, 0xFE, 0xC0]),
            ),
            malformed,
        ),
        11 => ("unknown-type", wire::control(42, b"hello?"), malformed),
        12 => ("welcome-from-client", wire::Welcome::default().frame(), malformed),
        13 => ("empty-hello", wire::control(wire::ctl::HELLO, &[]), malformed),
        14 => {
            let n = 1 + rng.below(64);
            ("random-bytes", rng.bytes(n), &["eof", "reject1", "reject2", "reject5", "reject6"])
        }
        _ => {
            let mut f = wire::hello("x");
            let cut = 1 + rng.below(f.len() - 1);
            let at = rng.below(f.len());
            f[at] ^= 1 << rng.below(8);
            f.truncate(cut.max(5));
            (
                "flipped-truncated-hello",
                f,
                &["eof", "reject1", "reject2", "reject4", "reject5", "reject6", "welcome"],
            )
        }
    }
}

fn ready_cases() -> [(&'static str, i64, i64); 3] {
    [
        ("ready-wrong-slot", 1, 0),
        ("ready-wrong-generation", 0, 1),
        ("ready-short", -1, -1),
    ]
}

fn handshake_fuzz(o: &Opts, i: usize, rng: &mut Rng) -> Line {
    let n_ready = ready_cases().len();
    // The first iterations walk through READY cases and the two after-WELCOME cases, then the
    // frame cases; afterwards every case is drawn at random.
    if i < n_ready || (i >= 16 + n_ready && rng.below(5) == 0) {
        let (name, ds, dg) = ready_cases()[i % n_ready];
        let mut ctl = match peer::hello(&o.socket, "adv-fuzz") {
            Ok(c) => c,
            Err(e) => return Line::default().b("ok", false).s("error", &e.label()),
        };
        let (w, _fds) = match peer::welcome(&mut ctl, CALL_WAIT) {
            Ok(x) => x,
            Err(e) => return Line::default().b("ok", false).s("error", &e.label()),
        };
        let frame = if ds < 0 {
            wire::control(wire::ctl::READY, &w.slot.to_le_bytes())
        } else {
            wire::ready(
                w.slot.wrapping_add(ds as u32 + 1000 * ds as u32),
                w.generation.wrapping_add(dg as u32 * 7),
            )
        };
        ctl.send_quiet(&frame);
        let r = peer::handshake_reply(&mut ctl, CALL_WAIT);
        let got = r.label();
        return Line::default().b("ok", got == "reject6").s("case", name).s("got", &got);
    }
    let (name, bytes, expect) = fuzz_case(i - n_ready.min(i), rng);
    let Ok(mut ctl) = Ctl::connect(&o.socket) else {
        return Line::default().b("ok", false).s("error", "connect");
    };
    ctl.send_quiet(&bytes);
    if name == "truncated-hello" || name == "random-bytes" || name == "flipped-truncated-hello" {
        ctl.shutdown_write();
    }
    let got = match ctl.recv(CALL_WAIT) {
        Got::Frame { kind, .. } if kind == wire::ctl::WELCOME => "welcome".to_string(),
        Got::Frame { kind, body, .. } if kind == wire::ctl::REJECT => format!("reject{}", wire::parse_reject(&body).0),
        Got::Frame { kind, .. } => format!("frame{kind}"),
        Got::Eof => "eof".into(),
        Got::Timeout => "timeout".into(),
        Got::BadLength(n) => format!("badlength{n}"),
    };
    Line::default()
        .b("ok", expect.contains(&got.as_str()))
        .s("case", name)
        .s("got", &got)
}

type Case = (&'static str, Vec<Vec<u8>>, bool);

/// Every malformed frame of the plan's §6 (must end the session with PROTOCOL_ERROR), and the
/// near misses that must not (unknown-id CANCEL and STREAM_CREDIT are ignored).
fn malformed_cases() -> Vec<Case> {
    let f = wire::raw_frame;
    let r = |id: u32| wire::request(id, "hang", "{}");
    vec![
        ("short-frame", vec![vec![kind::REQUEST, 1, 0, 0, 1, 0]], true),
        ("empty-frame", vec![vec![]], true),
        ("unknown-kind-0", vec![f(0, 0, 0, 1, b"")], true),
        ("unknown-kind-9", vec![f(9, 0, 0, 1, b"")], true),
        ("unknown-kind-255", vec![f(255, 0, 0, 1, b"")], true),
        ("server-kind-response", vec![f(kind::RESPONSE, 1, 0, 1, b"null")], true),
        ("server-kind-error", vec![f(kind::ERROR, 1, 0, 1, b"{}")], true),
        ("server-kind-chunk", vec![f(kind::STREAM_CHUNK, 1, 0, 1, b"1")], true),
        ("server-kind-end", vec![f(kind::STREAM_END, 0, 0, 1, b"")], true),
        ("reserved-flags", vec![f(kind::REQUEST, 0x82, 4, 1, b"echo1")], true),
        ("method-on-cancel", vec![f(kind::CANCEL, 0, 4, 1, b"echo")], true),
        ("method-past-end", vec![f(kind::REQUEST, 1, 200, 1, b"echo")], true),
        ("empty-method", vec![f(kind::REQUEST, 1, 0, 1, b"1")], true),
        ("method-256", vec![f(kind::REQUEST, 0, 256, 1, &[b'm'; 256])], true),
        ("non-utf8-method", vec![f(kind::REQUEST, 0, 3, 1, &[0xFF, 0xC0, 0x80])], true),
        ("id-zero", vec![wire::request(0, "echo", "1")], true),
        ("id-in-use", vec![r(7), r(7)], true),
        (
            "stream-id-in-use",
            vec![wire::stream_open(9, "ticker", "{\"count\":1000000,\"intervalMs\":50}"), r(9)],
            true,
        ),
        ("cancel-with-payload", vec![f(kind::CANCEL, 0, 0, 1, b"x")], true),
        ("credit-short", vec![f(kind::STREAM_CREDIT, 0, 0, 1, &[1, 0, 0, 0])], true),
        ("credit-long", vec![f(kind::STREAM_CREDIT, 0, 0, 1, &[1; 12])], true),
        ("cancel-unknown-id", vec![wire::cancel(12345)], false),
        ("credit-unknown-id", vec![wire::credit(12345, 10, 1000)], false),
    ]
}

fn malformed(o: &Opts, i: usize, name: &str, frames: &[Vec<u8>], must_end: bool) -> (Line, bool) {
    let base = iteration("malformed-frames", i).s("case", name);
    let mut s = match connect(o, "adv-malformed") {
        Ok(s) => s,
        Err(l) => return (base.merge(l), false),
    };
    // Use ids the cases do not, so the probe's reply is ours.
    for _ in 0..100 {
        s.id();
    }
    for fr in frames {
        s.ch.stage(fr);
    }
    s.ch.flush();
    if must_end {
        let e = s.await_end(END_WAIT);
        let ok = e.eof;
        (base.merge(ending_line(Line::default().b("ok", ok), &e)), ok)
    } else {
        let r = s.call("echo", "\"still here\"", CALL_WAIT);
        let ok = matches!(&r, Ok(f) if f.kind == kind::RESPONSE);
        (base.b("ok", ok).s("outcome", &format!("{:?}", r.map(|f| f.kind))), ok)
    }
}

fn stream_no_credit(o: &Opts) -> Line {
    let mut s = match connect(o, "adv-no-credit") {
        Ok(s) => s,
        Err(e) => return e,
    };
    for t in 0..16 {
        s.open_stream("ticker", &format!("{{\"tag\":{t},\"bytes\":true}}"), None);
    }
    // Other calls on the same connection must go on while those streams wait for credit.
    let started = Instant::now();
    let mut chunks = 0usize;
    let mut ok = true;
    for k in 0..20 {
        let id = s.id();
        let body = format!("{{\"k\":{k}}}");
        s.ch.send(&wire::request(id, "echo", &body), CALL_WAIT);
        let deadline = Instant::now() + CALL_WAIT;
        let mut got = false;
        while !got && Instant::now() < deadline {
            for m in s.ch.drain_rx().unwrap_or_default() {
                if let Some(f) = wire::Frame::parse(&m) {
                    if f.kind == kind::STREAM_CHUNK {
                        chunks += 1;
                    }
                    if f.id == id && f.kind == kind::RESPONSE {
                        got = true;
                    }
                }
            }
            if !got && s.idle_wait(Duration::from_millis(1)) {
                break;
            }
        }
        ok &= got;
    }
    Line::default()
        .b("ok", ok && (!s.layout.credit || chunks == 0))
        .n("chunksWithoutCredit", chunks as u32)
        .n("echoMs", started.elapsed().as_secs_f64() * 1000.0)
        .n("version", s.layout.version)
}

fn fd_exhaust(o: &Opts) -> Line {
    let mut held = Vec::new();
    let mut refused = String::new();
    while held.len() < o.connections {
        match Session::connect(&o.socket, "adv-fd-exhaust") {
            Ok(s) => held.push(s),
            Err(e) => {
                refused = e;
                break;
            }
        }
    }
    // At the limit: every new connection makes the server's accept() fail (EMFILE) or its
    // handshake fail; keep knocking so a server that busy-loops on it shows it.
    let deadline = Instant::now() + Duration::from_millis(o.duration_ms);
    let mut outcomes: std::collections::BTreeMap<String, u32> = Default::default();
    while Instant::now() < deadline {
        let label = match Ctl::connect(&o.socket) {
            Ok(mut ctl) => {
                ctl.send_quiet(&wire::hello("adv-fd-exhaust-knock"));
                match ctl.recv(Duration::from_millis(300)) {
                    Got::Frame { kind, body, .. } if kind == wire::ctl::REJECT => format!("reject{}", wire::parse_reject(&body).0),
                    Got::Frame { kind, .. } => format!("frame{kind}"),
                    Got::Eof => "eof".into(),
                    Got::Timeout => "timeout".into(),
                    Got::BadLength(_) => "badlength".into(),
                }
            }
            Err(e) => format!("connect: {}", e.kind()),
        };
        *outcomes.entry(label).or_default() += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    let summary: Vec<String> = outcomes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Line::default()
        .b("ok", true)
        .n("sessionsHeld", held.len() as u32)
        .s("firstRefusal", &refused)
        .s("knocks", &summary.join(","))
}

fn session_burst(o: &Opts) -> Line {
    let mut open = Vec::new();
    let mut served = 0;
    let mut error = String::new();
    for i in 0..o.connections {
        match Session::connect(&o.socket, "adv-burst") {
            Ok(mut s) => {
                if s.call("echo", &format!("{{\"burst\":{i}}}"), CALL_WAIT)
                    .is_ok_and(|f| f.kind == kind::RESPONSE)
                {
                    served += 1;
                }
                open.push(s);
            }
            Err(e) => {
                error = e;
                break;
            }
        }
    }
    let n = open.len();
    Line::new("holding").n("sessions", n as u32).print();
    std::thread::sleep(Duration::from_millis(o.duration_ms));
    drop(open);
    Line::default()
        .b("ok", served == o.connections)
        .n("opened", n as u32)
        .n("served", served as u32)
        .s("error", &error)
}

fn credit_overflow(o: &Opts) -> Line {
    let mut s = match connect(o, "adv-credit-overflow") {
        Ok(s) => s,
        Err(e) => return e,
    };
    let Some(id) = s.open_stream("ticker", "{\"tag\":1,\"bytes\":true}", None) else {
        return Line::default().b("ok", false).s("error", "ring full");
    };
    for _ in 0..10 {
        s.ch.stage(&wire::credit(id, u32::MAX, u32::MAX));
    }
    s.ch.flush();
    // Never read: the server's stream must stop at the full ring (backpressure), not queue.
    std::thread::sleep(Duration::from_millis(o.duration_ms));
    let used = s.ch.rx.ring.word(off::HEAD).wrapping_sub(s.ch.rx.ring.word(off::TAIL));
    let mut chunks = 0usize;
    let deadline = Instant::now() + Duration::from_millis(300);
    while Instant::now() < deadline {
        chunks += s.ch.drain_rx().map(|m| m.len()).unwrap_or(0);
        if s.idle_wait(Duration::from_millis(1)) {
            break;
        }
    }
    // Still served afterwards: the stream flows once read, and another call answers.
    let echo = s.call("echo", "\"after\"", CALL_WAIT).is_ok_and(|f| f.kind == kind::RESPONSE);
    Line::default()
        .b("ok", chunks > 0 && echo)
        .n("ringUsedWhileUnread", used)
        .n("chunksAfter", chunks as u32)
        .b("echoAfter", echo)
}

fn scribble_live(o: &Opts, rng: &mut Rng) -> Line {
    let mut s = match connect(o, "adv-scribble-live") {
        Ok(s) => s,
        Err(e) => return e,
    };
    let (Ok(tx), Ok(rx)) = (s.ch.tx.ring.try_clone(), s.ch.rx.ring.try_clone()) else {
        return Line::default().b("ok", false).s("error", "dup");
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut thread_rng = Rng::new(rng.next_u64());
    let cap = s.welcome.capacity;
    let scribbler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut writes = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let ring = if thread_rng.below(2) == 0 { &tx } else { &rx };
                let at = if thread_rng.below(3) == 0 {
                    ring::HEADER_WORDS[thread_rng.below(ring::HEADER_WORDS.len())].0
                } else {
                    ring::HEADER + 4 * thread_rng.below(cap as usize / 4) as u64
                };
                ring.set(at, thread_rng.nasty_u32(cap));
                writes += 1;
                std::thread::sleep(Duration::from_micros(50 + thread_rng.below(200) as u64));
            }
            writes
        })
    };
    let deadline = Instant::now() + Duration::from_millis(o.duration_ms);
    let (mut replies, mut failures, mut ended) = (0u32, 0u32, false);
    while Instant::now() < deadline {
        match s.call("echo", "\"live\"", Duration::from_millis(100)) {
            Ok(_) => replies += 1,
            Err(e) if e.contains("closed") => {
                ended = true;
                break;
            }
            Err(_) => failures += 1,
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = scribbler.join().unwrap_or(0);
    Line::default()
        .b("ok", true)
        .n("scribbles", writes)
        .n("replies", replies)
        .n("failedCalls", failures)
        .b("sessionEnded", ended)
}
