//! Transport errors surface in JS as `Error`s whose `code` is the transport's stable code
//! (`RING_CORRUPT`, `INVALID_SHM`, …), so the TypeScript layer can map them to typed errors.

/// The error `code` seen by JavaScript.
pub struct Code(pub &'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl From<napi::Status> for Code {
    fn from(_: napi::Status) -> Self {
        Code("NAPI")
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

/// Converts a napi-rs error from a conversion or engine call.
pub fn napi_err(e: napi::Error) -> napi::Error<Code> {
    napi::Error::new(Code("NAPI"), e.reason.clone())
}
