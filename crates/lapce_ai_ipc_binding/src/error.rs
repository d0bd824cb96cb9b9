//! Transport errors surface in JS as `Error`s whose `code` is one of the UPPER_SNAKE names of
//! `ERROR_CODES` in `src/errors.ts` (`RING_CORRUPT`, `INVALID_SHM`, `CHANNEL_CLOSED`, …), one
//! code per condition, so the TypeScript layer maps them to typed errors without a table.

/// The error `code` seen by JavaScript.
pub struct Code(pub &'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl From<napi::Status> for Code {
    fn from(_: napi::Status) -> Self {
        // napi-rs's own failures are argument conversions: the caller passed a wrong type.
        Code("INVALID_ARGUMENT")
    }
}

/// Result type of every exported function.
pub type Result<T> = napi::Result<T, Code>;

/// Converts a transport error.
pub fn js_err(e: lapce_ai_transport::Error) -> napi::Error<Code> {
    napi::Error::new(Code(e.code()), e.to_string())
}

/// An error of our own making (bad use of the binding).
pub fn invalid(msg: impl Into<String>) -> napi::Error<Code> {
    napi::Error::new(Code("INVALID_ARGUMENT"), msg.into())
}

/// A call on something already closed (an endpoint, a control socket, a listener).
pub fn closed() -> napi::Error<Code> {
    napi::Error::new(Code("CHANNEL_CLOSED"), "closed".to_string())
}

/// A system call or Node-API call that failed.
pub fn io(msg: impl Into<String>) -> napi::Error<Code> {
    napi::Error::new(Code("IO"), msg.into())
}

/// Converts a napi-rs error from an engine call.
pub fn napi_err(e: napi::Error) -> napi::Error<Code> {
    io(e.reason.clone())
}
