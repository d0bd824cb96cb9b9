//! `NativeReassemblyBudget`: a byte budget shared by many endpoints for fragment reassembly
//! (one per process or per `IpcServer`), so many peers half-way through huge messages cannot
//! add up to an out-of-memory. Past it, the endpoint that wanted more fails with
//! `RESOURCE_EXHAUSTED`.

use lapce_ai_transport::Budget;
use napi_derive::napi;

use crate::error::{invalid, Result};

/// A reassembly-memory budget in bytes, shared by the endpoints opened with it.
#[napi]
pub struct NativeReassemblyBudget {
    pub(crate) inner: Budget,
}

fn bytes(limit: f64) -> Result<usize> {
    if !limit.is_finite() || limit < 0.0 || limit.fract() != 0.0 || limit > 2f64.powi(53) {
        return Err(invalid(format!("a reassembly budget is a whole number of bytes, got {limit}")));
    }
    Ok(limit as usize)
}

#[napi]
impl NativeReassemblyBudget {
    /// A budget of `limit` bytes.
    #[napi(constructor)]
    pub fn new(limit: f64) -> Result<Self> {
        Ok(NativeReassemblyBudget {
            inner: Budget::new(bytes(limit)?),
        })
    }

    /// Bytes held now by the endpoints sharing this budget.
    #[napi(getter)]
    pub fn used(&self) -> f64 {
        self.inner.used() as f64
    }

    /// The limit in bytes.
    #[napi(getter)]
    pub fn limit(&self) -> f64 {
        self.inner.limit() as f64
    }

    /// Changes the limit; what is held stays held.
    #[napi(setter)]
    pub fn set_limit(&self, limit: f64) -> Result<()> {
        self.inner.set_limit(bytes(limit)?);
        Ok(())
    }
}
