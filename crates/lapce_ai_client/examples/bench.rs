//! Benchmark of the Rust client against a Node server; prints one JSON object.
//!
//! ```text
//! cargo run --release -p lapce_ai_client --example bench                 # spawns the fixture server
//! cargo run --release -p lapce_ai_client --example bench -- --socket P   # a running server
//! cargo run --release -p lapce_ai_client --example bench -- --quick
//! ```
//!
//! The server must answer `echo` (request, returns its argument) and stream `count`
//! (`{count, size}`: `count` chunks of `size` bytes), as `tests/fixtures/server.js` does.
//! Figures: 64 B request round trip p50/p99 (one caller, one in flight), pipelined requests/s
//! (one thread, up to 256 in flight), stream chunks/s (64 B chunks), handshake time p50/p99
//! (connect to READY).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lapce_ai_client::{Client, ClientOptions, Payload, PendingReply};
use serde_json::json;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_fixture() -> (Spawned, PathBuf) {
    let dir = std::env::temp_dir().join(format!("lapce-ai-client-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("ai.sock");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/server.js");
    let mut child = Command::new("node")
        .arg(script)
        .arg("--socket")
        .arg(&socket)
        .stdout(Stdio::piped())
        .spawn()
        .expect("node (run `npm run build` first)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "READY", "fixture server failed to start (run `npm run build` first)");
    (Spawned(child), socket)
}

fn main() -> lapce_ai_client::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut socket, mut quick, mut opts) = (None, false, ClientOptions::default());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--socket" => socket = args.next().map(PathBuf::from),
            "--quick" => quick = true,
            "--spin-us" => opts.spin = Duration::from_micros(args.next().and_then(|s| s.parse().ok()).expect("--spin-us N")),
            other => panic!("unknown argument {other}"),
        }
    }
    let (_server, socket) = match socket {
        Some(s) => (None, s),
        None => {
            let (child, s) = spawn_fixture();
            (Some(child), s)
        }
    };
    let scale = if quick { 10 } else { 1 };
    let client = Client::connect(&socket, opts.clone())?;
    let payload = Payload::Bytes(vec![7u8; 64]);

    // Round trip, one in flight.
    let n = 20_000 / scale;
    for _ in 0..n / 10 {
        client.request("echo", &payload, None)?;
    }
    let mut rtt: Vec<f64> = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        client.request("echo", &payload, None)?;
        rtt.push(t.elapsed().as_secs_f64() * 1e6);
    }
    rtt.sort_by(f64::total_cmp);

    // Pipelined: one thread keeps up to 256 requests in flight.
    let total = 200_000 / scale;
    let window = 256;
    let started = Instant::now();
    let mut in_flight: std::collections::VecDeque<PendingReply> = std::collections::VecDeque::with_capacity(window);
    for _ in 0..total {
        if in_flight.len() == window {
            in_flight.pop_front().expect("non-empty").wait()?;
        }
        in_flight.push_back(client.send("echo", &payload, None)?);
    }
    for p in in_flight {
        p.wait()?;
    }
    let pipelined = total as f64 / started.elapsed().as_secs_f64();

    // Stream of 64 B chunks, default window.
    let chunks = 200_000 / scale;
    let started = Instant::now();
    let mut got = 0usize;
    for c in client.stream("count", &Payload::json(&json!({"count": chunks, "size": 64}))?)? {
        c?;
        got += 1;
    }
    assert_eq!(got, chunks);
    let stream_rate = got as f64 / started.elapsed().as_secs_f64();
    drop(client);

    // Handshake: connect to READY, then close.
    let m = 300 / scale.min(3);
    let mut hs: Vec<f64> = Vec::with_capacity(m);
    for _ in 0..m {
        let t = Instant::now();
        let c = Client::connect(&socket, opts.clone())?;
        hs.push(t.elapsed().as_secs_f64() * 1e6);
        drop(c);
        std::thread::sleep(Duration::from_millis(1));
    }
    hs.sort_by(f64::total_cmp);

    let out = json!({
        "client": "rust",
        "crate": "lapce_ai_client",
        "quick": quick,
        "spin_us": opts.spin.as_micros() as u64,
        "rtt_64b_us": { "p50": percentile(&rtt, 0.5), "p99": percentile(&rtt, 0.99), "n": n },
        "pipelined_requests_per_s": pipelined,
        "pipelined": { "requests": total, "in_flight": window, "payload_bytes": 64 },
        "stream_chunks_per_s": stream_rate,
        "stream": { "chunks": chunks, "chunk_bytes": 64 },
        "handshake_us": { "p50": percentile(&hs, 0.5), "p99": percentile(&hs, 0.99), "n": m },
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
    Ok(())
}
