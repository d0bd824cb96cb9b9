//! Rust client for **lapce-ai-ipc**: connect an editor (Lapce) to the Node AI backend over shared
//! memory, with no async runtime.
//!
//! ```no_run
//! use lapce_ai_client::{chat::{ChatEvent, ChatRequest}, Client, ClientOptions};
//!
//! let client = Client::connect("/run/user/1000/lapce-ai/ai.sock", ClientOptions::default())?;
//! for event in client.chat(&ChatRequest::user("hello"))? {
//!     if let ChatEvent::Delta { text } = event? {
//!         print!("{text}");
//!     }
//! }
//! # Ok::<(), lapce_ai_client::Error>(())
//! ```
//!
//! The wire protocol is `docs/PROTOCOL.md` (version 2): a handshake on the control socket
//! (`<path>.ctl`) passes two sealed memfd rings and a doorbell socketpair; requests, streams
//! with per-stream flow control, cancel and errors then flow through the rings. A [`Client`] is
//! `Send + Sync`: share it between threads; each call is matched by id. One I/O thread per
//! connection reads replies (a caller waiting for its own reply reads too, saving the hand-off),
//! spins briefly while messages flow and then sleeps in `poll` on the doorbell and the control
//! socket, so an idle client uses no CPU and the server's death is noticed at once
//! (`CONNECTION_LOST`). Replies and stream chunks can also be awaited on any executor
//! ([`PendingReply`] is a `Future`, [`Stream::next_chunk`]); no runtime is required.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod chat;
mod client;
mod connection;
mod error;
mod handshake;
mod payload;
mod reply;
mod stream;
pub mod wire;

pub use client::{default_socket_path, Client, ClientOptions, Reconnect};
pub use connection::ConnectionStats;
pub use error::{Error, RejectReason, RemoteError, Result};
pub use payload::Payload;
pub use reply::PendingReply;
pub use stream::{Polled, Stream, StreamOptions, TypedStream};
pub use wire::control::Welcome;
