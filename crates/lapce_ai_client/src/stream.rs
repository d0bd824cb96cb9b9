//! A stream's handle: the chunks of one STREAM_OPEN, pulled by the consumer (blocking, with a
//! timeout, or polled without blocking from a UI thread). Credit goes back to the server as
//! chunks are taken, so an unread stream holds at most its window.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::connection::{lock, Conn, StreamState};
use crate::error::{Error, Result};
use crate::payload::Payload;

/// What [`Stream::poll_next`] and [`Stream::next_timeout`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Polled {
    /// The next chunk.
    Chunk(Payload),
    /// Nothing yet: the stream is still open.
    Pending,
    /// The server finished the stream (STREAM_END); nothing more will come.
    End,
}

/// Options of one stream.
#[derive(Clone, Default)]
pub struct StreamOptions {
    /// The flow-control window `(chunks, bytes)` for this stream; `None`: the client's default.
    pub window: Option<(u32, u32)>,
    /// Called (from the client's I/O thread) whenever a chunk or the end arrives, so a UI can
    /// wake its event loop and then [`Stream::poll_next`]. Must be quick and must not block.
    pub on_ready: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Deadline for getting the STREAM_OPEN into the ring; `None`: the client's request timeout.
    pub open_timeout: Option<Duration>,
}

impl std::fmt::Debug for StreamOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamOptions")
            .field("window", &self.window)
            .field("on_ready", &self.on_ready.is_some())
            .field("open_timeout", &self.open_timeout)
            .finish()
    }
}

/// An open stream. Iterate it (blocking) or poll it. Dropping it before the end cancels it.
pub struct Stream {
    conn: Arc<Conn>,
    state: Arc<StreamState>,
    /// The terminal frame was handed to the consumer.
    reported: bool,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("id", &self.state.id)
            .field("finished", &self.reported)
            .finish()
    }
}

impl Stream {
    pub(crate) fn new(conn: Arc<Conn>, state: Arc<StreamState>) -> Self {
        Stream {
            conn,
            state,
            reported: false,
        }
    }

    /// The stream's id on the wire.
    pub fn id(&self) -> u32 {
        self.state.id
    }

    /// Whether the end (or the error) was already returned.
    pub fn is_finished(&self) -> bool {
        self.reported
    }

    /// Chunks received and not yet taken (at most the stream's window).
    pub fn buffered(&self) -> usize {
        lock(&self.state.q).items.len()
    }

    /// The next chunk if one is waiting; never blocks.
    pub fn poll_next(&mut self) -> Result<Polled> {
        self.take(Some(Instant::now()))
    }

    /// Waits up to `timeout` for the next chunk; [`Polled::Pending`] when none came.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Polled> {
        self.take(Some(Instant::now() + timeout))
    }

    /// Abandons the stream: sends CANCEL, drops chunks that still arrive. The stream then ends
    /// with the server's terminal frame: `Err` with code `CANCELLED`, or the end if the server
    /// had finished first.
    pub fn cancel(&mut self) {
        let mut q = lock(&self.state.q);
        if q.cancelled || q.end.is_some() {
            return;
        }
        q.cancelled = true;
        q.items.clear();
        drop(q);
        self.conn.cancel(self.state.id);
    }

    /// The async form of [`Iterator::next`], for any executor: `Ready(None)` after the end.
    /// Wrap it with `futures::stream::poll_fn(|cx| s.poll_chunk(cx))` for a `futures::Stream`.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Payload>>> {
        for _ in 0..2 {
            match self.take(Some(Instant::now())) {
                Ok(Polled::Chunk(p)) => return Poll::Ready(Some(Ok(p))),
                Ok(Polled::End) => return Poll::Ready(None),
                Err(e) => return Poll::Ready(Some(Err(e))),
                // Register, then look once more, so an arrival in between is not missed.
                Ok(Polled::Pending) => *lock(&self.state.waker) = Some(cx.waker().clone()),
            }
        }
        Poll::Pending
    }

    /// The next chunk, awaited (`None` after the end).
    pub async fn next_chunk(&mut self) -> Option<Result<Payload>> {
        std::future::poll_fn(|cx| self.poll_chunk(cx)).await
    }

    fn take(&mut self, deadline: Option<Instant>) -> Result<Polled> {
        if self.reported {
            return Ok(Polled::End);
        }
        let mut q = lock(&self.state.q);
        loop {
            if let Some(item) = q.items.pop_front() {
                drop(q);
                self.conn.consumed(&self.state, item.as_bytes().len());
                return Ok(Polled::Chunk(item));
            }
            if let Some(end) = &q.end {
                self.reported = true;
                return end.clone().map(|()| Polled::End);
            }
            q = match deadline {
                None => self.state.cv.wait(q).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(Polled::Pending);
                    }
                    self.state.cv.wait_timeout(q, left).unwrap_or_else(|p| p.into_inner()).0
                }
            };
        }
    }
}

impl Iterator for Stream {
    type Item = Result<Payload>;

    /// Blocks for the next chunk; `None` after the end. An error (the server's ERROR frame, or
    /// the connection's end) is the last item.
    fn next(&mut self) -> Option<Result<Payload>> {
        match self.take(None) {
            Ok(Polled::Chunk(p)) => Some(Ok(p)),
            Ok(Polled::End) | Ok(Polled::Pending) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if lock(&self.state.q).end.is_none() {
            self.cancel();
        }
    }
}

/// A stream whose chunks are JSON values of type `T`.
pub struct TypedStream<T> {
    inner: Stream,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for TypedStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T: serde::de::DeserializeOwned> TypedStream<T> {
    pub(crate) fn new(inner: Stream) -> Self {
        TypedStream {
            inner,
            _t: std::marker::PhantomData,
        }
    }

    /// The untyped stream.
    pub fn inner(&mut self) -> &mut Stream {
        &mut self.inner
    }

    /// See [`Stream::cancel`].
    pub fn cancel(&mut self) {
        self.inner.cancel()
    }

    /// The next item if one is waiting; `Ok(None)` when nothing is waiting or after the end
    /// (tell them apart with [`TypedStream::is_finished`]).
    pub fn poll_next(&mut self) -> Result<Option<T>> {
        match self.inner.poll_next()? {
            Polled::Chunk(p) => p.parse().map(Some),
            Polled::Pending | Polled::End => Ok(None),
        }
    }

    /// Waits up to `timeout` for the next item; `Ok(None)` on timeout or after the end.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<T>> {
        match self.inner.next_timeout(timeout)? {
            Polled::Chunk(p) => p.parse().map(Some),
            Polled::Pending | Polled::End => Ok(None),
        }
    }

    /// Whether the end (or the error) was already returned.
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// The next item, awaited on any executor (`None` after the end).
    pub async fn next_async(&mut self) -> Option<Result<T>> {
        let next = self.inner.next_chunk().await?;
        Some(next.and_then(|p| p.parse::<T>()))
    }
}

impl<T: serde::de::DeserializeOwned> Iterator for TypedStream<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        self.inner
            .next()
            .map(|r| r.and_then(|p| p.parse::<T>().map_err(|e| Error::BadPayload(e.to_string()))))
    }
}
