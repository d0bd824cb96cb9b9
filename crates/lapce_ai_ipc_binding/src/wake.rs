//! Waking the JS event loop when an fd (a doorbell, a control socket) becomes readable.
//!
//! Two ways, both kept so the choice can be re-measured (`npm run bench` prints both):
//! * **`uv`** (the default): a libuv `uv_poll` on the fd, so Node's own epoll wakes the loop and
//!   the callback runs directly on it. Measured on the reference 2-vCPU machine this adds about
//!   3 µs to a bare thread wake-up.
//! * **`thread`**: a Rust thread blocks in `poll(2)` and hands over through a threadsafe function
//!   (a `uv_async` plus a queue). That is a second wake-up, another thread to schedule, and
//!   about 8 µs extra; it exists as the fallback for hosts that do not export libuv.

use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::thread::JoinHandle;

use lapce_ai_transport::Doorbell;
use napi::bindgen_prelude::Function;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, JsValue};
use rustix::event::{PollFd, PollFlags};

use crate::error::{io, js_err, napi_err, Result};
use crate::raw::UvPoll;

/// How a watched fd wakes the event loop.
#[napi_derive::napi(string_enum = "lowercase")]
pub enum WakeMode {
    /// `uv_poll` on Node's own loop (the default).
    Uv,
    /// A blocked thread and a threadsafe function (slower; doorbells only).
    Thread,
}

/// A dup of `fd`, for a waker thread that drains the doorbell itself.
pub fn dup_fd(fd: impl AsFd) -> Result<OwnedFd> {
    rustix::io::fcntl_dupfd_cloexec(fd, 0).map_err(|e| io(format!("dup: {e}")))
}

/// The optional watch every fd-owning binding class has: start (replacing any), keep-alive,
/// stop. One place for the glue `NativeListener`, `NativeControlStream` and `NativeEndpoint`
/// share.
#[derive(Default)]
pub struct Watch(Option<Waker>);

impl Watch {
    /// Starts watching `fd`, replacing any earlier watch.
    pub fn start(
        &mut self,
        env: &Env,
        mode: WakeMode,
        fd: RawFd,
        drain: Option<OwnedFd>,
        callback: Function<'_, (), ()>,
        name: &str,
    ) -> Result<()> {
        self.stop();
        self.0 = Some(Waker::start(env, mode, fd, drain, callback, name)?);
        Ok(())
    }

    /// Whether the watch keeps the process alive.
    pub fn set_ref(&self, keep_alive: bool) {
        if let Some(w) = &self.0 {
            w.set_ref(keep_alive);
        }
    }

    /// Stops watching; no callback runs after this returns (see [`Waker::stop`]).
    pub fn stop(&mut self) {
        self.0 = None;
    }
}

type WakeFn = ThreadsafeFunction<(), (), (), napi::Status, false>;

/// How the event loop learns that an fd is readable.
pub enum Waker {
    /// `uv_poll` on the loop itself.
    Uv(Option<UvPoll>),
    /// A blocked thread and a threadsafe function.
    Thread { stop: Doorbell, thread: Option<JoinHandle<()>> },
}

impl Waker {
    /// Starts a waker of the given kind. The callback gets no arguments.
    ///
    /// `drain`: for `thread`, the watched fd is a doorbell the thread must drain itself after each
    /// wake-up, or it would spin; a dup of it is passed here. Once the doorbell hangs up the
    /// thread makes one last call and ends (the socket would stay readable for ever).
    pub fn start(env: &Env, mode: WakeMode, fd: RawFd, drain: Option<OwnedFd>, callback: Function<'_, (), ()>, name: &str) -> Result<Self> {
        match mode {
            WakeMode::Thread => {
                let drain = drain.ok_or_else(|| crate::error::invalid("thread wake-ups only watch doorbells"))?;
                let bell = Doorbell::from_fd(drain).map_err(js_err)?;
                let tsfn: WakeFn = callback
                    .build_threadsafe_function()
                    .callee_handled::<false>()
                    .build()
                    .map_err(napi_err)?;
                let (stop, stop_rx) = Doorbell::pair().map_err(js_err)?;
                let thread = std::thread::Builder::new()
                    .name(format!("lapce-ai-wake-{name}"))
                    .spawn(move || loop {
                        let mut fds = [PollFd::new(&bell, PollFlags::IN), PollFd::new(&stop_rx, PollFlags::IN)];
                        match rustix::event::poll(&mut fds, None) {
                            Err(rustix::io::Errno::INTR) => continue,
                            Err(_) => return,
                            Ok(_) => {}
                        }
                        if !fds[1].revents().is_empty() {
                            return;
                        }
                        let hung_up = bell.drain().map_or(true, |d| d.hung_up);
                        tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking);
                        if hung_up {
                            return;
                        }
                    })
                    .map_err(|e| io(e.to_string()))?;
                Ok(Waker::Thread {
                    stop,
                    thread: Some(thread),
                })
            }
            WakeMode::Uv => {
                // SAFETY of the raw value: `callback` is a live function value of this call's scope.
                let raw = callback.raw();
                Ok(Waker::Uv(Some(UvPoll::start(env, fd, raw, name)?)))
            }
        }
    }

    /// Whether this waker keeps the process alive.
    pub fn set_ref(&self, keep_alive: bool) {
        if let Waker::Uv(Some(p)) = self {
            p.set_ref(keep_alive);
        }
    }

    /// Stops the waker; no callback is made after this returns (for `thread`, one already queued
    /// may still run and must be harmless).
    pub fn stop(&mut self) {
        match self {
            Waker::Uv(p) => {
                if let Some(p) = p.take() {
                    p.close();
                }
            }
            Waker::Thread { stop, thread } => {
                let _ = stop.ring();
                if let Some(t) = thread.take() {
                    let _ = t.join();
                }
            }
        }
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        self.stop();
    }
}
