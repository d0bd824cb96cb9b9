//! `NativeFds`: file descriptors owned by a JS object, closed when it is closed or collected,
//! so no failure path in JS can leak them.

use std::os::fd::OwnedFd;

use lapce_ai_transport::ChannelFds;
use napi_derive::napi;

use crate::error::{js_err, Result};

/// A set of owned file descriptors (ring memfds and doorbell eventfds of one channel, as they
/// travel over the control socket).
#[napi]
pub struct NativeFds {
    pub(crate) fds: Vec<OwnedFd>,
}

#[napi]
impl NativeFds {
    /// How many descriptors are still held.
    #[napi(getter)]
    pub fn count(&self) -> u32 {
        self.fds.len() as u32
    }

    /// Closes every descriptor now instead of at garbage collection.
    #[napi]
    pub fn close(&mut self) {
        self.fds.clear();
    }
}

impl NativeFds {
    pub(crate) fn take(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.fds)
    }
}

/// Creates the four fds of a new channel (two sealed ring memfds of `capacity` bytes each,
/// two eventfd doorbells), in wire order.
#[napi]
pub fn create_channel_fds(capacity: u32) -> Result<NativeFds> {
    let fds = ChannelFds::create(capacity as usize).map_err(js_err)?;
    Ok(NativeFds { fds: fds.0.into() })
}
