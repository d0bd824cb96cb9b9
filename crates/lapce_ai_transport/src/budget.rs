//! A memory budget shared by many consumers: the bytes they hold to reassemble fragmented
//! messages (and their reusable buffers). One per process or per server, so that a thousand
//! peers each half-way through a huge message cannot add up to an out-of-memory; past the
//! budget a consumer fails with [`Error::ResourceExhausted`] and only that connection ends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::{Error, Result};

/// A shared byte budget. Cheap to clone (an `Arc`).
#[derive(Clone, Debug)]
pub struct Budget(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    limit: AtomicUsize,
    used: AtomicUsize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Budget(Arc::new(Inner {
            limit: AtomicUsize::new(limit),
            used: AtomicUsize::new(0),
        }))
    }

    /// A budget that never refuses (for single-connection users such as a client).
    pub fn unlimited() -> Self {
        Self::new(usize::MAX)
    }

    /// Takes `bytes` from the budget, or fails without taking anything.
    pub fn acquire(&self, bytes: usize) -> Result<()> {
        let limit = self.0.limit.load(Ordering::Relaxed);
        self.0
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&n| n <= limit)
            })
            .map(|_| ())
            .map_err(|used| {
                Error::ResourceExhausted(format!(
                    "reassembly budget of {limit} bytes is used up ({used} held, {bytes} more wanted)"
                ))
            })
    }

    /// Gives `bytes` back.
    pub fn release(&self, bytes: usize) {
        let _ = self
            .0
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| Some(used.saturating_sub(bytes)));
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.0.used.load(Ordering::Acquire)
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.0.limit.load(Ordering::Relaxed)
    }

    /// Changes the limit; bytes already held stay held.
    pub fn set_limit(&self, limit: usize) {
        self.0.limit.store(limit, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acquire_refuses_past_the_limit_and_release_gives_back() {
        let b = Budget::new(100);
        b.acquire(60).unwrap();
        assert!(matches!(b.acquire(41), Err(Error::ResourceExhausted(_))));
        assert_eq!(b.used(), 60, "a refused acquire takes nothing");
        b.acquire(40).unwrap();
        b.release(100);
        assert_eq!(b.used(), 0);
        assert!(Budget::unlimited().acquire(usize::MAX).is_ok());
        assert!(Budget::unlimited().clone().acquire(1).is_ok());
    }
}
