//! [`Client`]: the public API. One connection at a time, shared by every thread that holds the
//! client; optional reconnection with exponential backoff and jitter.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::connection::{lock, Conn, ConnectionStats};
use crate::error::{Error, Result};
use crate::handshake::handshake;
use crate::payload::Payload;
use crate::reply::PendingReply;
use crate::stream::{Stream, StreamOptions, TypedStream};
use crate::wire::control::Welcome;

/// Automatic reconnection: before a call, a lost connection is re-established, waiting
/// `initial_delay × 2^attempt` (capped at `max_delay`, with ±50 % jitter) between attempts.
/// Calls that were in flight when the connection died still fail with `CONNECTION_LOST`:
/// they may have run, so they are not repeated behind the caller's back.
#[derive(Clone, Debug)]
pub struct Reconnect {
    /// Wait before the second attempt.
    pub initial_delay: Duration,
    /// Longest wait between attempts.
    pub max_delay: Duration,
    /// Attempts per call that finds the connection lost (at least 1).
    pub max_attempts: u32,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
            max_attempts: 8,
        }
    }
}

/// Options of [`Client::connect`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Shown in the server's logs.
    pub name: String,
    /// Time allowed for connect, HELLO, WELCOME.
    pub handshake_timeout: Duration,
    /// Default timeout of [`Client::request`] calls given `None`.
    pub request_timeout: Duration,
    /// Default flow-control window of streams, `(chunks, bytes)`.
    pub stream_window: (u32, u32),
    /// How long the I/O thread, and a caller waiting for its reply (it reads the ring itself
    /// meanwhile, yielding the core between looks), keep looking before they sleep. It saves the
    /// wake-up (tens of µs) while messages flow; after it the client sleeps in `poll` and uses no
    /// CPU. `Duration::ZERO`: always sleep.
    pub spin: Duration,
    /// Reconnect automatically (see [`Reconnect`]); `None`: never.
    pub reconnect: Option<Reconnect>,
    /// Largest message accepted from the server, bytes, whatever its `max_message` says (bounds
    /// the memory a server can make us reassemble). A larger one ends the connection.
    pub max_incoming_message: usize,
    /// Uids the server may run as, checked with `SO_PEERCRED` before HELLO is sent, so that
    /// another user who created the socket first never sees a prompt. Empty: this process's own
    /// uid only (the default).
    pub server_uids: Vec<u32>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            name: "lapce-ai-client".into(),
            handshake_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(30),
            stream_window: (256, 4 << 20),
            spin: Duration::from_micros(100),
            reconnect: None,
            max_incoming_message: 64 << 20,
            server_uids: Vec::new(),
        }
    }
}

/// A connection to a lapce-ai-ipc server. `Send + Sync`: share it (`Arc<Client>`) and call it
/// from any number of threads; calls are matched by id. Dropping it closes the session.
pub struct Client {
    path: PathBuf,
    opts: ClientOptions,
    conn: Mutex<Arc<Conn>>,
    /// Held by the one thread re-establishing a lost connection.
    reconnecting: Mutex<()>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("path", &self.path)
            .field("connected", &self.is_connected())
            .finish()
    }
}

fn open(path: &Path, opts: &ClientOptions) -> Result<Arc<Conn>> {
    let est = handshake(
        path,
        &opts.name,
        opts.handshake_timeout,
        opts.max_incoming_message,
        &opts.server_uids,
    )?;
    Conn::start(est, opts.spin)
}

/// Where the server listens by default (as the Node side decides): `$XDG_RUNTIME_DIR/lapce-ai/ai.sock`,
/// else `/tmp/lapce-ai-<uid>/ai.sock`; `LAPCE_AI_SOCKET` overrides both.
pub fn default_socket_path() -> PathBuf {
    if let Some(p) = std::env::var_os("LAPCE_AI_SOCKET").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        Some(dir) => Path::new(&dir).join("lapce-ai").join("ai.sock"),
        None => PathBuf::from(format!("/tmp/lapce-ai-{}/ai.sock", rustix::process::getuid().as_raw())),
    }
}

/// A factor in 0.5..1.5, different on every call (std's `RandomState` is randomly seeded).
fn jitter() -> f64 {
    let h = RandomState::new().hash_one(std::time::Instant::now());
    0.5 + (h % 10_000) as f64 / 10_000.0
}

impl Client {
    /// Connects to the server at `path` (the socket path `P`, or its control socket `P.ctl`):
    /// handshake, fd checks, mapping, READY. A refusal is [`Error::Rejected`] with the server's
    /// reason and message; no server is [`Error::Io`] of kind `NotFound`/`ConnectionRefused`.
    pub fn connect(path: impl AsRef<Path>, options: ClientOptions) -> Result<Client> {
        let path = path.as_ref().to_owned();
        let conn = open(&path, &options)?;
        Ok(Client {
            path,
            opts: options,
            conn: Mutex::new(conn),
            reconnecting: Mutex::new(()),
        })
    }

    /// The current connection, re-established first if it was lost and reconnection is on.
    fn current(&self) -> Result<Arc<Conn>> {
        let usable = |c: &Conn| !c.is_closed() && c.going_away().is_none();
        let conn = Arc::clone(&lock(&self.conn));
        let Some(policy) = self.opts.reconnect.as_ref().filter(|_| !usable(&conn)) else {
            return Ok(conn);
        };
        // One thread reconnects; the others wait for its result here, not on `self.conn`, so
        // `is_connected()` and friends never block behind a backoff.
        let _one = lock(&self.reconnecting);
        let conn = Arc::clone(&lock(&self.conn));
        if usable(&conn) {
            return Ok(conn);
        }
        let mut delay = policy.initial_delay;
        let mut last = Error::ConnectionLost("not connected".into());
        // A going-away connection still answers (GOING_AWAY): try a successor once, without
        // making the caller wait through the backoff for a server that may not be there yet.
        let attempts = if conn.is_closed() { policy.max_attempts.max(1) } else { 1 };
        for attempt in 0..attempts {
            if attempt > 0 {
                std::thread::sleep(delay.mul_f64(jitter()));
                delay = (delay * 2).min(policy.max_delay);
            }
            match open(&self.path, &self.opts) {
                Ok(new) => {
                    // A going-away connection keeps serving its calls in flight until the
                    // server closes it; a dead one is already shut down.
                    *lock(&self.conn) = Arc::clone(&new);
                    return Ok(new);
                }
                Err(e) => last = e,
            }
        }
        if !conn.is_closed() {
            // Going away and no new server yet: the old connection's answer stands.
            return Ok(conn);
        }
        Err(Error::ConnectionLost(format!(
            "could not reconnect after {attempts} attempts: {last}"
        )))
    }

    /// Calls `method` once. `timeout` `None`: [`ClientOptions::request_timeout`]. On timeout the
    /// call is cancelled on the server and [`Error::Timeout`] returned.
    pub fn request(&self, method: &str, payload: &Payload, timeout: Option<Duration>) -> Result<Payload> {
        self.send(method, payload, timeout)?.wait()
    }

    /// Sends a request and returns at once; collect the reply with [`PendingReply::wait`] or
    /// poll it with [`PendingReply::try_take`]. Many may be in flight from one thread.
    pub fn send(&self, method: &str, payload: &Payload, timeout: Option<Duration>) -> Result<PendingReply> {
        let conn = self.current()?;
        let timeout = timeout.unwrap_or(self.opts.request_timeout);
        let (id, slot) = conn.send_request(method, payload, timeout)?;
        Ok(PendingReply::new(conn, id, slot, timeout))
    }

    /// Calls `method` with a JSON argument and parses its JSON result as `R`.
    pub fn request_json<T: Serialize + ?Sized, R: DeserializeOwned>(&self, method: &str, arg: &T) -> Result<R> {
        self.request(method, &Payload::json(arg)?, None)?.parse()
    }

    /// Calls `method` with a bytes argument; the result comes as the server sent it.
    pub fn request_bytes(&self, method: &str, data: &[u8]) -> Result<Payload> {
        self.request(method, &Payload::Bytes(data.to_vec()), None)
    }

    /// Opens a stream with the default window.
    pub fn stream(&self, method: &str, payload: &Payload) -> Result<Stream> {
        self.stream_with(method, payload, StreamOptions::default())
    }

    /// Opens a stream with its own options (window, readiness callback).
    pub fn stream_with(&self, method: &str, payload: &Payload, options: StreamOptions) -> Result<Stream> {
        let conn = self.current()?;
        let window = options.window.unwrap_or(self.opts.stream_window);
        let timeout = options.open_timeout.unwrap_or(self.opts.request_timeout);
        let state = conn.open_stream(method, payload, window, options.on_ready, timeout)?;
        Ok(Stream::new(conn, state))
    }

    /// Opens a stream whose chunks are JSON values of type `T`.
    pub fn stream_json<A: Serialize + ?Sized, T: DeserializeOwned>(&self, method: &str, arg: &A) -> Result<TypedStream<T>> {
        Ok(TypedStream::new(self.stream(method, &Payload::json(arg)?)?))
    }

    /// The server's metrics (`$metrics`, prom-client's JSON form).
    pub fn server_metrics(&self) -> Result<serde_json::Value> {
        self.request_json("$metrics", &serde_json::json!({ "format": "json" }))
    }

    /// The server's metrics in the Prometheus text format.
    pub fn server_metrics_prometheus(&self) -> Result<String> {
        #[derive(serde::Deserialize)]
        struct Text {
            text: String,
        }
        let t: Text = self.request_json("$metrics", &serde_json::json!({ "format": "prometheus" }))?;
        Ok(t.text)
    }

    /// `$ping`: a round trip that keeps an idle session alive.
    pub fn ping(&self) -> Result<()> {
        let _: serde_json::Value = self.request_json("$ping", &())?;
        Ok(())
    }

    /// The current session's parameters (slot, limits, idle timeout).
    pub fn session(&self) -> Welcome {
        lock(&self.conn).welcome.clone()
    }

    /// Whether the current connection is open.
    pub fn is_connected(&self) -> bool {
        !lock(&self.conn).is_closed()
    }

    /// The GOAWAY message, if the server announced it is shutting down.
    pub fn going_away(&self) -> Option<String> {
        lock(&self.conn).going_away()
    }

    /// Counters of the current connection.
    pub fn stats(&self) -> ConnectionStats {
        lock(&self.conn).stats()
    }

    /// Closes the session now (as dropping the client does).
    pub fn close(self) {}
}

impl Drop for Client {
    fn drop(&mut self) {
        let conn = lock(&self.conn);
        conn.shutdown(Error::Closed);
        conn.join();
    }
}
