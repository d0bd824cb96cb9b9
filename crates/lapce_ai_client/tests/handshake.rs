//! The handshake against the real Node server: a normal connect, and every REJECT the server
//! can be made to send (raw frames for the ones a correct client never provokes).

mod common;

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{temp_socket, Server};
use lapce_ai_client::wire::control::{ControlFrame, ControlReader, Hello, HELLO_MAGIC};
use lapce_ai_client::{Client, ClientOptions, Error, RejectReason};
use lapce_ai_transport::ControlStream;

/// Sends raw bytes on a fresh control connection and returns the server's first frame and the
/// fds that came with it.
fn exchange(socket: &Path, bytes: &[u8]) -> (ControlFrame, Vec<OwnedFd>, ControlStream) {
    let ctl = ControlStream::connect(&socket.with_extension("sock.ctl")).unwrap();
    assert_eq!(ctl.send(bytes, &[]).unwrap(), bytes.len());
    let (frame, fds) = read_frame(&ctl);
    (frame, fds, ctl)
}

fn read_frame(ctl: &ControlStream) -> (ControlFrame, Vec<OwnedFd>) {
    let mut reader = ControlReader::default();
    let mut fds = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(f) = reader.next_frame().unwrap() {
            return (f, fds);
        }
        assert!(Instant::now() < deadline, "no reply from the server");
        match ctl.recv(&mut buf).unwrap() {
            Some(r) if r.bytes == 0 => panic!("server closed without a frame"),
            Some(r) => {
                fds.extend(r.fds);
                reader.push(&buf[..r.bytes]);
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn hello(min: u16, max: u16, pid: u32) -> Vec<u8> {
    ControlFrame::Hello(Hello {
        magic: HELLO_MAGIC,
        min_version: min,
        max_version: max,
        pid,
        features: 0,
        name: "raw-test".into(),
    })
    .encode()
}

fn expect_reject(frame: ControlFrame, reason: RejectReason) -> String {
    match frame {
        ControlFrame::Reject(r) => {
            assert_eq!(r.reason, reason, "{}", r.message);
            r.message
        }
        other => panic!("expected REJECT {reason}, got {other:?}"),
    }
}

#[test]
fn connect_maps_the_channel_and_reports_the_session() {
    let server = Server::fixture("ok", &["--max-streams", "7"]);
    let client = server.connect();
    let w = client.session();
    assert_eq!((w.version, w.max_streams, w.ring_capacity), (2, 7, 1 << 20));
    assert!(w.generation >= 1);
    // Both spellings of the path work.
    let ctl = format!("{}.ctl", server.socket.display());
    let c2 = Client::connect(&ctl, ClientOptions::default()).unwrap();
    c2.ping().unwrap();
    client.ping().unwrap();
}

#[test]
fn a_server_running_as_an_untrusted_uid_gets_nothing() {
    let server = Server::fixture("ok", &[]);
    let me = rustix::process::getuid().as_raw();
    let other = if me == 12345 { 12346 } else { 12345 };
    let untrusting = ClientOptions {
        server_uids: vec![other],
        ..ClientOptions::default()
    };
    match Client::connect(&server.socket, untrusting) {
        Err(Error::PeerNotTrusted { uid, trusted }) => assert_eq!((uid, trusted), (me, vec![other])),
        Err(e) => panic!("expected PeerNotTrusted, got {e}"),
        Ok(_) => panic!("connected to a server whose uid is not trusted"),
    }
    // The same server is fine once its uid is trusted, and the refused attempt left no session.
    let trusting = ClientOptions {
        server_uids: vec![other, me],
        ..ClientOptions::default()
    };
    Client::connect(&server.socket, trusting).unwrap().ping().unwrap();
}

#[test]
fn welcome_carries_exactly_three_checked_fds() {
    let server = Server::fixture("fds", &[]);
    let (frame, fds, _ctl) = exchange(&server.socket, &hello(2, 2, std::process::id()));
    assert!(matches!(frame, ControlFrame::Welcome(ref w) if w.version == 2), "{frame:?}");
    assert_eq!(fds.len(), 3);
    let st: Vec<_> = fds.iter().map(|f| rustix::fs::fstat(f).unwrap()).collect();
    assert_ne!(st[0].st_ino, st[1].st_ino, "two different rings");
    assert_eq!(rustix::fs::FileType::from_raw_mode(st[2].st_mode), rustix::fs::FileType::Socket);
}

#[test]
fn no_server_is_an_io_error_not_a_hang() {
    let err = Client::connect(temp_socket("none"), ClientOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Io {
                kind: std::io::ErrorKind::NotFound,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.retryable());
}

#[test]
fn reject_1_bad_magic() {
    let server = Server::fixture("magic", &[]);
    let mut bytes = hello(2, 2, std::process::id());
    bytes[5] ^= 0xff;
    expect_reject(exchange(&server.socket, &bytes).0, RejectReason::BadMagic);
}

#[test]
fn reject_2_no_common_version_names_the_servers() {
    let server = Server::fixture("version", &[]);
    let msg = expect_reject(
        exchange(&server.socket, &hello(1, 1, std::process::id())).0,
        RejectReason::NoCommonVersion,
    );
    assert!(msg.contains('2'), "the message names the version the server speaks: {msg}");
    let msg = expect_reject(
        exchange(&server.socket, &hello(3, 9, std::process::id())).0,
        RejectReason::NoCommonVersion,
    );
    assert!(msg.contains('2'), "{msg}");
    // A range containing 2 is fine.
    assert!(matches!(
        exchange(&server.socket, &hello(1, 3, std::process::id())).0,
        ControlFrame::Welcome(_)
    ));
}

#[test]
fn reject_3_uid_not_allowed() {
    let other = rustix::process::getuid().as_raw().wrapping_add(4242).to_string();
    let server = Server::fixture("uid", &["--allowed-uid", &other]);
    let err = Client::connect(&server.socket, ClientOptions::default()).unwrap_err();
    assert_eq!(err.reject_reason(), Some(RejectReason::UidMismatch), "{err:?}");
    assert_eq!(err.code(), "HANDSHAKE_REJECTED");
}

#[test]
fn reject_4_pid_mismatch_and_check_pid_off() {
    let server = Server::fixture("pid", &[]);
    let wrong = std::process::id() + 1;
    expect_reject(exchange(&server.socket, &hello(2, 2, wrong)).0, RejectReason::PidMismatch);
    // A sandboxed editor sees another pid namespace: checkPid false lets it in (uid still checked).
    let lenient = Server::fixture("pid-off", &["--check-pid", "false"]);
    assert!(matches!(exchange(&lenient.socket, &hello(2, 2, wrong)).0, ControlFrame::Welcome(_)));
}

#[test]
fn reject_5_no_ready_in_time() {
    let server = Server::fixture("timeout", &["--handshake-timeout-ms", "200"]);
    let (frame, fds, ctl) = exchange(&server.socket, &hello(2, 2, std::process::id()));
    assert!(matches!(frame, ControlFrame::Welcome(_)));
    drop(fds);
    // Never send READY.
    expect_reject(read_frame(&ctl).0, RejectReason::Timeout);
}

#[test]
fn reject_6_malformed_frames() {
    let server = Server::fixture("malformed", &[]);
    // Trailing bytes after HELLO's text.
    let mut bytes = hello(2, 2, std::process::id());
    bytes.push(0);
    bytes[0] += 1;
    expect_reject(exchange(&server.socket, &bytes).0, RejectReason::Malformed);
    // Not a HELLO first.
    let ready = ControlFrame::Ready { slot: 0, generation: 0 }.encode();
    expect_reject(exchange(&server.socket, &ready).0, RejectReason::Malformed);
    // A length of 0.
    expect_reject(exchange(&server.socket, &[0, 0, 0, 0, 1]).0, RejectReason::Malformed);
}

#[test]
fn reject_6_ready_naming_another_generation() {
    let server = Server::fixture("ready", &[]);
    let (frame, _fds, ctl) = exchange(&server.socket, &hello(2, 2, std::process::id()));
    let ControlFrame::Welcome(w) = frame else { panic!("{frame:?}") };
    let ready = ControlFrame::Ready {
        slot: w.slot,
        generation: w.generation + 1,
    }
    .encode();
    ctl.send(&ready, &[]).unwrap();
    expect_reject(read_frame(&ctl).0, RejectReason::Malformed);
}

#[test]
fn reject_7_server_full() {
    let server = Server::fixture("full", &["--max-connections", "1"]);
    let first = server.connect();
    let err = Client::connect(&server.socket, ClientOptions::default()).unwrap_err();
    assert_eq!(err.reject_reason(), Some(RejectReason::ServerFull), "{err:?}");
    assert!(err.retryable());
    // The slot frees when the first client goes.
    drop(first);
    assert!(common::eventually(Duration::from_secs(5), || Client::connect(
        &server.socket,
        ClientOptions::default()
    )
    .is_ok()));
}

#[test]
fn reject_8_a_handshake_in_progress_at_shutdown() {
    let server = Server::fixture("shutdown", &[]);
    let (frame, _fds, ctl) = exchange(&server.socket, &hello(2, 2, std::process::id()));
    assert!(matches!(frame, ControlFrame::Welcome(_)), "{frame:?}");
    // READY is never sent; the server shuts down meanwhile.
    let admin = server.connect();
    admin
        .request_json::<_, serde_json::Value>("shutdown", &serde_json::json!({"deadlineMs": 1000}))
        .unwrap();
    expect_reject(read_frame(&ctl).0, RejectReason::ShuttingDown);
}

#[test]
fn reject_9_when_the_server_runs_out_of_fds() {
    // Node needs a few dozen fds of its own; each session takes more. Under a low limit the
    // server must refuse with REJECT 9, not crash or hang.
    let server = Server::fixture_limited("fds-limit", 96);
    let mut clients = Vec::new();
    let err = loop {
        match Client::connect(&server.socket, ClientOptions::default()) {
            Ok(c) => clients.push(c),
            Err(e) => break e,
        }
        assert!(clients.len() < 200, "the fd limit never bit");
    };
    assert_eq!(err.reject_reason(), Some(RejectReason::Internal), "{err:?}");
    // The sessions already open still work.
    clients[0].ping().unwrap();
}
