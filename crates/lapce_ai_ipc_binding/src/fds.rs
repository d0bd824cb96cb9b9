//! `NativeFds`: file descriptors owned by a JS object, closed when it is closed or collected,
//! so no failure path in JS can leak them.
//!
//! A set made by `createChannelFds` also holds, out of JS's reach, the server's own end of the
//! doorbell socketpair: `send()` passes only the three wire fds, and the server's
//! `NativeEndpoint` opens from that kept end (closing the client's end, which it must not hold).

use std::os::fd::OwnedFd;

use lapce_ai_transport::{ChannelFds, NewChannel};
use napi_derive::napi;

use crate::error::{js_err, Result};

/// A set of owned file descriptors (the ring memfds and the doorbell end of one channel, as they
/// travel over the control socket).
#[napi]
pub struct NativeFds {
    /// The fds that travel (sent by `NativeControlStream.send`).
    pub(crate) fds: Vec<OwnedFd>,
    /// The server's own doorbell end, for sets made by `createChannelFds`; never sent.
    pub(crate) kept: Option<OwnedFd>,
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
        self.kept = None;
    }
}

impl NativeFds {
    /// Fds received from a peer.
    pub(crate) fn received(fds: Vec<OwnedFd>) -> Self {
        NativeFds { fds, kept: None }
    }

    /// Takes everything, leaving the set empty.
    pub(crate) fn take(&mut self) -> (Vec<OwnedFd>, Option<OwnedFd>) {
        (std::mem::take(&mut self.fds), self.kept.take())
    }
}

/// Creates a new channel's fds: two sealed ring memfds of `capacity` bytes each and a doorbell
/// socketpair. `count` is 3: the wire fds `[ring s→c, ring c→s, client's doorbell end]` that
/// `send()` passes; the server's own end stays inside for `new NativeEndpoint(fds, Side.Server…)`.
#[napi]
pub fn create_channel_fds(capacity: u32) -> Result<NativeFds> {
    let NewChannel { server, client_doorbell } = ChannelFds::create(capacity as usize).map_err(js_err)?;
    Ok(NativeFds {
        fds: vec![server.ring_s2c, server.ring_c2s, client_doorbell],
        kept: Some(server.doorbell),
    })
}
