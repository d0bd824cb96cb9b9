//! Awaiting replies and stream chunks without any runtime: a minimal executor (a thread that
//! parks until its waker unparks it) proves the client wakes awaiting tasks itself.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use common::Server;
use lapce_ai_client::{Payload, PendingReply};
use serde_json::{json, Value};

struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `f` to completion on this thread; a lost wake-up is a failure, not a hang.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        assert!(Instant::now() < deadline, "the future was never woken");
        // Long enough that a missing wake-up would show as a timeout above, not as progress.
        std::thread::park_timeout(Duration::from_secs(20));
    }
}

#[test]
fn awaited_replies_and_chunks() {
    let server = Server::fixture("async", &[]);
    let client = server.connect();
    let replies: Vec<PendingReply> = (0..200)
        .map(|i| client.send("echo", &Payload::json(&json!({ "i": i })).unwrap(), None).unwrap())
        .collect();
    block_on(async {
        for (i, r) in replies.into_iter().enumerate() {
            let v: Value = r.await.unwrap().parse().unwrap();
            assert_eq!(v, json!({ "i": i }));
        }
        // A reply that takes a while: the task sleeps until the I/O thread wakes it.
        let slow: Value = client
            .send("slow", &Payload::json(&json!({"ms": 100})).unwrap(), None)
            .unwrap()
            .await
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(slow["slept"], 100);
        let mut s = client
            .stream_json::<_, Value>("count", &json!({"count": 50, "delayMs": 2}))
            .unwrap();
        let mut n = 0;
        while let Some(item) = s.next_async().await {
            assert_eq!(item.unwrap()["i"], n);
            n += 1;
        }
        assert_eq!(n, 50);
    });
}
