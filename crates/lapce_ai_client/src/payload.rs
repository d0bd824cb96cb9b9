//! What a call carries: JSON text or opaque bytes (the frame's JSON flag tells which).

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// A request argument, a result or a stream item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// UTF-8 JSON text (sent with the frame's JSON flag).
    Json(Vec<u8>),
    /// Opaque bytes.
    Bytes(Vec<u8>),
}

impl Payload {
    /// Serialises `value` as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self> {
        Ok(Payload::Json(serde_json::to_vec(value)?))
    }

    /// JSON `null`: the argument of methods that take none.
    pub fn null() -> Self {
        Payload::Json(b"null".to_vec())
    }

    /// Opaque bytes.
    pub fn bytes(data: impl Into<Vec<u8>>) -> Self {
        Payload::Bytes(data.into())
    }

    /// Whether this is JSON.
    pub fn is_json(&self) -> bool {
        matches!(self, Payload::Json(_))
    }

    /// The raw bytes (JSON text or the bytes).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Payload::Json(b) | Payload::Bytes(b) => b,
        }
    }

    /// The raw bytes, owned.
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            Payload::Json(b) | Payload::Bytes(b) => b,
        }
    }

    /// Parses a JSON payload as `T`. A bytes payload is [`Error::BadPayload`].
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        match self {
            Payload::Json(b) => Ok(serde_json::from_slice(b)?),
            Payload::Bytes(b) => Err(Error::BadPayload(format!("expected JSON, got {} bytes of binary data", b.len()))),
        }
    }
}
