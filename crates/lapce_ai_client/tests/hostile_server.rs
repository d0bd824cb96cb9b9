//! The client against a server that breaks the rules: a fake server in this process, built on
//! the transport crate, speaking the protocol by hand. Each misbehaviour must give a typed error
//! and a closed connection, never a hang, a panic or unbounded memory.

mod common;

use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lapce_ai_client::wire::control::{ControlFrame, ControlReader, Welcome};
use lapce_ai_client::wire::frame::{self, Kind};
use lapce_ai_client::{Client, ClientOptions, Error, Payload, RejectReason, StreamOptions};
use lapce_ai_transport::{ChannelFds, ControlListener, ControlStream, Endpoint, Next, Side};

const CAPACITY: usize = 4096;

/// Which fds the fake WELCOME carries.
#[derive(Clone, Copy)]
enum Fds {
    Good,
    Two,
    Four,
    UnsealedRing,
}

fn read_control(ctl: &ControlStream, reader: &mut ControlReader) -> Option<ControlFrame> {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(f) = reader.next_frame().unwrap() {
            return Some(f);
        }
        if Instant::now() > deadline {
            return None;
        }
        match ctl.recv(&mut buf) {
            Ok(Some(r)) if r.bytes == 0 => return None,
            Ok(Some(r)) => reader.push(&buf[..r.bytes]),
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            Err(_) => return None,
        }
    }
}

/// Starts a fake server for one connection; `session` runs after READY with the server's
/// endpoint. Returns the socket path and a receiver of the client's reply to WELCOME.
fn fake_server(
    fds: Fds,
    session: impl FnOnce(&mut Endpoint, &ControlStream) + Send + 'static,
) -> (PathBuf, mpsc::Receiver<Option<ControlFrame>>, std::thread::JoinHandle<()>) {
    let socket = common::temp_socket("hostile");
    let ctl_path = PathBuf::from(format!("{}.ctl", socket.display()));
    let listener = ControlListener::bind(&ctl_path).unwrap();
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let ctl = loop {
            if let Some(c) = listener.accept().unwrap() {
                break c;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let mut reader = ControlReader::default();
        assert!(matches!(read_control(&ctl, &mut reader), Some(ControlFrame::Hello(_))));
        let new = ChannelFds::create(CAPACITY).unwrap();
        let welcome = ControlFrame::Welcome(Welcome {
            version: 2,
            slot: 0,
            generation: 1,
            ring_capacity: CAPACITY as u32,
            max_message: 1 << 20,
            max_streams: 8,
            features: 0,
            idle_timeout_ms: 0,
            server_pid: std::process::id(),
        })
        .encode();
        let wire = new.wire();
        let unsealed = rustix::fs::memfd_create("unsealed", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&unsealed, (512 + CAPACITY) as u64).unwrap();
        let sent: Vec<BorrowedFd<'_>> = match fds {
            Fds::Good => wire.to_vec(),
            Fds::Two => wire[..2].to_vec(),
            Fds::Four => vec![wire[0], wire[1], wire[2], wire[2]],
            Fds::UnsealedRing => vec![unsealed.as_fd(), wire[1], wire[2]],
        };
        assert_eq!(ctl.send(&welcome, &sent).unwrap(), welcome.len());
        let reply = read_control(&ctl, &mut reader);
        let ready = matches!(reply, Some(ControlFrame::Ready { .. }));
        tx.send(reply).unwrap();
        if ready {
            let mut ep = Endpoint::open(new.server, Side::Server, CAPACITY, 16 << 20).unwrap();
            session(&mut ep, &ctl);
            // Linger until the client has gone, so it sees what the session did, not our exit.
            let mut buf = [0u8; 64];
            let until = Instant::now() + Duration::from_secs(10);
            while Instant::now() < until && !matches!(ctl.recv(&mut buf), Ok(Some(r)) if r.bytes == 0) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    (socket, rx, handle)
}

/// The next whole message from the client (the fake server's side of PROTOCOL.md §3.5).
fn recv_frame(ep: &mut Endpoint) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(next) = ep.next_message().unwrap() {
            let out = match next {
                Next::InPlace { offset, len } => {
                    let mut v = vec![0; len];
                    ep.rx_mapping().read_bytes(offset, &mut v);
                    v
                }
                Next::Assembled(v) => v,
            };
            ep.release().unwrap();
            return out;
        }
        ep.release().unwrap();
        assert!(Instant::now() < deadline, "no frame from the client");
        if ep.prepare_sleep(0).unwrap() {
            ep.own_doorbell().wait(Some(Duration::from_millis(10))).unwrap();
            ep.woke().unwrap();
        }
    }
}

/// Writes one message, waiting for space (§3.4); false when the client stopped reading (or
/// closed) before it all went in.
fn try_send(ep: &mut Endpoint, bytes: &[u8]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut progress = 0;
    while !ep.write(bytes, &mut progress).unwrap() {
        if Instant::now() > deadline || ep.peer_closed() {
            return false;
        }
        let need = ep.space_needed(bytes.len() - progress);
        if ep.prepare_sleep(need).unwrap() {
            ep.own_doorbell().wait(Some(Duration::from_millis(10))).unwrap();
            ep.woke().unwrap();
        }
    }
    true
}

fn send(ep: &mut Endpoint, bytes: &[u8]) {
    assert!(try_send(ep, bytes), "the client stopped reading");
}

fn json(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

fn request(client: &Client) -> lapce_ai_client::Result<Payload> {
    client.request("m", &Payload::null(), Some(Duration::from_secs(10)))
}

#[test]
fn a_chunk_beyond_the_window_is_a_protocol_error() {
    let (socket, _rx, t) = fake_server(Fds::Good, |ep, _| {
        let open = recv_frame(ep);
        let id = frame::decode(&open).unwrap().id;
        let credit = recv_frame(ep);
        assert_eq!(credit, frame::credit(id, 2, 1 << 20), "initial window right after STREAM_OPEN");
        for i in 0..3u8 {
            send(ep, &frame::encode(Kind::StreamChunk, id, "", false, &[i]));
        }
    });
    let client = Client::connect(&socket, ClientOptions::default()).unwrap();
    let opts = StreamOptions {
        window: Some((2, 1 << 20)),
        ..Default::default()
    };
    let mut s = client.stream_with("s", &Payload::null(), opts).unwrap();
    // The connection fails as the third chunk is read; the two granted ones may or may not
    // have been handed out first, but the stream ends with the protocol error.
    let err = s.find_map(|r| r.err()).expect("the stream fails");
    assert_eq!(err.code(), "PROTOCOL_ERROR", "{err:?}");
    assert!(!client.is_connected());
    drop(client);
    t.join().unwrap();
}

#[test]
fn a_malformed_frame_ends_the_connection() {
    let (socket, _rx, t) = fake_server(Fds::Good, |ep, _| {
        recv_frame(ep);
        send(ep, &[9, 0, 0, 0, 1, 0, 0, 0]);
    });
    let client = Client::connect(&socket, ClientOptions::default()).unwrap();
    let err = request(&client).unwrap_err();
    assert_eq!(err.code(), "PROTOCOL_ERROR", "{err:?}");
    assert!(!client.is_connected());
    drop(client);
    t.join().unwrap();
}

#[test]
fn an_id_0_error_fails_the_calls_in_flight_with_its_code() {
    let (socket, _rx, t) = fake_server(Fds::Good, |ep, _| {
        recv_frame(ep);
        let body = json(serde_json::json!({"code": "RING_CORRUPT", "message": "bad tail", "retryable": false}));
        send(ep, &frame::encode(Kind::Error, 0, "", true, &body));
    });
    let client = Client::connect(&socket, ClientOptions::default()).unwrap();
    let err = request(&client).unwrap_err();
    assert_eq!(err.code(), "RING_CORRUPT", "{err:?}");
    assert!(!client.is_connected());
    assert_eq!(request(&client).unwrap_err().code(), "CONNECTION_LOST");
    drop(client);
    t.join().unwrap();
}

#[test]
fn frames_for_unknown_ids_are_ignored() {
    let (socket, _rx, t) = fake_server(Fds::Good, |ep, _| {
        let req = recv_frame(ep);
        let id = frame::decode(&req).unwrap().id;
        send(ep, &frame::encode(Kind::Response, id + 1000, "", true, b"1"));
        send(ep, &frame::encode(Kind::StreamEnd, id + 1001, "", false, &[]));
        send(ep, &frame::encode(Kind::Response, id, "", true, b"42"));
        // A second answer for the same id: ignored too.
        send(ep, &frame::encode(Kind::Response, id, "", true, b"43"));
    });
    let client = Client::connect(&socket, ClientOptions::default()).unwrap();
    assert_eq!(request(&client).unwrap(), Payload::Json(b"42".to_vec()));
    assert!(client.is_connected());
    drop(client);
    t.join().unwrap();
}

#[test]
fn a_welcome_with_two_fds_gets_reject_10_and_four_get_reject_6() {
    for (fds, reason) in [(Fds::Two, RejectReason::ClientRejected), (Fds::Four, RejectReason::Malformed)] {
        let (socket, rx, t) = fake_server(fds, |_, _| {});
        let err = Client::connect(&socket, ClientOptions::default()).unwrap_err();
        assert_eq!(err.reject_reason(), Some(reason), "{err:?}");
        let reply = rx.recv().unwrap();
        assert!(
            matches!(reply, Some(ControlFrame::Reject(ref r)) if r.reason == reason),
            "{reply:?}"
        );
        t.join().unwrap();
    }
}

#[test]
fn an_unsealed_ring_is_refused_before_it_is_mapped() {
    let (socket, rx, t) = fake_server(Fds::UnsealedRing, |_, _| {});
    let err = Client::connect(&socket, ClientOptions::default()).unwrap_err();
    assert_eq!(err.reject_reason(), Some(RejectReason::ClientRejected), "{err:?}");
    assert!(err.to_string().contains("seal"), "{err}");
    assert!(matches!(rx.recv().unwrap(), Some(ControlFrame::Reject(_))));
    t.join().unwrap();
}

#[test]
fn a_message_over_the_clients_own_limit_ends_the_connection() {
    let (socket, _rx, t) = fake_server(Fds::Good, |ep, _| {
        let req = recv_frame(ep);
        let id = frame::decode(&req).unwrap().id;
        // WELCOME allowed 1 MiB; this client accepts only 16 KiB, so it stops reading (and
        // closes) part way through.
        assert!(!try_send(ep, &frame::encode(Kind::Response, id, "", false, &vec![0u8; 100 << 10])));
    });
    let opts = ClientOptions {
        max_incoming_message: 16 << 10,
        ..Default::default()
    };
    let client = Client::connect(&socket, opts).unwrap();
    let err = request(&client).unwrap_err();
    assert_eq!(err.code(), "MESSAGE_TOO_LARGE", "{err:?}");
    assert!(!client.is_connected());
    drop(client);
    t.join().unwrap();
}

#[test]
fn a_server_that_stops_reading_cannot_hang_a_sender() {
    let (socket, _rx, t) = fake_server(Fds::Good, |_, _| {
        // Reads nothing at all.
    });
    let client = Client::connect(&socket, ClientOptions::default()).unwrap();
    let started = Instant::now();
    let err = client
        .request("m", &Payload::Bytes(vec![1; 100 << 10]), Some(Duration::from_millis(300)))
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Half a message is stuck in the ring: the session cannot go on.
    assert!(!client.is_connected());
    drop(client);
    t.join().unwrap();
}

#[test]
fn fds_on_a_control_frame_after_ready_are_a_protocol_error() {
    let (socket, _rx, t) = fake_server(Fds::Good, |_, ctl| {
        let goaway = ControlFrame::GoAway(lapce_ai_client::wire::control::GoAway {
            deadline_ms: 0,
            message: "x".into(),
        })
        .encode();
        let extra = rustix::fs::memfd_create("extra", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        ctl.send(&goaway, &[extra.as_fd()]).unwrap();
    });
    let client = Client::connect(&socket, ClientOptions::default()).unwrap();
    assert!(common::eventually(Duration::from_secs(5), || !client.is_connected()));
    assert_eq!(request(&client).unwrap_err().code(), "CONNECTION_LOST");
    drop(client);
    t.join().unwrap();
}

#[test]
fn a_server_that_never_accepts_cannot_block_connect() {
    // listen(0) and never accept: once the accept queue is full, a blocking connect() would
    // sleep for ever. Connect must give up at the handshake timeout instead.
    let socket = common::temp_socket("no-accept");
    let ctl_path = PathBuf::from(format!("{}.ctl", socket.display()));
    let fd = rustix::net::socket(rustix::net::AddressFamily::UNIX, rustix::net::SocketType::STREAM, None).unwrap();
    rustix::net::bind(&fd, &rustix::net::SocketAddrUnix::new(&ctl_path).unwrap()).unwrap();
    rustix::net::listen(&fd, 0).unwrap();
    let opts = ClientOptions {
        handshake_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let mut queue_full = 0;
    for _ in 0..3 {
        let started = Instant::now();
        let err = Client::connect(&socket, opts.clone()).unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err.code(), "HANDSHAKE_TIMEOUT" | "CONNECTION_LOST"), "{err:?}");
        assert!(err.retryable());
        assert!(took < Duration::from_secs(5), "connect blocked for {took:?}");
        queue_full += err.to_string().contains("accept queue") as u32;
    }
    // The first connect fills the queue (and times out waiting for WELCOME); the next ones meet
    // the full queue.
    assert!(queue_full >= 1, "the accept queue never filled");
}
