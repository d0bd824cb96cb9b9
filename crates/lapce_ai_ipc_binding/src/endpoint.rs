//! `NativeEndpoint`: one side of a shared-memory channel, as seen from JS.
//!
//! The hot path is shaped by Node-API costs measured on the reference machine (an empty call is
//! about 12 ns, making a native Buffer about 2 µs, a JS view of an existing ArrayBuffer 21 ns):
//! * receiving: one `poll()` call fills an `Int32Array` with descriptors (offset, length, kind) of many
//!   messages, and JS reads them in place through views of a single external ArrayBuffer over
//!   the ring, made once per mapping;
//! * sending: in zero-copy mode JS writes records into the outgoing ring itself
//!   (`src/transport/ring-writer.ts`); `txBuffer()` hands the ring over and the Rust producer is
//!   gone from then on (see [`State`]). The copying mode's `write()` takes the caller's bytes as a
//!   borrowed slice (no copy until the one into the ring).

use lapce_ai_transport::{ChannelFds, Endpoint, Next, Receiver, Record};
use napi::bindgen_prelude::{Buffer, Function, Int32ArraySlice};
use napi::Env;
use napi_derive::napi;

use crate::budget::NativeReassemblyBudget;
use crate::error::{closed, invalid, js_err, Result};
use crate::fds::NativeFds;
use crate::layout::{POLL_DESC_WORDS, POLL_FAILED, POLL_FRAGMENT, POLL_LAST_FRAGMENT, POLL_WHOLE};
use crate::raw::{i32_slice_mut, ExternalBuffer, RawValue};
use crate::wake::{WakeMode, Watch};

/// Which end of a channel a `NativeEndpoint` is.
#[napi]
pub enum Side {
    /// The side that made the fds with `createChannelFds` (writes ring 0).
    Server,
    /// The side that received the three fds of WELCOME (writes ring 1).
    Client,
}

/// Counters of one endpoint (all monotonic).
#[napi(object)]
pub struct NativeEndpointStats {
    pub messages_sent: f64,
    pub bytes_sent: f64,
    pub messages_received: f64,
    pub bytes_received: f64,
    pub doorbells_rung: f64,
    pub doorbells_suppressed: f64,
    pub ring_full: f64,
}

/// Who writes the outgoing ring. The writer rule is this type: once JS owns the ring there is
/// no Rust `Producer` left that could write or compute space from a stale `head`.
enum State {
    /// Rust writes (the copying path, or zero copy before `txBuffer()`).
    Native(Endpoint),
    /// JS writes, starting at `tx_head`.
    External { rx: Receiver, tx_head: u32 },
}

/// One side of an open channel. See `src/transport/channel.ts` for the JS class built on it.
#[napi]
pub struct NativeEndpoint {
    state: Option<State>,
    rx_buffer: Option<ExternalBuffer>,
    /// A failure `poll()` met after messages it had already described: thrown by the next
    /// `poll()`, so those messages are delivered first (nothing valid is lost to a bad one).
    failed: Option<lapce_ai_transport::Error>,
    tx_buffer: Option<ExternalBuffer>,
    watch: Watch,
    zero_copy: bool,
}

impl NativeEndpoint {
    fn rx(&mut self) -> Result<&mut Receiver> {
        match self.state.as_mut() {
            Some(State::Native(ep)) => Ok(ep),
            Some(State::External { rx, .. }) => Ok(rx),
            None => Err(closed()),
        }
    }

    fn native(&mut self) -> Result<&mut Endpoint> {
        match self.state.as_mut() {
            Some(State::Native(ep)) => Ok(ep),
            Some(State::External { .. }) => Err(invalid("JS writes this endpoint's outgoing ring (txBuffer() was taken)")),
            None => Err(closed()),
        }
    }
}

#[napi]
impl NativeEndpoint {
    /// Opens one side of a channel from its fds (taken from `fds`, which is left empty).
    /// `Side.Server`: takes the side `createChannelFds` already opened (after the set was
    /// sent), with nothing left to check or map; `capacity` must be the set's. `Side.Client`:
    /// from the three fds WELCOME carried, each checked before anything is mapped (sealed
    /// memfds of the right size, two distinct rings, an `AF_UNIX` stream doorbell).
    /// `zeroCopy: false` forces the copying path that runtimes without external buffers use.
    /// `budget`: the reassembly budget to charge (none: unlimited).
    #[napi(constructor)]
    pub fn new(
        fds: &mut NativeFds,
        side: Side,
        capacity: u32,
        max_message: u32,
        zero_copy: Option<bool>,
        budget: Option<&NativeReassemblyBudget>,
    ) -> Result<Self> {
        let (wire, server) = fds.take();
        let mut ep = match (side, server) {
            (Side::Server, Some(mut ep)) => {
                if ep.capacity() != capacity as usize {
                    return Err(invalid(format!(
                        "the set was made for a ring capacity of {} bytes, not {capacity}",
                        ep.capacity()
                    )));
                }
                ep.set_max_message(max_message as usize);
                // The client's fds were sent; dropping them here (its doorbell end above all) is
                // what lets the server see the client hang up.
                drop(wire);
                ep
            }
            (Side::Server, None) => return Err(invalid("the server side opens the fds createChannelFds made")),
            (Side::Client, Some(_)) => return Err(invalid("the client side opens received fds, not createChannelFds's")),
            (Side::Client, None) => {
                let fds = ChannelFds::from_vec(wire).map_err(js_err)?;
                Endpoint::open(fds, lapce_ai_transport::Side::Client, capacity as usize, max_message as usize).map_err(js_err)?
            }
        };
        if let Some(b) = budget {
            ep.set_reassembly_budget(b.inner.clone()).map_err(js_err)?;
        }
        Ok(NativeEndpoint {
            state: Some(State::Native(ep)),
            rx_buffer: None,
            failed: None,
            tx_buffer: None,
            watch: Watch::default(),
            zero_copy: zero_copy.unwrap_or(true),
        })
    }

    /// The incoming ring's whole region (header and records) as one ArrayBuffer, made once;
    /// offsets from `poll()` index into it. `null` when the runtime refuses external buffers
    /// (or zero copy is off): use `readCopy()` then.
    #[napi(ts_return_type = "ArrayBuffer | null")]
    pub fn rx_buffer(&mut self, env: Env) -> Result<Option<RawValue>> {
        if let Some(b) = &self.rx_buffer {
            return Ok(Some(RawValue(b.value()?)));
        }
        if !self.zero_copy {
            return Ok(None);
        }
        let mapping = self.rx()?.rx_mapping().clone();
        match ExternalBuffer::new(&env, &mapping)? {
            Some(b) => {
                let v = b.value()?;
                self.rx_buffer = Some(b);
                Ok(Some(RawValue(v)))
            }
            None => {
                self.zero_copy = false;
                Ok(None)
            }
        }
    }

    /// Hands the outgoing ring to JS: its whole region as one ArrayBuffer for the JS writer
    /// (`docs/PROTOCOL.md` §3.4), which starts at `txHead`. From then on `write()`,
    /// `spaceNeeded()` and `prepareSleep(n > 0)` fail: JS owns `head`. `null` without external
    /// buffers (nothing changes: use `write()`).
    #[napi(ts_return_type = "ArrayBuffer | null")]
    pub fn tx_buffer(&mut self, env: Env) -> Result<Option<RawValue>> {
        if let Some(b) = &self.tx_buffer {
            return Ok(Some(RawValue(b.value()?)));
        }
        if !self.zero_copy {
            return Ok(None);
        }
        let ep = match self.state.take() {
            Some(State::Native(ep)) => ep,
            other => {
                self.state = other;
                return Err(closed());
            }
        };
        let (tx, rx) = ep.into_external_tx();
        match ExternalBuffer::new(&env, tx.mapping()) {
            Ok(Some(b)) => {
                let v = b.value()?;
                self.tx_buffer = Some(b);
                self.state = Some(State::External { rx, tx_head: tx.head() });
                Ok(Some(RawValue(v)))
            }
            Ok(None) => {
                // Refused: the copying path needs the producer back, so put it back together.
                // (Only external buffers can be refused, before anything was written.)
                self.zero_copy = false;
                self.state = None;
                Err(invalid("external buffers were refused after the rx buffer was made"))
            }
            Err(e) => {
                self.state = None;
                Err(e)
            }
        }
    }

    /// Where the JS writer starts: the producer's own validated `head` (never re-read from the
    /// shared header, which the peer can write).
    #[napi(getter)]
    pub fn tx_head(&self) -> Result<u32> {
        match &self.state {
            Some(State::External { tx_head, .. }) => Ok(*tx_head),
            Some(State::Native(_)) => Err(invalid("txBuffer() has not handed the ring to JS")),
            None => Err(closed()),
        }
    }

    /// Rings the peer's doorbell: a JS writer found the peer asleep after publishing.
    #[napi]
    pub fn ring_peer(&mut self) -> Result<()> {
        self.rx()?.ring_peer().map_err(js_err)
    }

    /// Writes `data[progress..]` as far as the ring has room and returns the new progress;
    /// the message is complete when that equals `data.length`. Returns -1 when not even its
    /// first record fit (so an empty message can tell "not sent" from "sent"). Never blocks,
    /// never drops. The copying path only.
    #[napi]
    pub fn write(&mut self, data: &[u8], progress: u32) -> Result<i32> {
        let mut p = progress as usize;
        let done = self.native()?.write(data, &mut p).map_err(js_err)?;
        Ok(if !done && p == 0 { -1 } else { p as i32 })
    }

    /// Releases every record returned by the previous `poll()`, then fills `out` with
    /// descriptors of waiting records ([`POLL_DESC_WORDS`] words each: offset into the rx
    /// buffer, length, kind) and returns how many. A kind of [`POLL_WHOLE`] is a message; a
    /// message larger than a record arrives as [`POLL_FRAGMENT`]s and a [`POLL_LAST_FRAGMENT`],
    /// which JS copies into a buffer of its own as it reads them (one copy, checked here: order,
    /// size against `maxMessage`, the reassembly budget). A fragment is always the last
    /// descriptor of its batch, and records may wait behind it. Everything returned stays valid
    /// until the next `poll()` or `release()`. (Releasing here saves a native call per batch;
    /// call `release()` before going idle.)
    #[napi]
    pub fn poll(&mut self, mut out: Int32ArraySlice<'_>) -> Result<u32> {
        let out = i32_slice_mut(&mut out);
        if !self.zero_copy {
            return Err(invalid("poll() needs zero copy; use readCopy()"));
        }
        let words = POLL_DESC_WORDS as usize;
        let slots = out.len() / words;
        self.rx()?;
        if let Some(e) = self.failed.take() {
            return Err(js_err(e));
        }
        let rx = self.rx()?;
        rx.release().map_err(js_err)?;
        let mut n = 0;
        let mut failed = None;
        while n < slots {
            let record = match rx.next_record() {
                Ok(Some(record)) => record,
                Ok(None) => break,
                Err(e) if n == 0 => return Err(js_err(e)),
                Err(e) => {
                    // The batch so far is valid: describe it, mark where it stops, throw next time.
                    failed = Some(e);
                    break;
                }
            };
            let (offset, len, kind) = match record {
                Record::Whole { offset, len } => (offset, len, POLL_WHOLE),
                Record::Fragment { offset, len, last: false } => (offset, len, POLL_FRAGMENT),
                Record::Fragment { offset, len, last: true } => (offset, len, POLL_LAST_FRAGMENT),
            };
            // Offsets and lengths are within a ring of at most 1 GiB: they fit an i32.
            out[words * n] = offset as i32;
            out[words * n + 1] = len as i32;
            out[words * n + 2] = kind as i32;
            n += 1;
            if kind != POLL_WHOLE {
                // A fragment ends the batch: JS copies it and polls again, which releases it, so
                // the writer refills that space while JS copies the next one.
                break;
            }
        }
        if let Some(e) = failed {
            // The loop stopped before filling slot n, so it is free for the marker.
            out[words * n..words * (n + 1)].copy_from_slice(&[0, 0, POLL_FAILED as i32]);
            n += 1;
            self.failed = Some(e);
        }
        Ok(n as u32)
    }

    /// The next message copied into a new Buffer (and released), or null. The receive path
    /// for runtimes without external buffers.
    #[napi]
    pub fn read_copy(&mut self) -> Result<Option<Buffer>> {
        let rx = self.rx()?;
        let Some(next) = rx.next_message().map_err(js_err)? else {
            rx.release().map_err(js_err)?;
            return Ok(None);
        };
        let out = match next {
            Next::InPlace { offset, len } => {
                let mut v = vec![0; len];
                rx.rx_mapping().read_bytes(offset, &mut v);
                v
            }
            Next::Assembled(v) => v,
        };
        rx.release().map_err(js_err)?;
        Ok(Some(out.into()))
    }

    /// Gives every message returned so far back to the peer (and wakes it if it waits for space).
    #[napi]
    pub fn release(&mut self) -> Result<()> {
        self.rx()?.release().map_err(js_err)
    }

    /// Announces sleep. `wantSpace`: bytes we wait to be free in the outgoing ring (0 if none;
    /// only the copying path, where Rust writes, may wait for space here). False means there is
    /// already work, or the peer is gone: do not sleep.
    #[napi]
    pub fn prepare_sleep(&mut self, want_space: u32) -> Result<bool> {
        if want_space == 0 {
            return Ok(self.rx()?.prepare_sleep());
        }
        self.native()?.prepare_sleep(want_space as usize).map_err(js_err)
    }

    /// Resets the doorbell and withdraws the sleep announcement after a wake-up. Returns true
    /// once the peer hung up its doorbell end: read what is left in the ring, then close.
    #[napi]
    pub fn woke(&mut self) -> Result<bool> {
        self.rx()?.woke().map_err(js_err)
    }

    /// Free space the next fragment of a message with `remaining` bytes to go needs (the copying
    /// path).
    #[napi]
    pub fn space_needed(&mut self, remaining: u32) -> Result<u32> {
        Ok(self.native()?.space_needed(remaining as usize) as u32)
    }

    /// Whether the peer closed its ring or hung up its doorbell (meaningful once `poll()` finds
    /// nothing).
    #[napi]
    pub fn peer_closed(&mut self) -> Result<bool> {
        Ok(self.rx()?.peer_closed())
    }

    /// Whether a message is waiting.
    #[napi]
    pub fn has_pending(&mut self) -> Result<bool> {
        Ok(self.rx()?.has_pending())
    }

    /// Calls `callback` from the event loop whenever this side's doorbell rings (or hangs up).
    /// `mode`: `uv` (default, `uv_poll`) or `thread` (blocked thread + threadsafe function);
    /// any other value is an error.
    #[napi]
    pub fn watch(&mut self, env: Env, callback: Function<'_, (), ()>, mode: Option<WakeMode>) -> Result<()> {
        let bell = self.rx()?.own_doorbell();
        let mode = mode.unwrap_or(WakeMode::Uv);
        // Only a waker thread drains the doorbell itself, through a copy of the fd; `uv_poll`
        // watches ours (a dup and a close per channel less).
        let (fd, dup) = match mode {
            WakeMode::Thread => (bell.raw_fd(), Some(crate::wake::dup_fd(bell)?)),
            WakeMode::Uv => (bell.raw_fd(), None),
        };
        self.watch.start(&env, mode, fd, dup, callback, "doorbell")
    }

    /// Whether the doorbell watch keeps the process alive (default true).
    #[napi]
    pub fn set_ref(&self, keep_alive: bool) {
        self.watch.set_ref(keep_alive);
    }

    /// Stops the doorbell watch.
    #[napi]
    pub fn unwatch(&mut self) {
        self.watch.stop();
    }

    /// Counters so far.
    #[napi]
    pub fn stats(&self) -> NativeEndpointStats {
        let s = match &self.state {
            Some(State::Native(ep)) => ep.stats(),
            Some(State::External { rx, .. }) => rx.stats(),
            None => Default::default(),
        };
        NativeEndpointStats {
            messages_sent: s.messages_sent as f64,
            bytes_sent: s.bytes_sent as f64,
            messages_received: s.messages_received as f64,
            bytes_received: s.bytes_received as f64,
            doorbells_rung: s.doorbells_rung as f64,
            doorbells_suppressed: s.doorbells_suppressed as f64,
            ring_full: s.ring_full as f64,
        }
    }

    /// Sets the outgoing ring's `closed` word (and wakes the peer if it sleeps), so the peer sees
    /// end-of-stream after what was published, while everything else stays open until
    /// `close()`. Idempotent; a no-op once closed.
    #[napi]
    pub fn close_outgoing(&mut self) -> Result<()> {
        match self.rx() {
            Ok(rx) => rx.close().map_err(js_err),
            Err(_) => Ok(()),
        }
    }

    /// Closes this side: the peer sees end-of-stream, the doorbell fd is closed, the ring
    /// ArrayBuffers are detached (every view reads as empty) and both rings are unmapped, all
    /// now rather than at garbage collection. Idempotent.
    #[napi]
    pub fn close(&mut self, env: Env) {
        self.watch.stop();
        let _ = self.close_outgoing();
        self.state = None;
        self.failed = None;
        // The endpoint (and its share of the mappings) is gone; detaching the buffers drops
        // the last share, so both rings are unmapped here, not at garbage collection.
        for b in [self.rx_buffer.take(), self.tx_buffer.take()].into_iter().flatten() {
            b.release(env.raw());
        }
    }

    /// Whether `close()` was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.state.is_none()
    }
}
