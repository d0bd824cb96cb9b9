//! Session lifecycle against the real Node server: GOAWAY, the server's death and reconnection,
//! a client that goes away mid-stream, the idle timeout, and an idle client's CPU use.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, Server};
use lapce_ai_client::{Client, ClientOptions, Error, Payload, Reconnect};
use serde_json::{json, Value};

fn slow(client: &Client, ms: u64) -> lapce_ai_client::Result<Payload> {
    client.request("slow", &Payload::json(&json!({ "ms": ms })).unwrap(), Some(Duration::from_secs(30)))
}

#[test]
fn goaway_lets_calls_finish_then_refuses_new_ones_and_removes_the_socket() {
    let server = Server::fixture("goaway", &[]);
    let client = Arc::new(server.connect());
    let c = Arc::clone(&client);
    let in_flight = std::thread::spawn(move || slow(&c, 300));
    std::thread::sleep(Duration::from_millis(50));
    let admin = server.connect();
    admin.request_json::<_, Value>("shutdown", &json!({"deadlineMs": 5000})).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || client.going_away().is_some()),
        "GOAWAY arrives"
    );
    // New calls are refused with GOING_AWAY (retryable), the one in flight finishes.
    let err = client.request_json::<_, Value>("echo", &1).unwrap_err();
    assert_eq!(err.code(), "GOING_AWAY");
    assert!(err.retryable());
    let done: Value = in_flight.join().unwrap().unwrap().parse().unwrap();
    assert_eq!(done["slept"], 300);
    // The socket is gone at once: a new client cannot connect (never REJECT 8 after removal).
    let err = Client::connect(&server.socket, ClientOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Io {
                kind: std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused,
                ..
            }
        ),
        "{err:?}"
    );
    // With nothing left in flight the server closes the session.
    assert!(eventually(Duration::from_secs(10), || !client.is_connected()));
}

#[test]
fn goaway_deadline_fails_what_is_left_with_going_away() {
    let server = Server::fixture("deadline", &[]);
    let client = Arc::new(server.connect());
    let c = Arc::clone(&client);
    let in_flight = std::thread::spawn(move || slow(&c, 20_000));
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    server
        .connect()
        .request_json::<_, Value>("shutdown", &json!({"deadlineMs": 300}))
        .unwrap();
    let err = in_flight.join().unwrap().unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.code(), "GOING_AWAY", "{err:?}");
    eprintln!("GOAWAY deadline 300 ms: the call in flight failed after {took:?}");
    assert!(
        took < Duration::from_secs(10),
        "ended by the deadline, not by the call's own timeout"
    );
}

#[test]
fn server_kill_is_connection_lost_at_once_then_reconnect() {
    let mut server = Server::fixture("kill", &[]);
    let opts = ClientOptions {
        reconnect: Some(Reconnect {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            max_attempts: 50,
        }),
        ..Default::default()
    };
    let client = Arc::new(server.connect_with(opts));
    client.ping().unwrap();
    let c = Arc::clone(&client);
    let in_flight = std::thread::spawn(move || {
        let r = slow(&c, 20_000);
        (r, Instant::now())
    });
    std::thread::sleep(Duration::from_millis(100));
    let killed = Instant::now();
    server.kill();
    let (r, failed_at) = in_flight.join().unwrap();
    let err = r.unwrap_err();
    assert_eq!(err.code(), "CONNECTION_LOST", "{err:?}");
    let lost_after = failed_at.duration_since(killed);
    // A protocol property (the control socket's EOF wakes the client's poll); the bound is
    // generous on purpose, the figure is what the report quotes.
    eprintln!("server SIGKILL -> CONNECTION_LOST after {lost_after:?}");
    assert!(lost_after < Duration::from_secs(2), "{lost_after:?}");
    assert!(!client.is_connected());

    // A new server at the same path: the next call reconnects by itself.
    let socket = server.socket.clone();
    let _again = Server::fixture_at(socket, &[]);
    let v: Value = client.request_json("echo", &json!("back")).unwrap();
    assert_eq!(v, json!("back"));
    assert!(client.is_connected());
}

#[test]
fn a_client_dropped_mid_stream_leaves_no_session() {
    let server = Server::fixture("drop-client", &[]);
    let watcher = server.connect();
    let client = server.connect();
    let mut s = client.stream("forever", &Payload::null()).unwrap();
    s.next().unwrap().unwrap();
    let seen: Value = watcher.request_json("seen", &()).unwrap();
    assert_eq!(seen["connections"], 2);
    drop(client);
    // The stream handle outlives the client: it ends, with the connection's error.
    let end = s.find_map(|r| r.err()).expect("the stream ends");
    assert_eq!(end.code(), "CHANNEL_CLOSED", "{end:?}");
    assert!(
        eventually(Duration::from_secs(5), || {
            let seen: Value = watcher.request_json("seen", &()).unwrap();
            seen["connections"] == 1 && seen["cancelled"] == 1
        }),
        "the server ended the session and aborted its handler"
    );
}

#[test]
fn idle_timeout_ends_an_idle_session_and_ping_keeps_one_alive() {
    let server = Server::fixture("idle", &["--idle-timeout-ms", "300"]);
    let idle = server.connect();
    let busy = server.connect();
    assert_eq!(idle.session().idle_timeout_ms, 300);
    let until = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < until {
        busy.ping().unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!idle.is_connected(), "the idle session was closed");
    assert_eq!(idle.going_away().as_deref(), Some("idle timeout"));
    assert!(busy.is_connected());
}

fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // utime and stime are fields 14 and 15 of stat(5); here 0-based after the comm field.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn an_idle_client_sleeps() {
    let server = Server::fixture("cpu", &[]);
    let client = server.connect();
    client.ping().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let parks = client.stats().parks;
    assert!(parks >= 1, "the I/O thread parked after the spin");
    let before = cpu_ticks();
    std::thread::sleep(Duration::from_millis(1000));
    let used = cpu_ticks() - before;
    // Clock ticks are 10 ms: a spinning thread would show ~100.
    assert!(used <= 5, "an idle client used {used} ticks of CPU in 1 s");
    assert_eq!(client.stats().parks, parks, "and stayed asleep (no periodic wake-ups)");
}

#[test]
fn after_goaway_new_calls_move_to_a_successor_server() {
    let old = Server::fixture("successor", &[]);
    let opts = ClientOptions {
        reconnect: Some(Reconnect::default()),
        ..Default::default()
    };
    let client = Arc::new(old.connect_with(opts));
    let c = Arc::clone(&client);
    // Keeps the old session open past the GOAWAY.
    let in_flight = std::thread::spawn(move || slow(&c, 500));
    std::thread::sleep(Duration::from_millis(50));
    old.connect()
        .request_json::<_, Value>("shutdown", &json!({"deadlineMs": 5000}))
        .unwrap();
    assert!(eventually(Duration::from_secs(5), || client.going_away().is_some()));
    // No successor yet: one quick attempt, then the old connection's GOING_AWAY.
    let started = Instant::now();
    assert_eq!(client.ping().unwrap_err().code(), "GOING_AWAY");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no backoff while the old session still answers"
    );
    let _new = Server::fixture_at(old.socket.clone(), &[]);
    let v: Value = client.request_json("echo", &json!("new")).unwrap();
    assert_eq!(v, json!("new"));
    // The call on the old session still finished there.
    assert!(in_flight.join().unwrap().is_ok());
}
