//! Node-API binding of `lapce_ai_transport`.
//!
//! Thin on purpose: each class here wraps one transport type, converts arguments, and adds the
//! one thing Node needs that a Rust user does not: waking the JS event loop when a doorbell or a
//! control socket becomes readable ([`wake`]). Protocol, handshake and policy live in TypeScript.
#![deny(unsafe_op_in_unsafe_fn)]

mod budget;
mod control;
mod endpoint;
mod error;
mod fds;
mod layout;
mod raw;
mod wake;

/// Gives up the CPU once (`sched_yield`): the adaptive idle strategy's middle step, so two
/// polling processes that share a CPU let each other run.
#[napi_derive::napi]
pub fn yield_cpu() {
    std::thread::yield_now();
}
