//! The wire format, from `docs/PROTOCOL.md` and the session plan's protocol v2: control frames,
//! data frames and what each protocol version passes in WELCOME. Every fact about versions and
//! fd layouts lives here, so following a protocol change means editing this file only.

/// `b"LAIC"` as a little-endian u32, first field of HELLO.
pub const HELLO_MAGIC: u32 = 0x4349_414C;
/// Largest control frame length accepted by the server (type + body).
pub const MAX_CONTROL_FRAME: usize = 4096;

/// Control frame types.
pub mod ctl {
    /// client → server.
    pub const HELLO: u8 = 1;
    /// server → client, with the channel fds.
    pub const WELCOME: u8 = 2;
    /// client → server.
    pub const READY: u8 = 3;
    /// either way.
    pub const REJECT: u8 = 4;
    /// server → client.
    pub const GOAWAY: u8 = 5;
}

/// Reject reasons.
pub mod reject {
    /// No common version.
    pub const NO_COMMON_VERSION: u16 = 2;
    /// Malformed frame.
    pub const MALFORMED: u16 = 6;
    /// Server full.
    pub const SERVER_FULL: u16 = 7;
}

/// Data frame kinds.
pub mod kind {
    /// client → server.
    pub const REQUEST: u8 = 1;
    /// server → client.
    pub const RESPONSE: u8 = 2;
    /// server → client.
    pub const ERROR: u8 = 3;
    /// client → server.
    pub const STREAM_OPEN: u8 = 4;
    /// server → client.
    pub const STREAM_CHUNK: u8 = 5;
    /// server → client.
    pub const STREAM_END: u8 = 6;
    /// client → server.
    pub const CANCEL: u8 = 7;
    /// client → server (v2).
    pub const STREAM_CREDIT: u8 = 8;
}

/// Data frame flag: the payload is UTF-8 JSON.
pub const FLAG_JSON: u8 = 1;

/// How the doorbell of a channel is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BellKind {
    /// v1: two eventfds, `[.., doorbell server, doorbell client]`.
    EventFds,
    /// v2: one AF_UNIX stream socketpair; the client gets one end.
    SocketPair,
}

/// What a protocol version puts into WELCOME.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The version number.
    pub version: u16,
    /// Fds attached to WELCOME.
    pub fds: usize,
    /// Doorbell construction.
    pub bell: BellKind,
    /// Whether streams start with a zero window and need STREAM_CREDIT.
    pub credit: bool,
}

/// Every version this tool can speak, oldest first.
pub const LAYOUTS: [Layout; 2] = [
    Layout {
        version: 1,
        fds: 4,
        bell: BellKind::EventFds,
        credit: false,
    },
    Layout {
        version: 2,
        fds: 3,
        bell: BellKind::SocketPair,
        credit: true,
    },
];

/// The layout of `version`, if we know it.
pub fn layout(version: u16) -> Option<Layout> {
    LAYOUTS.iter().copied().find(|l| l.version == version)
}

/// The version range a well-behaved HELLO from us offers: all we know, so we follow the server
/// across the v1 → v2 change; WELCOME's version picks the layout.
pub fn offered_versions() -> (u16, u16) {
    (LAYOUTS[0].version, LAYOUTS[LAYOUTS.len() - 1].version)
}

/// Initial window the hostile client grants a stream it wants to read (chunks, bytes).
pub const DEFAULT_CREDIT: (u32, u32) = (256, 4 << 20);

/// A control frame: `u32 length` (of type + body), `u8 type`, body.
pub fn control(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(5 + body.len());
    f.extend_from_slice(&(1 + body.len() as u32).to_le_bytes());
    f.push(kind);
    f.extend_from_slice(body);
    f
}

/// A text field: `u16 n` + UTF-8 bytes.
pub fn text(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u16).to_le_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

/// HELLO body.
pub fn hello_body(magic: u32, min: u16, max: u16, pid: u32, name: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&magic.to_le_bytes());
    b.extend_from_slice(&min.to_le_bytes());
    b.extend_from_slice(&max.to_le_bytes());
    b.extend_from_slice(&pid.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&text(name));
    b
}

/// A well-formed HELLO frame for this process.
pub fn hello(name: &str) -> Vec<u8> {
    let (min, max) = offered_versions();
    control(ctl::HELLO, &hello_body(HELLO_MAGIC, min, max, std::process::id(), name.as_bytes()))
}

/// READY frame.
pub fn ready(slot: u32, generation: u32) -> Vec<u8> {
    let mut b = slot.to_le_bytes().to_vec();
    b.extend_from_slice(&generation.to_le_bytes());
    control(ctl::READY, &b)
}

/// REJECT frame.
pub fn reject_frame(reason: u16, message: &str) -> Vec<u8> {
    let mut b = reason.to_le_bytes().to_vec();
    b.extend_from_slice(&text(message.as_bytes()));
    control(ctl::REJECT, &b)
}

/// GOAWAY frame.
pub fn goaway(deadline_ms: u32, message: &str) -> Vec<u8> {
    let mut b = deadline_ms.to_le_bytes().to_vec();
    b.extend_from_slice(&text(message.as_bytes()));
    control(ctl::GOAWAY, &b)
}

/// A HELLO as the server reads it.
#[derive(Clone, Debug)]
pub struct Hello {
    /// Lowest version offered.
    pub min: u16,
    /// Highest version offered.
    pub max: u16,
}

/// Parses a HELLO body (only what a hostile server needs).
pub fn parse_hello(body: &[u8]) -> Option<Hello> {
    if body.len() < 18 || u32::from_le_bytes(body[0..4].try_into().ok()?) != HELLO_MAGIC {
        return None;
    }
    Some(Hello {
        min: u16::from_le_bytes([body[4], body[5]]),
        max: u16::from_le_bytes([body[6], body[7]]),
    })
}

/// WELCOME fields.
#[derive(Clone, Copy, Debug, Default)]
pub struct Welcome {
    /// Protocol version chosen.
    pub version: u16,
    /// Session slot.
    pub slot: u32,
    /// Slot generation.
    pub generation: u32,
    /// Ring capacity per direction.
    pub capacity: u32,
    /// Largest message.
    pub max_message: u32,
    /// Streams per connection.
    pub max_streams: u32,
    /// Feature bits.
    pub features: u32,
    /// Idle timeout, ms.
    pub idle_timeout_ms: u32,
    /// Server pid.
    pub server_pid: u32,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Welcome {
    /// Parses a WELCOME body (36 bytes).
    pub fn parse(body: &[u8]) -> Option<Self> {
        if body.len() != 36 {
            return None;
        }
        Some(Welcome {
            version: u16::from_le_bytes([body[0], body[1]]),
            slot: u32_at(body, 4),
            generation: u32_at(body, 8),
            capacity: u32_at(body, 12),
            max_message: u32_at(body, 16),
            max_streams: u32_at(body, 20),
            features: u32_at(body, 24),
            idle_timeout_ms: u32_at(body, 28),
            server_pid: u32_at(body, 32),
        })
    }

    /// Encodes the WELCOME frame.
    pub fn frame(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(36);
        b.extend_from_slice(&self.version.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        for v in [
            self.slot,
            self.generation,
            self.capacity,
            self.max_message,
            self.max_streams,
            self.features,
            self.idle_timeout_ms,
            self.server_pid,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        control(ctl::WELCOME, &b)
    }
}

/// A REJECT as read: reason and message (lossy UTF-8).
pub fn parse_reject(body: &[u8]) -> (u16, String) {
    if body.len() < 2 {
        return (0, String::new());
    }
    let reason = u16::from_le_bytes([body[0], body[1]]);
    let msg = if body.len() >= 4 {
        String::from_utf8_lossy(&body[4..]).into_owned()
    } else {
        String::new()
    };
    (reason, msg)
}

/// A data frame with every header field chosen by the caller (for malformed frames).
pub fn raw_frame(kind: u8, flags: u8, method_len: u16, id: u32, rest: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + rest.len());
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&method_len.to_le_bytes());
    f.extend_from_slice(&id.to_le_bytes());
    f.extend_from_slice(rest);
    f
}

/// A well-formed data frame.
pub fn frame(kind: u8, flags: u8, id: u32, method: &str, payload: &[u8]) -> Vec<u8> {
    let mut rest = method.as_bytes().to_vec();
    rest.extend_from_slice(payload);
    raw_frame(kind, flags, method.len() as u16, id, &rest)
}

/// A JSON REQUEST.
pub fn request(id: u32, method: &str, json: &str) -> Vec<u8> {
    frame(kind::REQUEST, FLAG_JSON, id, method, json.as_bytes())
}

/// A JSON STREAM_OPEN.
pub fn stream_open(id: u32, method: &str, json: &str) -> Vec<u8> {
    frame(kind::STREAM_OPEN, FLAG_JSON, id, method, json.as_bytes())
}

/// STREAM_CREDIT (v2): `u32 chunks`, `u32 bytes`.
pub fn credit(id: u32, chunks: u32, bytes: u32) -> Vec<u8> {
    let mut p = chunks.to_le_bytes().to_vec();
    p.extend_from_slice(&bytes.to_le_bytes());
    frame(kind::STREAM_CREDIT, 0, id, "", &p)
}

/// CANCEL.
pub fn cancel(id: u32) -> Vec<u8> {
    frame(kind::CANCEL, 0, id, "", &[])
}

/// A data frame as read.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Kind.
    pub kind: u8,
    /// Flags.
    pub flags: u8,
    /// Id.
    pub id: u32,
    /// Payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// Parses a data frame; `None` when it is shorter than its header says.
    pub fn parse(msg: &[u8]) -> Option<Self> {
        if msg.len() < 8 {
            return None;
        }
        let mlen = u16::from_le_bytes([msg[2], msg[3]]) as usize;
        if 8 + mlen > msg.len() {
            return None;
        }
        Some(Frame {
            kind: msg[0],
            flags: msg[1],
            id: u32_at(msg, 4),
            payload: msg[8 + mlen..].to_vec(),
        })
    }

    /// The `code` field of an ERROR frame's JSON payload (a plain scan: no JSON library needed
    /// for one field).
    pub fn error_code(&self) -> Option<String> {
        let s = String::from_utf8_lossy(&self.payload);
        let at = s.find("\"code\"")?;
        let rest = &s[at + 6..];
        let q1 = rest.find('"')?;
        let rest = &rest[q1 + 1..];
        let q2 = rest.find('"')?;
        Some(rest[..q2].to_string())
    }
}
