//! The query engine: raw point queries, time-bucketed aggregations and
//! summary statistics over [`Storage`].
//!
//! Requests arrive validated from `crate::grpc::query`. The engine lists
//! a metric's series, drops those whose tags fail the filters, and scans
//! the rest run by run. Aggregations feed each run of points that share a
//! bucket into one [`Accumulator`] at once, so a point costs a few
//! arithmetic operations, not a map lookup. The work is synchronous; the
//! gRPC layer runs it on the blocking thread pool.

mod aggregate;
mod points;
mod statistics;

use std::sync::Arc;

pub use aggregate::{AggregateQuery, AggregateResult, GroupSeries};
pub use points::{PointsQuery, PointsResult, QueriedPoint};
pub use statistics::StatisticsResult;

use crate::model::limits::Limits;
use crate::storage::{Storage, StorageError};

/// Errors of the query engine.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The request is valid in form but its result would exceed a limit.
    #[error("{0}")]
    TooLarge(String),

    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Runs queries against one storage engine.
#[derive(Clone)]
pub struct QueryEngine {
    storage: Arc<dyn Storage>,
    limits: Arc<Limits>,
}

impl QueryEngine {
    pub fn new(storage: Arc<dyn Storage>, limits: Arc<Limits>) -> QueryEngine {
        QueryEngine { storage, limits }
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}
