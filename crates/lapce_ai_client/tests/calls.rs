//! Requests against the real Node server: JSON and bytes, errors, timeouts with cancel, a
//! message larger than the ring both ways, many threads at once, metrics.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{eventually, Server};
use lapce_ai_client::{Error, Payload};
use serde_json::{json, Value};

#[test]
fn json_and_bytes_requests_echo() {
    let server = Server::fixture("echo", &[]);
    let client = server.connect();
    let v: Value = client.request_json("echo", &json!({"hello": "wörld", "n": [1, 2, 3]})).unwrap();
    assert_eq!(v, json!({"hello": "wörld", "n": [1, 2, 3]}));
    let b = client.request_bytes("echo", &[0, 1, 2, 255]).unwrap();
    assert_eq!(b, Payload::Bytes(vec![0, 1, 2, 255]));
    let empty = client.request_bytes("echo", &[]).unwrap();
    assert_eq!(empty, Payload::Bytes(vec![]));
    client.ping().unwrap();
}

#[test]
fn server_errors_arrive_typed() {
    let server = Server::fixture("errors", &[]);
    let client = server.connect();
    let err = client
        .request_json::<_, Value>("fail", &json!({"code": "RATE_LIMITED", "message": "slow down", "retryable": true}))
        .unwrap_err();
    let Error::Remote(r) = &err else { panic!("{err:?}") };
    assert_eq!(
        (r.code.as_str(), r.message.as_str(), r.retryable),
        ("RATE_LIMITED", "slow down", true)
    );
    assert_eq!(r.details.as_ref().unwrap()["from"], "fixture");
    assert!(err.retryable());

    let err = client.request_json::<_, Value>("no_such_method", &()).unwrap_err();
    assert_eq!(err.code(), "UNKNOWN_METHOD");
    let err = client.request_json::<_, Value>("throw", &()).unwrap_err();
    assert_eq!(err.code(), "HANDLER_ERROR");
    // A stream method called as a request.
    let err = client.request_json::<_, Value>("count", &json!({"count": 1})).unwrap_err();
    assert_eq!(err.code(), "UNKNOWN_METHOD");
    // Bytes to a JSON method: a short BAD_PAYLOAD, not a listing of the Buffer's methods.
    let err = client.request_bytes("json_only", b"\x01\x02").unwrap_err();
    assert_eq!(err.code(), "BAD_PAYLOAD");
    assert!(err.to_string().len() < 200, "{err}");
    // Invalid JSON text flagged as JSON.
    let err = client.request("echo", &Payload::Json(b"{nope".to_vec()), None).unwrap_err();
    assert_eq!(err.code(), "BAD_PAYLOAD");
    // The session survived all of that.
    let v: Value = client.request_json("echo", &1).unwrap();
    assert_eq!(v, json!(1));
}

#[test]
fn a_timed_out_request_is_cancelled_on_the_server() {
    let server = Server::fixture("timeout", &[]);
    let client = server.connect();
    let err = client
        .request(
            "slow",
            &Payload::json(&json!({"ms": 10_000})).unwrap(),
            Some(Duration::from_millis(100)),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(eventually(Duration::from_secs(5), || {
        let seen: Value = client.request_json("seen", &()).unwrap();
        seen["cancelled"] == 1
    }));
}

#[test]
fn a_3_mb_message_crosses_a_64_kib_ring_both_ways() {
    let server = Server::fixture("big", &["--ring-capacity", "65536"]);
    let client = server.connect();
    assert_eq!(client.session().ring_capacity, 65536);
    let n = 3 * 1024 * 1024;
    let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
    let reply: Value = client
        .request("check_bytes", &Payload::Bytes(data.clone()), None)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(reply["length"], n);
    let got = client.request("bytes", &Payload::json(&json!({"size": n})).unwrap(), None).unwrap();
    assert_eq!(got, Payload::Bytes(data.clone()));
    let echoed = client.request("echo", &Payload::Bytes(data.clone()), None).unwrap();
    assert_eq!(echoed.as_bytes(), &data[..]);
}

#[test]
fn a_message_over_max_message_is_refused_locally() {
    let server = Server::fixture("toolarge", &[]);
    let client = server.connect();
    let limit = client.session().max_message as usize;
    let err = client.request("echo", &Payload::Bytes(vec![0; limit]), None).unwrap_err();
    assert!(
        matches!(err, Error::MessageTooLarge { size, .. } if size == limit + 8 + 4),
        "{err:?}"
    );
    // Nothing was sent: the session is fine.
    client.ping().unwrap();
}

#[test]
fn many_threads_share_one_client() {
    let server = Server::fixture("threads", &[]);
    let client = Arc::new(server.connect());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let client = Arc::clone(&client);
            std::thread::spawn(move || {
                for i in 0..300 {
                    let v: Value = client.request_json("echo", &json!({"t": t, "i": i})).unwrap();
                    assert_eq!(v, json!({"t": t, "i": i}));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn server_metrics_in_both_formats() {
    let server = Server::fixture("metrics", &[]);
    let client = server.connect();
    let m = client.server_metrics().unwrap();
    let names: Vec<&str> = m.as_array().unwrap().iter().filter_map(|x| x["name"].as_str()).collect();
    assert!(names.iter().any(|n| n.contains("connections")), "{names:?}");
    let text = client.server_metrics_prometheus().unwrap();
    assert!(text.contains("# TYPE"), "{text}");
    let err = client.request_json::<_, Value>("$metrics", &json!({"format": "xml"})).unwrap_err();
    assert_eq!(err.code(), "BAD_PAYLOAD");
}
