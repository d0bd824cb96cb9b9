//! Data frames (`docs/PROTOCOL.md` §4): `u8 kind`, `u8 flags`, `u16 method length`, `u32 id`,
//! method, payload. One ring message is one frame.

/// Size of the fixed header.
pub const HEADER: usize = 8;
/// Flag bit 0: the payload is UTF-8 JSON.
pub const FLAG_JSON: u8 = 1;
/// Longest method name, bytes.
pub const MAX_METHOD: usize = 255;

/// Frame kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Client → server: call a method once.
    Request = 1,
    /// Server → client: a request's result.
    Response = 2,
    /// Server → client: a call failed (id 0: the connection failed).
    Error = 3,
    /// Client → server: start a stream.
    StreamOpen = 4,
    /// Server → client: one item of a stream.
    StreamChunk = 5,
    /// Server → client: a stream finished.
    StreamEnd = 6,
    /// Client → server: abandon a call.
    Cancel = 7,
    /// Client → server: grant a stream more window (`u32 chunks`, `u32 bytes`).
    StreamCredit = 8,
}

impl Kind {
    /// The kind for a wire value.
    pub fn from_wire(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Request,
            2 => Kind::Response,
            3 => Kind::Error,
            4 => Kind::StreamOpen,
            5 => Kind::StreamChunk,
            6 => Kind::StreamEnd,
            7 => Kind::Cancel,
            8 => Kind::StreamCredit,
            _ => return None,
        })
    }

    /// Whether frames of this kind carry a method name.
    pub fn has_method(self) -> bool {
        matches!(self, Kind::Request | Kind::StreamOpen)
    }
}

/// Encodes a frame. `method` must be empty for kinds without one.
pub fn encode(kind: Kind, id: u32, method: &str, json: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + method.len() + payload.len());
    out.push(kind as u8);
    out.push(if json { FLAG_JSON } else { 0 });
    out.extend_from_slice(&(method.len() as u16).to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(method.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// A STREAM_CREDIT frame.
pub fn credit(id: u32, chunks: u32, bytes: u32) -> Vec<u8> {
    let mut p = [0u8; 8];
    p[..4].copy_from_slice(&chunks.to_le_bytes());
    p[4..].copy_from_slice(&bytes.to_le_bytes());
    encode(Kind::StreamCredit, id, "", false, &p)
}

/// A decoded frame; `method` and `payload` borrow the input.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Kind.
    pub kind: Kind,
    /// Whether the payload is JSON.
    pub json: bool,
    /// Call id.
    pub id: u32,
    /// Method name (empty for kinds without one).
    pub method: &'a str,
    /// Payload.
    pub payload: &'a [u8],
}

/// Decodes any frame, checking the layout rules of `docs/PROTOCOL.md` §4.3 that do not depend on
/// the session's state (kind, flags, method length and UTF-8; id 0 is left to the caller, as a
/// server's id-0 ERROR is legal).
pub fn decode(buf: &[u8]) -> Result<Frame<'_>, String> {
    if buf.len() < HEADER {
        return Err(format!("frame of {} bytes is shorter than its header", buf.len()));
    }
    let kind = Kind::from_wire(buf[0]).ok_or_else(|| format!("unknown frame kind {}", buf[0]))?;
    let flags = buf[1];
    if flags & !FLAG_JSON != 0 {
        return Err(format!("reserved frame flags set: {flags:#x}"));
    }
    let m = u16::from_le_bytes([buf[2], buf[3]]) as usize;
    let id = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    if kind.has_method() != (m > 0) {
        return Err(format!("method length {m} on frame kind {kind:?}"));
    }
    if m > MAX_METHOD || HEADER + m > buf.len() {
        return Err(format!("method length {m} is too long for a frame of {} bytes", buf.len()));
    }
    let method = std::str::from_utf8(&buf[HEADER..HEADER + m]).map_err(|_| "method name is not UTF-8".to_string())?;
    Ok(Frame {
        kind,
        json: flags & FLAG_JSON != 0,
        id,
        method,
        payload: &buf[HEADER + m..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode() {
        let b = encode(Kind::Request, 9, "chat", true, b"{}");
        let f = decode(&b).unwrap();
        assert_eq!(
            (f.kind, f.json, f.id, f.method, f.payload),
            (Kind::Request, true, 9, "chat", &b"{}"[..])
        );
    }

    #[test]
    fn malformed_frames_are_refused() {
        assert!(decode(&[2, 0, 0, 0, 1, 0, 0]).is_err());
        assert!(decode(&[9, 0, 0, 0, 1, 0, 0, 0]).is_err());
        assert!(decode(&[2, 2, 0, 0, 1, 0, 0, 0]).is_err());
        assert!(decode(&[2, 0, 1, 0, 1, 0, 0, 0, b'x']).is_err());
        assert!(decode(&[1, 0, 0, 0, 1, 0, 0, 0]).is_err());
        assert!(decode(&[1, 0, 2, 0, 1, 0, 0, 0, b'x']).is_err());
        assert!(decode(&[1, 0, 1, 0, 1, 0, 0, 0, 0xff]).is_err());
    }
}
