//! `NativeFds`: file descriptors owned by a JS object, closed when it is closed or collected,
//! so no failure path in JS can leak them.
//!
//! A set made by `createChannelFds` also holds, out of JS's reach, the server's side of the
//! channel, already open on the rings (mapped, its own doorbell end kept): `send()` passes only
//! the three wire fds, and the server's `NativeEndpoint` takes that open side (closing the
//! client's fds, which it must not hold). Mapping at creation is what lets a server's pool of
//! ready sets take the mapping off the handshake: nothing is left to map when READY arrives.

use std::os::fd::OwnedFd;

use lapce_ai_transport::Endpoint;
use napi_derive::napi;

use crate::error::{js_err, Result};

/// A set of owned file descriptors (the ring memfds and the doorbell end of one channel, as they
/// travel over the control socket).
#[napi]
pub struct NativeFds {
    /// The fds that travel (sent by `NativeControlStream.send`).
    pub(crate) fds: Vec<OwnedFd>,
    /// The server's side, open, for sets made by `createChannelFds`; never sent.
    pub(crate) server: Option<Endpoint>,
}

#[napi]
impl NativeFds {
    /// How many descriptors would travel (the server's own doorbell end is not counted).
    #[napi(getter)]
    pub fn count(&self) -> u32 {
        self.fds.len() as u32
    }

    /// Closes every descriptor now instead of at garbage collection.
    #[napi]
    pub fn close(&mut self) {
        self.fds.clear();
        self.server = None;
    }
}

impl NativeFds {
    /// Fds received from a peer.
    pub(crate) fn received(fds: Vec<OwnedFd>) -> Self {
        NativeFds { fds, server: None }
    }

    /// Takes everything, leaving the set empty.
    pub(crate) fn take(&mut self) -> (Vec<OwnedFd>, Option<Endpoint>) {
        (std::mem::take(&mut self.fds), self.server.take())
    }
}

/// Creates a new channel: two sealed ring memfds of `capacity` bytes each and a doorbell
/// socketpair, with the server's side opened on them. `count` is 3: the wire fds
/// `[ring s→c, ring c→s, client's doorbell end]` that `send()` passes; the server's side stays
/// inside for `new NativeEndpoint(fds, Side.Server…)`, which sets its message limit.
#[napi]
pub fn create_channel_fds(capacity: u32) -> Result<NativeFds> {
    // The limit is the NativeEndpoint's to set; until then nothing can be read here anyway.
    let (server, wire) = Endpoint::create_server(capacity as usize, 0).map_err(js_err)?;
    Ok(NativeFds {
        fds: vec![wire.ring_s2c, wire.ring_c2s, wire.doorbell],
        server: Some(server),
    })
}
