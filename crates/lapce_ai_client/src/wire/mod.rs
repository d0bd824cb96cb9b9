//! The protocol's byte layouts (`docs/PROTOCOL.md` §2.2 and §4), as plain encoders and decoders.
//! The client uses them internally; they are public so that tests (and tools) can check them
//! against the golden frames.

pub mod control;
pub mod frame;
