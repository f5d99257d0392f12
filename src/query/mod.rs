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
mod dense;
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

    #[error("query failed: {0}")]
    Internal(String),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::bucket::Bucketer;
    use crate::aggregate::fill::FillMode;
    use crate::aggregate::{AggFn, AggValue};
    use crate::model::filter::FilterSet;
    use crate::model::{Column, SeriesWrite, TagSet, WriteBatch};
    use crate::storage::disk::{DiskConfig, DiskStorage};
    use crate::storage::memory::MemoryStorage;

    const MINUTE_NS: i64 = 60_000_000_000;

    /// Group, bucket start, count and values of one bucket.
    type BucketRow = (Vec<(String, String)>, i64, u64, Vec<AggValue>);

    fn batch() -> WriteBatch {
        let series = (0..3)
            .map(|s| {
                let times: Vec<i64> = (0..5000).map(|i| i * 7_000_000_000 + s).collect();
                let values: Vec<f64> = (0..5000)
                    .map(|i| ((i * 37 + s) % 101) as f64 - 50.0)
                    .collect();
                SeriesWrite {
                    metric: "m".into(),
                    tags: TagSet::from_pairs(vec![("host".into(), format!("h{}", s % 2))]),
                    first_index: 0,
                    times_ns: times,
                    values: Column::F64(values),
                }
            })
            .collect();
        WriteBatch { series }
    }

    fn run(storage: Arc<dyn Storage>, width_ns: i64) -> Vec<BucketRow> {
        run_filtered(storage, width_ns, FilterSet::default())
    }

    fn run_filtered(
        storage: Arc<dyn Storage>,
        width_ns: i64,
        filters: FilterSet,
    ) -> Vec<BucketRow> {
        let engine = QueryEngine::new(storage, Arc::new(Limits::default()));
        let mut query = AggregateQuery {
            metric: "m".into(),
            range: None,
            filters,
            bucketer: Bucketer::fixed(width_ns).unwrap(),
            functions: vec![
                AggFn::Count,
                AggFn::Sum,
                AggFn::Mean,
                AggFn::Min,
                AggFn::Max,
                AggFn::Rate,
            ],
            group_by: vec!["host".into()],
            fill: FillMode::None,
        };
        let result = engine.aggregate(&mut query).unwrap();
        result
            .series
            .into_iter()
            .flat_map(|group| {
                group
                    .buckets
                    .into_iter()
                    .map(move |b| (group.group.clone(), b.start_ns, b.count, b.values))
            })
            .collect()
    }

    fn assert_same_rows(actual: &[BucketRow], expected: &[BucketRow]) {
        assert_eq!(actual.len(), expected.len());
        for (a, e) in actual.iter().zip(expected) {
            assert_eq!((&a.0, a.1, a.2), (&e.0, e.1, e.2));
            for (x, y) in a.3.iter().zip(&e.3) {
                match (x, y) {
                    (AggValue::Number(x), AggValue::Number(y)) => {
                        assert!((x - y).abs() <= 1e-9 * y.abs().max(1.0), "{x} != {y}")
                    }
                    _ => assert_eq!(x, y),
                }
            }
        }
    }

    #[test]
    fn dense_path_matches_general_path() {
        use crate::model::filter::{Filter, Operand, Operator};

        let memory = Arc::new(MemoryStorage::new());
        memory.write(&batch()).unwrap();
        // A filter that every point passes forces the general path.
        let pass_all = FilterSet::new(vec![
            Filter::new("value", Operator::Gt, vec![Operand::F64(f64::NEG_INFINITY)]).unwrap(),
        ]);
        for width_ns in [1_000_000_000, MINUTE_NS, 3600 * 1_000_000_000] {
            let dense = run(memory.clone(), width_ns);
            let general = run_filtered(memory.clone(), width_ns, pass_all.clone());
            assert!(!dense.is_empty());
            assert_same_rows(&dense, &general);
        }
    }

    #[test]
    fn statistics_same_on_one_and_two_threads() {
        // Enough series for several parts of `SERIES_PER_PART`, half of
        // the points in blocks and half in the head.
        let series_count = 3 * 32 + 5;
        let write = |from: i64, to: i64| WriteBatch {
            series: (0..series_count)
                .map(|s| SeriesWrite {
                    metric: "m".into(),
                    tags: TagSet::from_pairs(vec![("host".into(), format!("h{s}"))]),
                    first_index: 0,
                    times_ns: (from..to).map(|i| i * 10_000_000_000).collect(),
                    values: Column::F64(
                        (from..to)
                            .map(|i| ((i * 7919 + s) % 1009) as f64 / 100.0)
                            .collect(),
                    ),
                })
                .collect(),
        };
        let dir = tempfile::tempdir().unwrap();
        let disk = Arc::new(DiskStorage::open(DiskConfig::new(dir.path())).unwrap());
        disk.write(&write(0, 600)).unwrap();
        disk.flush().unwrap();
        disk.write(&write(600, 1000)).unwrap();

        let engine = QueryEngine::new(disk.clone(), Arc::new(Limits::default()));
        let range = crate::model::TimeRange::ALL;
        let filters = FilterSet::default();
        let sequential = engine.statistics_on("m", range, &filters, 1).unwrap();
        let parallel = engine.statistics_on("m", range, &filters, 2).unwrap();
        assert_eq!(sequential.count, 1000 * series_count as u64);
        assert!(sequential.p99.is_some());
        // Bit for bit: the parts are merged in the same order.
        assert_eq!(format!("{sequential:?}"), format!("{parallel:?}"));
        disk.close().unwrap();
    }

    #[test]
    fn block_summaries_give_same_buckets_as_points() {
        let memory = Arc::new(MemoryStorage::new());
        memory.write(&batch()).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let disk = Arc::new(DiskStorage::open(DiskConfig::new(dir.path())).unwrap());
        disk.write(&batch()).unwrap();
        disk.flush().unwrap();

        // Minute buckets split chunks, so their points are scanned; day
        // buckets contain whole chunks, so their summaries are used.
        for width_ns in [MINUTE_NS, 24 * 60 * MINUTE_NS] {
            let from_memory = run(memory.clone(), width_ns);
            let from_blocks = run(disk.clone(), width_ns);
            assert_eq!(from_blocks.len(), from_memory.len());
            for (block_bucket, memory_bucket) in from_blocks.iter().zip(&from_memory) {
                assert_eq!(block_bucket.0, memory_bucket.0);
                assert_eq!(block_bucket.1, memory_bucket.1);
                assert_eq!(block_bucket.2, memory_bucket.2);
                for (a, b) in block_bucket.3.iter().zip(&memory_bucket.3) {
                    match (a, b) {
                        (AggValue::Number(x), AggValue::Number(y)) => {
                            assert!((x - y).abs() <= 1e-9 * y.abs().max(1.0), "{x} != {y}")
                        }
                        _ => assert_eq!(a, b),
                    }
                }
            }
        }
        disk.close().unwrap();
    }
}
