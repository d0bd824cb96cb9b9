//! Streams against the real Node server: order and flow control, errors, cancel, drop, the
//! stream limit, polling from a "UI" thread.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{eventually, Server};
use lapce_ai_client::{Payload, Polled, StreamOptions};
use serde_json::{json, Value};

fn seen(client: &lapce_ai_client::Client) -> Value {
    client.request_json("seen", &()).unwrap()
}

#[test]
fn chunks_arrive_in_order_through_a_small_window() {
    let server = Server::fixture("order", &[]);
    let client = server.connect();
    // A window of 4 chunks: the server must wait for credit 250 times.
    let opts = StreamOptions {
        window: Some((4, 1 << 20)),
        ..Default::default()
    };
    let stream = client
        .stream_with("count", &Payload::json(&json!({"count": 1000})).unwrap(), opts)
        .unwrap();
    let got: Vec<u64> = stream
        .map(|c| c.unwrap().parse::<Value>().unwrap()["i"].as_u64().unwrap())
        .collect();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
    assert_eq!(seen(&client)["streamsFinished"], 1);
}

#[test]
fn a_byte_window_smaller_than_a_chunk_still_flows() {
    let server = Server::fixture("bytes-window", &[]);
    let client = server.connect();
    // 1 KiB of byte window, 4 KiB chunks: each chunk overdraws the window by one chunk at most.
    let opts = StreamOptions {
        window: Some((64, 1024)),
        ..Default::default()
    };
    let stream = client
        .stream_with("count", &Payload::json(&json!({"count": 50, "size": 4096})).unwrap(), opts)
        .unwrap();
    let chunks: Vec<Payload> = stream.map(|c| c.unwrap()).collect();
    assert_eq!(chunks.len(), 50);
    assert!(chunks.iter().enumerate().all(|(i, c)| c.as_bytes() == vec![i as u8; 4096]));
}

#[test]
fn an_unread_stream_holds_only_its_window_and_others_go_on() {
    let server = Server::fixture("unread", &[]);
    let client = server.connect();
    let opts = StreamOptions {
        window: Some((8, 1 << 20)),
        ..Default::default()
    };
    let mut unread = client
        .stream_with("count", &Payload::json(&json!({"count": 10_000})).unwrap(), opts)
        .unwrap();
    // While that one waits for credit, a second stream and requests complete.
    let other: Vec<_> = client
        .stream("count", &Payload::json(&json!({"count": 100})).unwrap())
        .unwrap()
        .collect();
    assert_eq!(other.len(), 100);
    client.ping().unwrap();
    // The unread stream got exactly its window and no more (a chunk beyond the window would
    // also have ended the connection with a protocol error).
    assert!(eventually(Duration::from_secs(5), || unread.buffered() == 8));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(unread.buffered(), 8);
    // Reading returns credit, and more arrives.
    for _ in 0..8 {
        assert!(matches!(unread.poll_next().unwrap(), Polled::Chunk(_)));
    }
    assert!(eventually(Duration::from_secs(5), || unread.buffered() > 0));
    unread.cancel();
}

#[test]
fn a_stream_error_ends_the_stream() {
    let server = Server::fixture("stream-error", &[]);
    let client = server.connect();
    let mut s = client.stream("stream_fail", &Payload::null()).unwrap();
    assert!(s.next().unwrap().is_ok());
    let err = s.next().unwrap().unwrap_err();
    assert_eq!(err.code(), "STREAM_BROKE");
    assert!(s.next().is_none());
}

#[test]
fn cancel_mid_stream_gets_cancelled_and_stops_the_handler() {
    let server = Server::fixture("cancel", &[]);
    let client = server.connect();
    let mut s = client.stream("forever", &Payload::null()).unwrap();
    for _ in 0..3 {
        s.next().unwrap().unwrap();
    }
    s.cancel();
    // The terminal frame after CANCEL: ERROR CANCELLED (chunks still in flight are dropped).
    let end = match s.next() {
        Some(Ok(_)) => panic!("a chunk after cancel() must not be handed out"),
        Some(Err(e)) => e,
        None => panic!("the server must send a terminal frame after CANCEL"),
    };
    assert_eq!(end.code(), "CANCELLED");
    assert!(eventually(Duration::from_secs(5), || seen(&client)["cancelled"] == 1));
}

#[test]
fn dropping_a_stream_cancels_it() {
    let server = Server::fixture("drop", &[]);
    let client = server.connect();
    let mut s = client.stream("forever", &Payload::null()).unwrap();
    s.next().unwrap().unwrap();
    drop(s);
    assert!(eventually(Duration::from_secs(5), || seen(&client)["cancelled"] == 1));
}

#[test]
fn more_streams_than_allowed_get_too_many_streams() {
    let server = Server::fixture("limit", &["--max-streams", "2"]);
    let client = server.connect();
    assert_eq!(client.session().max_streams, 2);
    let mut a = client.stream("forever", &Payload::null()).unwrap();
    let mut b = client.stream("forever", &Payload::null()).unwrap();
    a.next().unwrap().unwrap();
    b.next().unwrap().unwrap();
    let mut c = client.stream("forever", &Payload::null()).unwrap();
    let err = c.next().unwrap().unwrap_err();
    assert_eq!(err.code(), "TOO_MANY_STREAMS");
    assert!(err.retryable());
    // Once one ends, a new stream is allowed.
    a.cancel();
    while a.next().is_some() {}
    let mut d = client.stream("forever", &Payload::null()).unwrap();
    d.next().unwrap().unwrap();
}

#[test]
fn a_ui_thread_polls_without_blocking_and_is_told_when_to() {
    let server = Server::fixture("poll", &[]);
    let client = server.connect();
    // The UI's event loop: woken through a channel by `on_ready`, then it polls.
    let (wake_tx, wake_rx) = std::sync::mpsc::channel::<()>();
    let opts = StreamOptions {
        on_ready: Some(Arc::new(move || {
            let _ = wake_tx.send(());
        })),
        ..Default::default()
    };
    let mut s = client
        .stream_with("count", &Payload::json(&json!({"count": 5, "delayMs": 20})).unwrap(), opts)
        .unwrap();
    assert_eq!(s.poll_next().unwrap(), Polled::Pending, "the first chunk is 20 ms away");
    let mut got = 0;
    loop {
        match s.poll_next().unwrap() {
            Polled::Chunk(_) => got += 1,
            // Nothing to do until the client says something arrived.
            Polled::Pending => wake_rx.recv_timeout(Duration::from_secs(10)).expect("on_ready after every arrival"),
            Polled::End => break,
        }
    }
    assert_eq!(got, 5);
}
