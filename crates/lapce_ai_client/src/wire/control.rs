//! Control frames (`docs/PROTOCOL.md` §2.2): `u32 length` (of type + body), `u8 type`, body.

use crate::error::RejectReason;

/// `b"LAIC"` as a little-endian u32: the first field of every HELLO.
pub const HELLO_MAGIC: u32 = u32::from_le_bytes(*b"LAIC");
/// The protocol version this crate speaks (min = max).
pub const PROTOCOL_VERSION: u16 = 2;
/// Largest `length` of a control frame.
pub const MAX_CONTROL_FRAME: usize = 4096;
/// Longest text a sender puts in a text field, bytes.
pub const MAX_TEXT: usize = 1000;

/// Control frame types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ControlType {
    /// Client → server: who we are.
    Hello = 1,
    /// Server → client, with the channel's 3 fds.
    Welcome = 2,
    /// Client → server: fds checked and mapped.
    Ready = 3,
    /// Either way: the handshake failed.
    Reject = 4,
    /// Server → client: the server is shutting down.
    GoAway = 5,
}

/// A HELLO frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// [`HELLO_MAGIC`].
    pub magic: u32,
    /// Lowest version spoken.
    pub min_version: u16,
    /// Highest version spoken.
    pub max_version: u16,
    /// The client's pid (as it knows it).
    pub pid: u32,
    /// Feature bits (none defined).
    pub features: u32,
    /// Shown in the server's logs.
    pub name: String,
}

/// A WELCOME frame's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// The version the server chose.
    pub version: u16,
    /// The session's slot.
    pub slot: u32,
    /// The slot's generation.
    pub generation: u32,
    /// Ring capacity per direction, bytes.
    pub ring_capacity: u32,
    /// Largest data frame either side may send, bytes (whole frame).
    pub max_message: u32,
    /// Most concurrent streams.
    pub max_streams: u32,
    /// Feature bits.
    pub features: u32,
    /// Idle timeout the server enforces, ms (0: none).
    pub idle_timeout_ms: u32,
    /// The server's pid, in its own namespace.
    pub server_pid: u32,
}

/// A REJECT frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    /// Why.
    pub reason: RejectReason,
    /// Text for humans.
    pub message: String,
}

/// A GOAWAY frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoAway {
    /// How long calls in flight may still take, ms.
    pub deadline_ms: u32,
    /// Text for humans.
    pub message: String,
}

/// A decoded control frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlFrame {
    /// HELLO.
    Hello(Hello),
    /// WELCOME.
    Welcome(Welcome),
    /// READY: slot and generation.
    Ready {
        /// Slot from WELCOME.
        slot: u32,
        /// Generation from WELCOME.
        generation: u32,
    },
    /// REJECT.
    Reject(Reject),
    /// GOAWAY.
    GoAway(GoAway),
}

fn frame(kind: ControlType, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + body.len());
    out.extend_from_slice(&(1 + body.len() as u32).to_le_bytes());
    out.push(kind as u8);
    out.extend_from_slice(body);
    out
}

fn push_text(body: &mut Vec<u8>, text: &str) {
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    body.extend_from_slice(&(end as u16).to_le_bytes());
    body.extend_from_slice(&text.as_bytes()[..end]);
}

impl ControlFrame {
    /// The frame's bytes, length prefix included.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64);
        match self {
            ControlFrame::Hello(h) => {
                b.extend_from_slice(&h.magic.to_le_bytes());
                b.extend_from_slice(&h.min_version.to_le_bytes());
                b.extend_from_slice(&h.max_version.to_le_bytes());
                b.extend_from_slice(&h.pid.to_le_bytes());
                b.extend_from_slice(&h.features.to_le_bytes());
                push_text(&mut b, &h.name);
                frame(ControlType::Hello, &b)
            }
            ControlFrame::Welcome(w) => {
                b.extend_from_slice(&w.version.to_le_bytes());
                b.extend_from_slice(&0u16.to_le_bytes());
                for v in [
                    w.slot,
                    w.generation,
                    w.ring_capacity,
                    w.max_message,
                    w.max_streams,
                    w.features,
                    w.idle_timeout_ms,
                    w.server_pid,
                ] {
                    b.extend_from_slice(&v.to_le_bytes());
                }
                frame(ControlType::Welcome, &b)
            }
            ControlFrame::Ready { slot, generation } => {
                b.extend_from_slice(&slot.to_le_bytes());
                b.extend_from_slice(&generation.to_le_bytes());
                frame(ControlType::Ready, &b)
            }
            ControlFrame::Reject(r) => {
                b.extend_from_slice(&r.reason.to_wire().to_le_bytes());
                push_text(&mut b, &r.message);
                frame(ControlType::Reject, &b)
            }
            ControlFrame::GoAway(g) => {
                b.extend_from_slice(&g.deadline_ms.to_le_bytes());
                push_text(&mut b, &g.message);
                frame(ControlType::GoAway, &b)
            }
        }
    }

    /// Decodes one frame's type and body (the bytes after the length prefix). Trailing bytes,
    /// short bodies, bad UTF-8 and unknown types are errors (`MALFORMED`).
    pub fn decode(kind: u8, body: &[u8]) -> Result<Self, String> {
        let u16_at = |at: usize| u16::from_le_bytes([body[at], body[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().expect("4 bytes"));
        let need = |n: usize, what: &str| {
            if body.len() < n {
                Err(format!("{what} needs at least {n} bytes, got {}", body.len()))
            } else {
                Ok(())
            }
        };
        let text = |at: usize, what: &str| -> Result<String, String> {
            let n = u16_at(at) as usize;
            if body.len() != at + 2 + n {
                return Err(format!("{what}: text of {n} bytes does not end the frame ({} bytes)", body.len()));
            }
            String::from_utf8(body[at + 2..].to_vec()).map_err(|_| format!("{what}: text is not UTF-8"))
        };
        match kind {
            1 => {
                need(18, "HELLO")?;
                Ok(ControlFrame::Hello(Hello {
                    magic: u32_at(0),
                    min_version: u16_at(4),
                    max_version: u16_at(6),
                    pid: u32_at(8),
                    features: u32_at(12),
                    name: text(16, "HELLO")?,
                }))
            }
            2 => {
                if body.len() != 36 {
                    return Err(format!("WELCOME must be 36 bytes, got {}", body.len()));
                }
                Ok(ControlFrame::Welcome(Welcome {
                    version: u16_at(0),
                    slot: u32_at(4),
                    generation: u32_at(8),
                    ring_capacity: u32_at(12),
                    max_message: u32_at(16),
                    max_streams: u32_at(20),
                    features: u32_at(24),
                    idle_timeout_ms: u32_at(28),
                    server_pid: u32_at(32),
                }))
            }
            3 => {
                if body.len() != 8 {
                    return Err(format!("READY must be 8 bytes, got {}", body.len()));
                }
                Ok(ControlFrame::Ready {
                    slot: u32_at(0),
                    generation: u32_at(4),
                })
            }
            4 => {
                need(4, "REJECT")?;
                Ok(ControlFrame::Reject(Reject {
                    reason: RejectReason::from_wire(u16_at(0)),
                    message: text(2, "REJECT")?,
                }))
            }
            5 => {
                need(6, "GOAWAY")?;
                Ok(ControlFrame::GoAway(GoAway {
                    deadline_ms: u32_at(0),
                    message: text(4, "GOAWAY")?,
                }))
            }
            t => Err(format!("unknown control frame type {t}")),
        }
    }
}

/// Splits the control socket's byte stream into frames.
#[derive(Debug, Default)]
pub struct ControlReader {
    buf: Vec<u8>,
}

impl ControlReader {
    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if one is buffered. A bad length or body is an error.
    pub fn next_frame(&mut self) -> Result<Option<ControlFrame>, String> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes(self.buf[..4].try_into().expect("4 bytes")) as usize;
        if len == 0 || len > MAX_CONTROL_FRAME {
            return Err(format!("control frame length {len} is outside 1..={MAX_CONTROL_FRAME}"));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let frame = ControlFrame::decode(self.buf[4], &self.buf[5..4 + len]);
        self.buf.drain(..4 + len);
        frame.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_split_anywhere() {
        let frames = [
            ControlFrame::Hello(Hello {
                magic: HELLO_MAGIC,
                min_version: 2,
                max_version: 2,
                pid: 7,
                features: 0,
                name: "é".into(),
            }),
            ControlFrame::GoAway(GoAway {
                deadline_ms: 5,
                message: "bye".into(),
            }),
            ControlFrame::Ready { slot: 1, generation: 2 },
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(|f| f.encode()).collect();
        let mut r = ControlReader::default();
        let mut got = vec![];
        for b in bytes {
            r.push(&[b]);
            while let Some(f) = r.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn trailing_bytes_and_bad_lengths_are_malformed() {
        assert!(ControlFrame::decode(3, &[0; 9]).is_err());
        assert!(ControlFrame::decode(5, &[0, 0, 0, 0, 1, 0, b'x', b'y']).is_err());
        assert!(ControlFrame::decode(9, &[]).is_err());
        let mut r = ControlReader::default();
        r.push(&[0, 0, 0, 0, 1]);
        assert!(r.next_frame().is_err());
    }

    #[test]
    fn long_text_is_cut_at_a_char_boundary() {
        let f = ControlFrame::Reject(Reject {
            reason: RejectReason::ClientRejected,
            message: "é".repeat(800),
        });
        let bytes = f.encode();
        let ControlFrame::Reject(r) = ControlFrame::decode(bytes[4], &bytes[5..]).unwrap() else {
            panic!()
        };
        assert_eq!(r.message.len(), 1000);
    }
}
