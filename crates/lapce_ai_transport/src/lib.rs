//! Transport core of lapce-ai-ipc: the pieces that must be fast or must touch the kernel.
//!
//! * [`shm`]: sealed `memfd` regions and their mappings. All raw shared-memory access lives here.
//! * [`ring`]: a single-producer, single-consumer *message* ring inside such a region. The peer on
//!   the other side of the mapping is untrusted: every index and length it writes is checked.
//! * [`doorbell`]: one `AF_UNIX` stream socketpair per channel, rung only when the peer said it is
//!   going to sleep.
//! * [`endpoint`]: one side of a duplex channel (a ring each way and a doorbell end).
//! * [`control`]: the Unix control socket: listener, connector, `SCM_RIGHTS` and `SO_PEERCRED`.
//!
//! The crate knows nothing of Node.js; `lapce_ai_ipc_binding` wraps it for Node-API.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod budget;
pub mod control;
pub mod doorbell;
pub mod endpoint;
mod error;
pub mod ring;
pub mod shm;

#[cfg(test)]
mod proptests;

pub use budget::Budget;
pub use control::{ControlListener, ControlStream, PeerCred, Received};
pub use doorbell::{Doorbell, Drained};
pub use endpoint::{ChannelFds, Endpoint, EndpointStats, NewChannel, Receiver, Side, WIRE_FDS};
pub use error::{Error, Result};
pub use ring::{Consumer, ExternalTx, Next, Producer, Record, TxCloser};
