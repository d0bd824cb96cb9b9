use std::io;

/// Everything that can go wrong in the transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    #[error("{op}: {source}")]
    Io {
        /// What we were doing.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The peer wrote something into shared memory that breaks the ring's invariants.
    /// The connection cannot be trusted any more and must be closed.
    #[error("ring corrupted by peer: {0}")]
    Corrupt(String),
    /// A mapping or fd handed to us does not look like what the protocol promised.
    #[error("invalid shared memory: {0}")]
    InvalidShm(String),
    /// A message exceeds the configured maximum size.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// Size of the offending message (so far, when it arrives in fragments).
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A bad argument from our own caller.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Another live server already listens on this control socket path.
    #[error("a server is already listening on {0}")]
    AddressInUse(String),
    /// A shared budget (reassembly memory) is used up; the connection that wanted more ends.
    #[error("resource exhausted: {0}")]
    ResourceExhausted(String),
    /// The channel was closed.
    #[error("channel closed")]
    Closed,
    /// A non-blocking connect found the listener's accept queue full (`EAGAIN`): something
    /// listens on the path but is not accepting now. Retry later (with a timer, never by
    /// blocking).
    #[error("{0}: the server's accept queue is full (connect: EAGAIN, os error 11)")]
    AcceptQueueFull(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(op: &'static str, err: impl Into<io::Error>) -> Self {
        Error::Io { op, source: err.into() }
    }

    /// A short stable code for this error, for bindings that map errors to typed values: the
    /// UPPER_SNAKE names of the TypeScript `ERROR_CODES` (`src/errors.ts`), one per condition.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Io { .. } => "IO",
            Error::Corrupt(_) => "RING_CORRUPT",
            Error::InvalidShm(_) => "INVALID_SHM",
            Error::MessageTooLarge { .. } => "MESSAGE_TOO_LARGE",
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::AddressInUse(_) => "ADDRESS_IN_USE",
            Error::ResourceExhausted(_) => "RESOURCE_EXHAUSTED",
            Error::Closed => "CHANNEL_CLOSED",
            Error::AcceptQueueFull(_) => "ACCEPT_QUEUE_FULL",
        }
    }
}
