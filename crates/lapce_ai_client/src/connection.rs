//! One open session: the endpoint, the calls in flight, and the I/O thread.
//!
//! Shape: callers write their frames into the ring themselves (under a short lock, so a request
//! costs no thread hop on the way out); one I/O thread reads every incoming frame and hands it to
//! the waiting call or stream (a caller spinning for its reply reads the ring too, whoever holds
//! the lock dispatches), watches the control socket, and writes the small frames (CANCEL,
//! STREAM_CREDIT) that must never block the thread that wants them sent (a UI thread dropping a
//! stream, a consumer reading chunks). The I/O thread spins briefly after work and then parks in
//! one `poll` on the doorbell, the control socket and a wake-up socket: an idle client uses no
//! CPU, and the server's death wakes it at once.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lapce_ai_transport::{ControlStream, Endpoint, Next};
use rustix::event::{PollFd, PollFlags};

use crate::error::{Error, RemoteError, Result};
use crate::handshake::Established;
use crate::payload::Payload;
use crate::wire::control::{ControlFrame, ControlReader, Welcome};
use crate::wire::frame::{self, Kind, MAX_METHOD};

/// Messages read per batch before the I/O thread looks at its other duties.
const BATCH: usize = 256;
/// How often a spinning I/O thread looks at the control socket (a GOAWAY may be waiting).
const CONTROL_CHECK: Duration = Duration::from_millis(1);
/// Fallback wait of a writer blocked on a full ring (the doorbell normally wakes it sooner).
const SPACE_WAIT: Duration = Duration::from_millis(2);

/// Locks, ignoring poisoning: every structure here stays consistent between statements, and a
/// panicking user callback must not take the connection down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where a request's reply goes.
pub(crate) struct ReplySlot {
    ready: AtomicBool,
    value: Mutex<Option<Result<Payload>>>,
    cv: Condvar,
    /// The task awaiting this reply (see `PendingReply`'s `Future`).
    pub waker: Mutex<Option<Waker>>,
}

impl ReplySlot {
    fn new() -> Self {
        ReplySlot {
            ready: AtomicBool::new(false),
            value: Mutex::new(None),
            cv: Condvar::new(),
            waker: Mutex::new(None),
        }
    }

    fn deliver(&self, v: Result<Payload>) {
        *lock(&self.value) = Some(v);
        self.ready.store(true, Ordering::Release);
        self.cv.notify_one();
        if let Some(w) = lock(&self.waker).take() {
            w.wake();
        }
    }

    /// For up to `spin`, calls `help` (which reads the ring on this thread) and yields between
    /// looks; then blocks until the reply or the deadline. `None`: the deadline passed.
    fn wait(&self, spin: Duration, deadline: Instant, mut help: impl FnMut()) -> Option<Result<Payload>> {
        if !spin.is_zero() {
            let spin_until = Instant::now() + spin;
            while !self.ready.load(Ordering::Acquire) && Instant::now() < spin_until {
                help();
                if self.ready.load(Ordering::Acquire) {
                    break;
                }
                // On a loaded machine a pure spin starves the very threads that produce the
                // reply (the server, our I/O thread): give the core away between looks.
                std::thread::yield_now();
            }
        }
        let mut g = lock(&self.value);
        loop {
            if let Some(v) = g.take() {
                return Some(v);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            g = self.cv.wait_timeout(g, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

/// What a stream's consumer sees, guarded by [`StreamState::q`].
pub(crate) struct StreamQueue {
    pub items: VecDeque<Payload>,
    /// Set once the terminal frame (or the connection's end) arrived.
    pub end: Option<Result<()>>,
    /// Window the server still has: granted minus received (may go below 0 by one chunk in bytes).
    outstanding_chunks: i64,
    outstanding_bytes: i64,
    /// Consumed since the last credit was queued.
    consumed_chunks: u64,
    consumed_bytes: u64,
    credit_queued: bool,
    pub cancelled: bool,
}

/// Shared between a [`crate::Stream`] handle and the I/O thread.
pub(crate) struct StreamState {
    pub id: u32,
    pub q: Mutex<StreamQueue>,
    pub cv: Condvar,
    window: (u32, u32),
    notify: Option<Arc<dyn Fn() + Send + Sync>>,
    /// The task awaiting the next chunk (see `Stream::poll_chunk`).
    pub waker: Mutex<Option<Waker>>,
}

impl StreamState {
    fn wake(&self) {
        self.cv.notify_all();
        if let Some(w) = lock(&self.waker).take() {
            w.wake();
        }
        if let Some(f) = &self.notify {
            f();
        }
    }
}

enum Entry {
    Request(Arc<ReplySlot>),
    Stream(Arc<StreamState>),
}

struct Calls {
    map: HashMap<u32, Entry>,
    next_id: u32,
}

impl Calls {
    /// The next id not in use (never 0; ids wrap after 2^32 − 1 calls).
    fn free_id(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = id.checked_add(1).unwrap_or(1);
            if !self.map.contains_key(&id) {
                return id;
            }
        }
    }
}

/// Small frames the I/O thread writes for others.
enum Out {
    Cancel(u32),
    Credit(Arc<StreamState>),
}

/// Counters of one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Frames written by this client.
    pub frames_sent: u64,
    /// Frames read.
    pub frames_received: u64,
    /// Doorbells rung to wake the server.
    pub doorbells_rung: u64,
    /// Times the I/O thread parked (slept in `poll`).
    pub parks: u64,
}

pub(crate) struct Conn {
    ep: Mutex<Endpoint>,
    /// Held for the whole of one message's write: fragments of two messages must not interleave.
    writer: Mutex<()>,
    space_lock: Mutex<()>,
    space_cv: Condvar,
    space_wanted: AtomicUsize,
    calls: Mutex<Calls>,
    ctl: ControlStream,
    doorbell: OwnedFd,
    wake_tx: UnixStream,
    wake_rx: UnixStream,
    io_parked: AtomicBool,
    outbox_ready: AtomicBool,
    outbox: Mutex<VecDeque<Out>>,
    closed: AtomicBool,
    close_error: Mutex<Option<Error>>,
    going_away: Mutex<Option<String>>,
    pub welcome: Welcome,
    spin: Duration,
    io_thread: Mutex<Option<JoinHandle<()>>>,
    parks: AtomicUsize,
}

impl Conn {
    /// Wraps a finished handshake and starts the I/O thread.
    pub fn start(est: Established, spin: Duration) -> Result<Arc<Conn>> {
        let (wake_tx, wake_rx) = UnixStream::pair().map_err(|e| Error::io("socketpair", e))?;
        for s in [&wake_tx, &wake_rx] {
            s.set_nonblocking(true).map_err(|e| Error::io("fcntl", e))?;
        }
        let Established {
            ctl,
            reader,
            endpoint,
            doorbell,
            welcome,
        } = est;
        let conn = Arc::new(Conn {
            ep: Mutex::new(endpoint),
            writer: Mutex::new(()),
            space_lock: Mutex::new(()),
            space_cv: Condvar::new(),
            space_wanted: AtomicUsize::new(0),
            calls: Mutex::new(Calls {
                map: HashMap::new(),
                next_id: 1,
            }),
            ctl,
            doorbell,
            wake_tx,
            wake_rx,
            io_parked: AtomicBool::new(false),
            outbox_ready: AtomicBool::new(false),
            outbox: Mutex::new(VecDeque::new()),
            closed: AtomicBool::new(false),
            close_error: Mutex::new(None),
            going_away: Mutex::new(None),
            welcome,
            spin,
            io_thread: Mutex::new(None),
            parks: AtomicUsize::new(0),
        });
        let io = Arc::clone(&conn);
        let handle = std::thread::Builder::new()
            .name("lapce-ai-client-io".into())
            .spawn(move || io.io_loop(reader))
            .map_err(|e| Error::io("spawn", e))?;
        *lock(&conn.io_thread) = Some(handle);
        Ok(conn)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The GOAWAY message, once the server sent one.
    pub fn going_away(&self) -> Option<String> {
        lock(&self.going_away).clone()
    }

    fn closed_error(&self) -> Error {
        lock(&self.close_error)
            .clone()
            .unwrap_or_else(|| Error::ConnectionLost("the connection is closed".into()))
    }

    /// The error of a call made after the connection ended.
    fn lost_error(&self) -> Error {
        match self.closed_error() {
            e @ (Error::Closed | Error::ConnectionLost(_)) => e,
            e => Error::ConnectionLost(e.to_string()),
        }
    }

    /// Fails new calls on a closed or going-away connection.
    fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            return Err(self.lost_error());
        }
        if let Some(msg) = self.going_away() {
            return Err(Error::GoingAway(msg));
        }
        Ok(())
    }

    pub fn stats(&self) -> ConnectionStats {
        let s = lock(&self.ep).stats();
        ConnectionStats {
            frames_sent: s.messages_sent,
            frames_received: s.messages_received,
            doorbells_rung: s.doorbells_rung,
            parks: self.parks.load(Ordering::Relaxed) as u64,
        }
    }

    fn check_frame(&self, method: &str, payload: &Payload) -> Result<usize> {
        if method.is_empty() || method.len() > MAX_METHOD {
            return Err(Error::InvalidArgument(format!(
                "method name must be 1..={MAX_METHOD} bytes, got {}",
                method.len()
            )));
        }
        let size = frame::HEADER + method.len() + payload.as_bytes().len();
        let limit = self.welcome.max_message as usize;
        if size > limit {
            return Err(Error::MessageTooLarge { size, limit });
        }
        Ok(size)
    }

    fn register(&self, entry: Entry) -> u32 {
        let mut calls = lock(&self.calls);
        let id = calls.free_id();
        calls.map.insert(id, entry);
        id
    }

    fn unregister(&self, id: u32) {
        lock(&self.calls).map.remove(&id);
    }

    /// Writes frames in order, waiting for ring space, until `deadline`. A deadline that passes
    /// in the middle of a message ends the connection (the fragments cannot be taken back).
    fn send_frames(&self, frames: &[&[u8]], deadline: Option<Instant>) -> Result<()> {
        let _w = lock(&self.writer);
        for msg in frames {
            let mut progress = 0;
            loop {
                if self.is_closed() {
                    return Err(self.lost_error());
                }
                let (done, needed) = {
                    let mut ep = lock(&self.ep);
                    let done = ep.write(msg, &mut progress).map_err(Error::from)?;
                    (done, if done { 0 } else { ep.space_needed(msg.len() - progress) })
                };
                if done {
                    break;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    if progress > 0 {
                        // Half a message is in the ring and cannot be taken back: a server that
                        // stopped reading mid-message leaves no way on but to end the session.
                        self.shutdown(Error::ConnectionLost(
                            "the server stopped reading in the middle of a message".into(),
                        ));
                    }
                    return Err(Error::Timeout(Duration::ZERO));
                }
                self.wait_space(needed);
            }
        }
        Ok(())
    }

    fn wait_space(&self, needed: usize) {
        let g = lock(&self.space_lock);
        self.space_wanted.store(needed, Ordering::SeqCst);
        if self.io_parked.load(Ordering::SeqCst) {
            // It must re-park announcing that it waits for space, or the server would not ring.
            self.wake_io();
        }
        let _ = self.space_cv.wait_timeout(g, SPACE_WAIT);
        self.space_wanted.store(0, Ordering::SeqCst);
    }

    fn notify_space(&self) {
        let _g = lock(&self.space_lock);
        self.space_cv.notify_all();
    }

    fn wake_io(&self) {
        // A full socket means a wake-up is already pending: fine.
        let _ = (&self.wake_tx).write(&[1]);
    }

    fn post(&self, out: Out) {
        lock(&self.outbox).push_back(out);
        self.outbox_ready.store(true, Ordering::SeqCst);
        if self.io_parked.load(Ordering::SeqCst) {
            self.wake_io();
        }
    }

    /// Sends CANCEL for `id` (from the I/O thread, so the caller never blocks).
    pub fn cancel(&self, id: u32) {
        if !self.is_closed() {
            self.post(Out::Cancel(id));
        }
    }

    /// Writes a REQUEST and returns its id and reply slot without waiting for the reply.
    pub fn send_request(&self, method: &str, payload: &Payload, timeout: Duration) -> Result<(u32, Arc<ReplySlot>)> {
        self.check_open()?;
        self.check_frame(method, payload)?;
        let slot = Arc::new(ReplySlot::new());
        let id = self.register(Entry::Request(Arc::clone(&slot)));
        let frame = frame::encode(Kind::Request, id, method, payload.is_json(), payload.as_bytes());
        if let Err(e) = self.send_frames(&[&frame], Some(Instant::now() + timeout)) {
            self.unregister(id);
            return Err(match e {
                Error::Timeout(_) => Error::Timeout(timeout),
                e => e,
            });
        }
        Ok((id, slot))
    }

    /// Waits for a request's reply; on timeout cancels it on the server.
    pub fn wait_reply(&self, id: u32, slot: &ReplySlot, deadline: Instant, timeout: Duration) -> Result<Payload> {
        match slot.wait(self.spin, deadline, || self.help_read()) {
            Some(v) => v,
            None => {
                // The id stays in use until the server's terminal frame (PROTOCOL.md §4.2).
                self.cancel(id);
                Err(Error::Timeout(timeout))
            }
        }
    }

    /// Takes a request's reply if it has arrived.
    pub fn try_reply(slot: &ReplySlot) -> Option<Result<Payload>> {
        if !slot.ready.load(Ordering::Acquire) {
            return None;
        }
        lock(&slot.value).take()
    }

    /// Opens a stream with an initial window; returns its shared state.
    pub fn open_stream(
        &self,
        method: &str,
        payload: &Payload,
        window: (u32, u32),
        notify: Option<Arc<dyn Fn() + Send + Sync>>,
        timeout: Duration,
    ) -> Result<Arc<StreamState>> {
        self.check_open()?;
        self.check_frame(method, payload)?;
        if window.0 == 0 || window.1 == 0 {
            return Err(Error::InvalidArgument("a stream window needs at least 1 chunk and 1 byte".into()));
        }
        let window = (window.0.min(1 << 31), window.1.min(1 << 31));
        let mut state = Arc::new(StreamState {
            id: 0,
            q: Mutex::new(StreamQueue {
                items: VecDeque::new(),
                end: None,
                outstanding_chunks: window.0 as i64,
                outstanding_bytes: window.1 as i64,
                consumed_chunks: 0,
                consumed_bytes: 0,
                credit_queued: false,
                cancelled: false,
            }),
            cv: Condvar::new(),
            window,
            notify,
            waker: Mutex::new(None),
        });
        // The id goes into the state before it is shared, so take it under the calls lock.
        let id = {
            let mut calls = lock(&self.calls);
            let id = calls.free_id();
            Arc::get_mut(&mut state).expect("not shared yet").id = id;
            calls.map.insert(id, Entry::Stream(Arc::clone(&state)));
            id
        };
        let open = frame::encode(Kind::StreamOpen, id, method, payload.is_json(), payload.as_bytes());
        let credit = frame::credit(id, window.0, window.1);
        if let Err(e) = self.send_frames(&[&open, &credit], Some(Instant::now() + timeout)) {
            self.unregister(id);
            return Err(match e {
                Error::Timeout(_) => Error::Timeout(timeout),
                e => e,
            });
        }
        Ok(state)
    }

    /// The consumer took `bytes` of one chunk: return credit once half the window is used.
    pub fn consumed(&self, s: &Arc<StreamState>, bytes: usize) {
        let mut q = lock(&s.q);
        q.consumed_chunks += 1;
        q.consumed_bytes += bytes as u64;
        let due = q.consumed_chunks * 2 >= s.window.0 as u64 || q.consumed_bytes * 2 >= s.window.1 as u64;
        if due && !q.credit_queued && !q.cancelled && q.end.is_none() {
            q.credit_queued = true;
            drop(q);
            self.post(Out::Credit(Arc::clone(s)));
        }
    }

    /// Ends the connection (idempotent): every call in flight fails with `err`, our ring's
    /// `closed` word is set, the control socket shut down, the I/O thread stopped.
    pub fn shutdown(&self, err: Error) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        *lock(&self.close_error) = Some(err.clone());
        let _ = lock(&self.ep).close();
        self.ctl.shutdown();
        let entries: Vec<Entry> = lock(&self.calls).map.drain().map(|(_, e)| e).collect();
        for e in entries {
            match e {
                Entry::Request(slot) => slot.deliver(Err(err.clone())),
                Entry::Stream(s) => {
                    lock(&s.q).end.get_or_insert(Err(err.clone()));
                    s.wake();
                }
            }
        }
        self.notify_space();
        self.wake_io();
    }

    /// Stops the I/O thread and waits for it (not from the I/O thread itself).
    pub fn join(&self) {
        let handle = lock(&self.io_thread).take();
        if let Some(h) = handle {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }

    // ----- the I/O thread -----

    fn io_loop(self: Arc<Self>, mut reader: ControlReader) {
        if let Err(e) = self.run(&mut reader) {
            // Deliver whatever the server published before it went (its last replies), and read
            // a GOAWAY it sent just before closing (the `closed` word may be seen first).
            let _ = self.pump_incoming();
            if matches!(e, Error::ConnectionLost(_)) {
                // The ring may close a moment before the control socket does: read what the
                // server said there (GOAWAY's reason) until its EOF, briefly.
                let until = Instant::now() + Duration::from_millis(100);
                while crate::handshake::wait_fd(&self.ctl, PollFlags::IN, until).unwrap_or(false) {
                    if self.pump_control(&mut reader).is_err() {
                        break;
                    }
                }
            }
            let e = match (e, self.going_away()) {
                (Error::ConnectionLost(m), Some(why)) => Error::ConnectionLost(format!("{m} (after GOAWAY: {why})")),
                (e, _) => e,
            };
            self.shutdown(e);
        }
    }

    fn run(&self, reader: &mut ControlReader) -> Result<()> {
        self.handle_control_frames(reader)?;
        let mut last_work = Instant::now();
        let mut last_control = Instant::now();
        let mut last_space_notify = Instant::now();
        let mut spins: u32 = 0;
        loop {
            if self.is_closed() {
                return Ok(());
            }
            let mut worked = self.pump_incoming()? > 0;
            if self.outbox_ready.load(Ordering::Acquire) {
                worked |= self.flush_outbox()?;
            }
            let now = Instant::now();
            if now.duration_since(last_control) >= CONTROL_CHECK {
                last_control = now;
                self.pump_control(reader)?;
            }
            if self.space_wanted.load(Ordering::Acquire) > 0 && now.duration_since(last_space_notify) >= Duration::from_micros(50) {
                last_space_notify = now;
                self.notify_space();
            }
            if worked {
                last_work = now;
                continue;
            }
            if now.duration_since(last_work) < self.spin {
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(64) {
                    // Two cores shared with the server: let it run.
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            self.park(reader)?;
            last_work = Instant::now();
            last_control = last_work;
        }
    }

    fn park(&self, reader: &mut ControlReader) -> Result<()> {
        self.io_parked.store(true, Ordering::SeqCst);
        let want = self.space_wanted.load(Ordering::SeqCst);
        let may_sleep = !self.outbox_ready.load(Ordering::SeqCst) && !self.is_closed() && lock(&self.ep).prepare_sleep(want)?;
        if may_sleep {
            self.parks.fetch_add(1, Ordering::Relaxed);
            let mut fds = [
                PollFd::new(&self.doorbell, PollFlags::IN),
                PollFd::new(&self.ctl, PollFlags::IN),
                PollFd::new(&self.wake_rx, PollFlags::IN),
            ];
            loop {
                match rustix::event::poll(&mut fds, None) {
                    Ok(_) => break,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => {
                        self.io_parked.store(false, Ordering::SeqCst);
                        return Err(Error::io("poll", e));
                    }
                }
            }
            let ctl_ready = !fds[1].revents().is_empty();
            lock(&self.ep).woke()?;
            let mut sink = [0u8; 64];
            while matches!((&self.wake_rx).read(&mut sink), Ok(n) if n > 0) {}
            if ctl_ready {
                self.pump_control(reader)?;
            }
        }
        self.io_parked.store(false, Ordering::SeqCst);
        if want > 0 {
            self.notify_space();
        }
        Ok(())
    }

    /// Reads up to one batch of incoming frames and dispatches them.
    fn pump_incoming(&self) -> Result<usize> {
        let mut to_wake = Vec::new();
        let r = self.pump_locked(&mut lock(&self.ep), &mut to_wake);
        wake_all(to_wake);
        r
    }

    /// A caller waiting for its reply reads the ring itself, if nobody else is: the reply then
    /// needs no thread hand-off. Errors are the I/O thread's to report; a frame that broke the
    /// protocol was consumed here, so that one ends the connection here.
    fn help_read(&self) {
        let mut ep = match self.ep.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        let mut to_wake = Vec::new();
        let r = self.pump_locked(&mut ep, &mut to_wake);
        drop(ep);
        wake_all(to_wake);
        match r {
            Ok(_) => {}
            Err(Error::ConnectionLost(_)) => self.wake_io(),
            Err(e) => self.shutdown(e),
        }
    }

    fn pump_locked(&self, ep: &mut Endpoint, to_wake: &mut Vec<Arc<StreamState>>) -> Result<usize> {
        let mut n = 0;
        let mut result = Ok(());
        while n < BATCH {
            let next = match ep.next_message() {
                Ok(Some(next)) => next,
                Ok(None) => break,
                Err(e) => {
                    result = Err(Error::from(e));
                    break;
                }
            };
            n += 1;
            let r = match next {
                Next::InPlace { offset, len } => {
                    let mut buf = vec![0u8; len];
                    ep.rx_mapping().read_bytes(offset, &mut buf);
                    self.dispatch(&buf, to_wake)
                }
                Next::Assembled(v) => {
                    let r = self.dispatch(&v, to_wake);
                    ep.recycle(v);
                    r
                }
            };
            if let Err(e) = r {
                result = Err(e);
                break;
            }
        }
        ep.release().map_err(Error::from)?;
        result?;
        if n == 0 && ep.peer_closed() && !ep.has_pending() {
            return Err(Error::ConnectionLost("the server closed the channel".into()));
        }
        Ok(n)
    }

    fn dispatch(&self, buf: &[u8], to_wake: &mut Vec<Arc<StreamState>>) -> Result<()> {
        let f = frame::decode(buf).map_err(|e| Error::Protocol(format!("server sent a malformed frame: {e}")))?;
        let payload = || {
            if f.json {
                Payload::Json(f.payload.to_vec())
            } else {
                Payload::Bytes(f.payload.to_vec())
            }
        };
        if f.id == 0 {
            if f.kind == Kind::Error {
                return Err(Error::Remote(parse_error(f.payload)));
            }
            return Err(Error::Protocol(format!("server sent {:?} with id 0", f.kind)));
        }
        match f.kind {
            Kind::Response | Kind::Error => {
                let entry = lock(&self.calls).map.remove(&f.id);
                let value = if f.kind == Kind::Response {
                    Ok(payload())
                } else {
                    Err(Error::Remote(parse_error(f.payload)))
                };
                match entry {
                    Some(Entry::Request(slot)) => slot.deliver(value),
                    Some(Entry::Stream(s)) => {
                        if f.kind == Kind::Response {
                            return Err(Error::Protocol(format!("server sent RESPONSE for stream {}", f.id)));
                        }
                        lock(&s.q).end = Some(value.map(|_| ()));
                        to_wake.push(s);
                    }
                    None => {}
                }
            }
            Kind::StreamChunk | Kind::StreamEnd => {
                let s = match lock(&self.calls).map.get(&f.id) {
                    Some(Entry::Stream(s)) => Arc::clone(s),
                    Some(Entry::Request(_)) => return Err(Error::Protocol(format!("server sent {:?} for request {}", f.kind, f.id))),
                    None => return Ok(()),
                };
                if f.kind == Kind::StreamEnd {
                    self.unregister(f.id);
                    lock(&s.q).end = Some(Ok(()));
                } else {
                    let mut q = lock(&s.q);
                    if q.outstanding_chunks < 1 || q.outstanding_bytes < 1 {
                        return Err(Error::Protocol(format!("server sent a chunk of stream {} beyond its window", f.id)));
                    }
                    q.outstanding_chunks -= 1;
                    q.outstanding_bytes -= f.payload.len() as i64;
                    if !q.cancelled {
                        q.items.push_back(payload());
                    }
                }
                to_wake.push(Arc::clone(&s));
            }
            other => return Err(Error::Protocol(format!("server sent a client-only frame kind {other:?}"))),
        }
        Ok(())
    }

    /// Writes queued CANCEL and STREAM_CREDIT frames, if the ring takes them now.
    fn flush_outbox(&self) -> Result<bool> {
        // A caller in the middle of a long message holds the writer; try again next turn.
        let _w = match self.writer.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Ok(false),
        };
        let mut wrote = false;
        loop {
            let Some(out) = lock(&self.outbox).pop_front() else {
                self.outbox_ready.store(false, Ordering::SeqCst);
                // A post between the pop and the store would be missed; look once more.
                if lock(&self.outbox).is_empty() {
                    return Ok(wrote);
                }
                self.outbox_ready.store(true, Ordering::SeqCst);
                continue;
            };
            let frame = match &out {
                Out::Cancel(id) => frame::encode(Kind::Cancel, *id, "", false, &[]),
                Out::Credit(s) => {
                    let mut q = lock(&s.q);
                    q.credit_queued = false;
                    if q.cancelled || q.end.is_some() || q.consumed_chunks == 0 {
                        continue;
                    }
                    let chunks = q.consumed_chunks.min(u32::MAX as u64) as u32;
                    let bytes = q.consumed_bytes.clamp(1, u32::MAX as u64) as u32;
                    q.consumed_chunks -= chunks as u64;
                    q.consumed_bytes = q.consumed_bytes.saturating_sub(bytes as u64);
                    q.outstanding_chunks += chunks as i64;
                    q.outstanding_bytes += bytes as i64;
                    frame::credit(s.id, chunks, bytes)
                }
            };
            let mut progress = 0;
            if !lock(&self.ep).write(&frame, &mut progress).map_err(Error::from)? {
                // The ring is full: small frames go in whole or not at all; keep it for later.
                if let Out::Credit(s) = &out {
                    let mut q = lock(&s.q);
                    let frame_chunks = u32::from_le_bytes(frame[8..12].try_into().expect("credit frame"));
                    let frame_bytes = u32::from_le_bytes(frame[12..16].try_into().expect("credit frame"));
                    q.consumed_chunks += frame_chunks as u64;
                    q.consumed_bytes += frame_bytes as u64;
                    q.outstanding_chunks -= frame_chunks as i64;
                    q.outstanding_bytes -= frame_bytes as i64;
                    q.credit_queued = true;
                }
                lock(&self.outbox).push_front(out);
                self.outbox_ready.store(true, Ordering::SeqCst);
                return Ok(wrote);
            }
            wrote = true;
        }
    }

    fn pump_control(&self, reader: &mut ControlReader) -> Result<()> {
        let mut buf = [0u8; 4096];
        loop {
            match self.ctl.recv(&mut buf) {
                Ok(None) => break,
                Ok(Some(r)) if r.bytes == 0 => {
                    // Frames sent just before the close (a GOAWAY, a REJECT) still count.
                    self.handle_control_frames(reader)?;
                    return Err(Error::ConnectionLost("the server closed the control socket".into()));
                }
                Ok(Some(r)) => {
                    if !r.fds.is_empty() || r.truncated {
                        return Err(Error::Protocol(format!("server sent {} fds after READY", r.fds.len())));
                    }
                    reader.push(&buf[..r.bytes]);
                }
                Err(lapce_ai_transport::Error::InvalidShm(m)) => return Err(Error::Protocol(m)),
                Err(e) => return Err(Error::ConnectionLost(format!("control socket: {e}"))),
            }
        }
        self.handle_control_frames(reader)
    }

    fn handle_control_frames(&self, reader: &mut ControlReader) -> Result<()> {
        while let Some(f) = reader.next_frame().map_err(|e| Error::Protocol(format!("control socket: {e}")))? {
            match f {
                ControlFrame::GoAway(g) => {
                    *lock(&self.going_away) = Some(if g.message.is_empty() {
                        "server shutting down".into()
                    } else {
                        g.message
                    });
                }
                ControlFrame::Reject(r) => {
                    return Err(Error::Rejected {
                        reason: r.reason,
                        message: r.message,
                    })
                }
                other => return Err(Error::Protocol(format!("unexpected control frame after READY: {other:?}"))),
            }
        }
        Ok(())
    }
}

fn wake_all(mut streams: Vec<Arc<StreamState>>) {
    streams.dedup_by(|a, b| Arc::ptr_eq(a, b));
    for s in streams {
        s.wake();
    }
}

fn parse_error(payload: &[u8]) -> RemoteError {
    #[derive(serde::Deserialize)]
    struct Wire {
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        retryable: bool,
        #[serde(default)]
        details: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Wire>(payload) {
        Ok(w) => RemoteError {
            code: w.code,
            message: w.message,
            retryable: w.retryable,
            details: w.details,
        },
        Err(e) => RemoteError {
            code: "PROTOCOL_ERROR".into(),
            message: format!("server sent an ERROR frame that is not {{code, message}} JSON: {e}"),
            retryable: false,
            details: None,
        },
    }
}
