//! Rust client for lapce-ai-ipc (see `docs/PROTOCOL.md`).
#![deny(missing_docs)]
