//! A request in flight ([`Client::send`](crate::Client::send)): send many, collect later, from
//! one thread (pipelining), from a UI loop that polls, or `.await` it in any async runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::connection::{lock, Conn, ReplySlot};
use crate::error::{Error, Result};
use crate::payload::Payload;

/// The reply of a request sent with [`Client::send`](crate::Client::send). Dropping it before
/// the reply came cancels the request on the server.
pub struct PendingReply {
    conn: Arc<Conn>,
    id: u32,
    slot: Arc<ReplySlot>,
    deadline: Instant,
    timeout: Duration,
    taken: bool,
}

impl std::fmt::Debug for PendingReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingReply")
            .field("id", &self.id)
            .field("taken", &self.taken)
            .finish()
    }
}

impl PendingReply {
    pub(crate) fn new(conn: Arc<Conn>, id: u32, slot: Arc<ReplySlot>, timeout: Duration) -> Self {
        PendingReply {
            conn,
            id,
            slot,
            deadline: Instant::now() + timeout,
            timeout,
            taken: false,
        }
    }

    /// The request's id on the wire.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Blocks for the reply, up to the request's timeout (then it is cancelled: [`Error::Timeout`]).
    pub fn wait(mut self) -> Result<Payload> {
        self.taken = true;
        self.conn.wait_reply(self.id, &self.slot, self.deadline, self.timeout)
    }

    /// The reply if it has arrived; never blocks. `None`: not yet (call again), or already taken.
    pub fn try_take(&mut self) -> Option<Result<Payload>> {
        if self.taken {
            return None;
        }
        if let Some(r) = Conn::try_reply(&self.slot) {
            self.taken = true;
            return Some(r);
        }
        if Instant::now() >= self.deadline {
            self.taken = true;
            self.conn.cancel(self.id);
            return Some(Err(Error::Timeout(self.timeout)));
        }
        None
    }
}

/// Awaiting a `PendingReply` works on any executor (no runtime dependency): the client's I/O
/// thread wakes the task when the reply arrives. The request's own timeout is not enforced
/// while awaiting (nothing would wake the task at the deadline): wrap the future in your
/// runtime's timeout; dropping it cancels the request on the server.
impl Future for PendingReply {
    type Output = Result<Payload>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Payload>> {
        if self.taken {
            return Poll::Ready(Err(Error::InvalidArgument("the reply was already taken".into())));
        }
        for _ in 0..2 {
            if let Some(r) = Conn::try_reply(&self.slot) {
                self.taken = true;
                return Poll::Ready(r);
            }
            // Register, then look once more: a reply delivered in between would find no waker.
            *lock(&self.slot.waker) = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for PendingReply {
    fn drop(&mut self) {
        if !self.taken && Conn::try_reply(&self.slot).is_none() {
            self.conn.cancel(self.id);
        }
    }
}
