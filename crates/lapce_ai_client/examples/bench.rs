//! Benchmark of the Rust client against a Node server; the last stdout line is one JSON object.
//!
//! ```text
//! cargo run --release -p lapce_ai_client --example bench                  # spawns the fixture server
//! cargo run --release -p lapce_ai_client --example bench -- --quick
//! target/release/examples/bench --socket P --rtt 20000 --pipelined 200000 --depth 64 \
//!     --stream-chunks 50000 --reps 3                                      # a running server
//! ```
//!
//! The server must answer `echo` (bytes in, the same bytes out) and stream `stream`
//! (`{"n": N, "json": false}` → N chunks of 48 bytes), as `tests/fixtures/server.js` and the
//! bench suite's peers server do. Figures (median over `--reps`):
//! - `rtt_p50_us`, `rtt_p99_us`, `rtt_p999_us`: 64 B request round trip, one in flight;
//! - `pipelined_rps`: 64 B requests/s from one thread keeping `--depth` in flight;
//! - `stream_chunks_per_s`: chunks/s of one stream with the default window;
//! - `handshake_p50_us`, `handshake_p99_us`: connect to READY.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lapce_ai_client::{Client, ClientOptions, Payload, PendingReply};
use serde_json::json;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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
    std::fs::create_dir_all(&dir).expect("temp dir");
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
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line.trim(), "READY", "fixture server failed to start (run `npm run build` first)");
    (Spawned(child), socket)
}

struct Args {
    socket: Option<PathBuf>,
    rtt: usize,
    pipelined: usize,
    depth: usize,
    stream_chunks: usize,
    handshakes: usize,
    reps: usize,
    opts: ClientOptions,
}

fn parse_args() -> Args {
    let mut a = Args {
        socket: None,
        rtt: 20_000,
        pipelined: 200_000,
        depth: 64,
        stream_chunks: 200_000,
        handshakes: 300,
        reps: 1,
        opts: ClientOptions::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut num = || -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--socket" => a.socket = it.next().map(PathBuf::from),
            "--rtt" => a.rtt = num(),
            "--pipelined" => a.pipelined = num(),
            "--depth" => a.depth = num().max(1),
            "--stream-chunks" => a.stream_chunks = num(),
            "--handshakes" => a.handshakes = num().max(1),
            "--reps" => a.reps = num().max(1),
            "--spin-us" => a.opts.spin = Duration::from_micros(num() as u64),
            "--quick" => {
                a.rtt = 2_000;
                a.pipelined = 20_000;
                a.stream_chunks = 20_000;
                a.handshakes = 50;
            }
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn main() -> lapce_ai_client::Result<()> {
    let a = parse_args();
    let (_server, socket) = match a.socket.clone() {
        Some(s) => (None, s),
        None => {
            let (child, s) = spawn_fixture();
            (Some(child), s)
        }
    };
    let client = Client::connect(&socket, a.opts.clone())?;
    let payload = Payload::Bytes(vec![7u8; 64]);
    for _ in 0..a.rtt.min(2000) {
        client.request("echo", &payload, None)?;
    }

    let (mut p50, mut p99, mut p999, mut rps, mut cps) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..a.reps {
        // Round trip, one in flight.
        let mut rtt: Vec<f64> = Vec::with_capacity(a.rtt);
        for _ in 0..a.rtt {
            let t = Instant::now();
            client.request("echo", &payload, None)?;
            rtt.push(t.elapsed().as_secs_f64() * 1e6);
        }
        rtt.sort_by(f64::total_cmp);
        p50.push(percentile(&rtt, 0.5));
        p99.push(percentile(&rtt, 0.99));
        p999.push(percentile(&rtt, 0.999));

        // Pipelined: one thread keeps `depth` requests in flight.
        let started = Instant::now();
        let mut in_flight: VecDeque<PendingReply> = VecDeque::with_capacity(a.depth);
        for _ in 0..a.pipelined {
            if in_flight.len() == a.depth {
                in_flight.pop_front().expect("non-empty").wait()?;
            }
            in_flight.push_back(client.send("echo", &payload, None)?);
        }
        for p in in_flight {
            p.wait()?;
        }
        rps.push(a.pipelined as f64 / started.elapsed().as_secs_f64());

        // One stream of 48-byte chunks, default window.
        let started = Instant::now();
        let mut got = 0usize;
        for c in client.stream("stream", &Payload::json(&json!({"n": a.stream_chunks, "json": false}))?)? {
            c?;
            got += 1;
        }
        assert_eq!(got, a.stream_chunks, "the stream ended early");
        cps.push(got as f64 / started.elapsed().as_secs_f64());
    }
    drop(client);

    // Handshake: connect to READY, then close.
    let mut hs: Vec<f64> = Vec::with_capacity(a.handshakes);
    for _ in 0..a.handshakes {
        let t = Instant::now();
        let c = Client::connect(&socket, a.opts.clone())?;
        hs.push(t.elapsed().as_secs_f64() * 1e6);
        drop(c);
    }
    hs.sort_by(f64::total_cmp);

    let out = json!({
        "client": "rust",
        "rtt_p50_us": median(p50),
        "rtt_p99_us": median(p99),
        "rtt_p999_us": median(p999),
        "pipelined_rps": median(rps),
        "stream_chunks_per_s": median(cps),
        "handshake_p50_us": percentile(&hs, 0.5),
        "handshake_p99_us": percentile(&hs, 0.99),
        "params": {
            "rtt": a.rtt, "pipelined": a.pipelined, "depth": a.depth, "stream_chunks": a.stream_chunks,
            "handshakes": a.handshakes, "reps": a.reps, "payload_bytes": 64, "chunk_bytes": 48,
            "spin_us": a.opts.spin.as_micros() as u64,
        },
    });
    println!("{out}");
    Ok(())
}
