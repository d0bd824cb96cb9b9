//! The client's one error type. Every failure has a stable UPPER_SNAKE [`Error::code`] (the same
//! codes as the wire and the Node client, `docs/PROTOCOL.md` §6.5) and a [`Error::retryable`] hint.

use std::fmt;
use std::time::Duration;

/// Why a server (or this client) refused a handshake: the `reason` of a REJECT frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// 1: the HELLO magic was wrong.
    BadMagic,
    /// 2: the server speaks another protocol version (its message names it).
    NoCommonVersion,
    /// 3: our uid is not allowed.
    UidMismatch,
    /// 4: the HELLO pid is not the socket's (a sandbox with its own PID namespace: start the
    /// server with `checkPid` disabled).
    PidMismatch,
    /// 5: the handshake took too long.
    Timeout,
    /// 6: a malformed control frame.
    Malformed,
    /// 7: the server has no free connection slot.
    ServerFull,
    /// 8: the server is shutting down.
    ShuttingDown,
    /// 9: the server failed internally.
    Internal,
    /// 10: the client refused the server's WELCOME.
    ClientRejected,
    /// A reason this client does not know.
    Other(u16),
}

impl RejectReason {
    /// The reason for a wire value.
    pub fn from_wire(v: u16) -> Self {
        match v {
            1 => Self::BadMagic,
            2 => Self::NoCommonVersion,
            3 => Self::UidMismatch,
            4 => Self::PidMismatch,
            5 => Self::Timeout,
            6 => Self::Malformed,
            7 => Self::ServerFull,
            8 => Self::ShuttingDown,
            9 => Self::Internal,
            10 => Self::ClientRejected,
            n => Self::Other(n),
        }
    }

    /// The wire value.
    pub fn to_wire(self) -> u16 {
        match self {
            Self::BadMagic => 1,
            Self::NoCommonVersion => 2,
            Self::UidMismatch => 3,
            Self::PidMismatch => 4,
            Self::Timeout => 5,
            Self::Malformed => 6,
            Self::ServerFull => 7,
            Self::ShuttingDown => 8,
            Self::Internal => 9,
            Self::ClientRejected => 10,
            Self::Other(n) => n,
        }
    }

    /// The UPPER_SNAKE name used in `docs/PROTOCOL.md` §2.3.
    pub fn name(self) -> &'static str {
        match self {
            Self::BadMagic => "BAD_MAGIC",
            Self::NoCommonVersion => "NO_COMMON_VERSION",
            Self::UidMismatch => "UID_MISMATCH",
            Self::PidMismatch => "PID_MISMATCH",
            Self::Timeout => "TIMEOUT",
            Self::Malformed => "MALFORMED",
            Self::ServerFull => "SERVER_FULL",
            Self::ShuttingDown => "SHUTTING_DOWN",
            Self::Internal => "INTERNAL",
            Self::ClientRejected => "CLIENT_REJECTED",
            Self::Other(_) => "UNKNOWN",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.to_wire())
    }
}

/// An ERROR frame from the server: the call (or, with id 0, the connection) failed.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteError {
    /// Stable UPPER_SNAKE code (`UNKNOWN_METHOD`, `CANCELLED`, `RATE_LIMITED`, ...).
    pub code: String,
    /// Human-readable text.
    pub message: String,
    /// The server's hint that trying again may succeed.
    pub retryable: bool,
    /// Extra machine-readable detail, when the server sent some.
    pub details: Option<serde_json::Value>,
}

/// Everything that can go wrong.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// The server (or this client, [`RejectReason::ClientRejected`]) refused the handshake.
    #[error("handshake rejected, {reason}: {message}")]
    Rejected {
        /// The REJECT reason.
        reason: RejectReason,
        /// The REJECT text.
        message: String,
    },
    /// No WELCOME arrived within the handshake timeout.
    #[error("no handshake reply within {0:?}")]
    HandshakeTimeout(Duration),
    /// The session ended: the server died, closed, or a peer broke the protocol.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The server answered the call with an ERROR frame.
    #[error("{}: {}", .0.code, .0.message)]
    Remote(RemoteError),
    /// The call's deadline passed (CANCEL was sent).
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The server sent GOAWAY: no new calls on this connection.
    #[error("server is going away: {0}")]
    GoingAway(String),
    /// A frame larger than the server's `max_message` (nothing was sent).
    #[error("message of {size} bytes exceeds the server's limit of {limit} bytes")]
    MessageTooLarge {
        /// Size of the whole frame.
        size: usize,
        /// The server's `max_message`.
        limit: usize,
    },
    /// The server broke the protocol (a malformed frame, too many chunks, a control frame after READY).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A system call failed (`kind` tells ENOENT/ECONNREFUSED from others).
    #[error("{op}: {message}")]
    Io {
        /// What we were doing.
        op: &'static str,
        /// The OS error's kind.
        kind: std::io::ErrorKind,
        /// The OS error's text.
        message: String,
    },
    /// The shared memory or the rings failed (`code` is the transport's: `RING_CORRUPT`, `INVALID_SHM`, ...).
    #[error("transport: {message}")]
    Transport {
        /// The transport's stable code.
        code: &'static str,
        /// Its text.
        message: String,
    },
    /// A payload could not be encoded or decoded as the type asked for.
    #[error("bad payload: {0}")]
    BadPayload(String),
    /// A bad argument from the caller.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// This client was closed.
    #[error("client closed")]
    Closed,
    /// The process listening on the socket runs as a user this client does not trust
    /// (`docs/PROTOCOL.md` §1): nothing was sent to it.
    #[error("the server at this socket runs as uid {uid}, not one of the trusted uids {trusted:?}")]
    PeerNotTrusted {
        /// The server's uid, from `SO_PEERCRED`.
        uid: u32,
        /// The uids the client trusts.
        trusted: Vec<u32>,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The stable UPPER_SNAKE code (`docs/PROTOCOL.md` §6.5).
    pub fn code(&self) -> &str {
        match self {
            Error::Rejected { .. } => "HANDSHAKE_REJECTED",
            Error::HandshakeTimeout(_) => "HANDSHAKE_TIMEOUT",
            Error::ConnectionLost(_) => "CONNECTION_LOST",
            Error::Remote(r) => &r.code,
            Error::Timeout(_) => "TIMEOUT",
            Error::GoingAway(_) => "GOING_AWAY",
            Error::MessageTooLarge { .. } => "MESSAGE_TOO_LARGE",
            Error::Protocol(_) => "PROTOCOL_ERROR",
            Error::Io { .. } => "IO",
            Error::Transport { code, .. } => code,
            Error::BadPayload(_) => "BAD_PAYLOAD",
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::Closed => "CHANNEL_CLOSED",
            Error::PeerNotTrusted { .. } => "PEER_NOT_TRUSTED",
        }
    }

    /// Whether trying again (possibly after reconnecting) can succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Error::Rejected { reason, .. } => matches!(
                reason,
                RejectReason::ServerFull | RejectReason::ShuttingDown | RejectReason::Timeout
            ),
            Error::Remote(r) => r.retryable,
            Error::HandshakeTimeout(_) | Error::ConnectionLost(_) | Error::Timeout(_) | Error::GoingAway(_) => true,
            Error::Io { kind, .. } => matches!(kind, std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused),
            _ => false,
        }
    }

    /// The REJECT reason, for handshake rejections.
    pub fn reject_reason(&self) -> Option<RejectReason> {
        match self {
            Error::Rejected { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    pub(crate) fn io(op: &'static str, e: impl Into<std::io::Error>) -> Self {
        let e = e.into();
        Error::Io {
            op,
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl From<lapce_ai_transport::Error> for Error {
    fn from(e: lapce_ai_transport::Error) -> Self {
        match e {
            lapce_ai_transport::Error::Io { op, source } => Error::io(op, source),
            lapce_ai_transport::Error::MessageTooLarge { size, limit } => Error::MessageTooLarge { size, limit },
            lapce_ai_transport::Error::Closed => Error::ConnectionLost("the channel is closed".into()),
            other => Error::Transport {
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::BadPayload(e.to_string())
    }
}
