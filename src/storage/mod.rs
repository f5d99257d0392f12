//! Storage engines behind one trait.
//!
//! The ingest threads call [`Storage::write`]; the query engine, the live
//! window backfill and the retention pass read through [`Storage::scan`]
//! and the catalog methods. Two engines implement the trait: `memory`
//! (everything in RAM, gone at exit) and `disk`, the durable engine. The
//! integration tests run against both, so they must behave the same.

pub mod disk;
pub mod memory;

use std::sync::Arc;
use std::time::Duration;

use crate::model::{
    ColumnSlice, DataType, MAX_LISTED_REJECTIONS, Rejection, SeriesId, TagSet, TimeRange,
    TimestampNs, WriteBatch,
};

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("metric {name:?} not found")]
    MetricNotFound { name: String },

    #[error("metric {name:?} already exists with data type {existing}")]
    MetricExists { name: String, existing: DataType },

    #[error("retention policy {name:?} not found; list policies with ListRetentionPolicies")]
    PolicyNotFound { name: String },

    #[error("storage i/o failed: {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("storage is corrupt: {0}")]
    Corrupt(String),
}

/// Declaration of a metric that a client creates explicitly.
#[derive(Debug, Clone)]
pub struct MetricSpec {
    pub name: String,
    pub data_type: DataType,
    pub description: String,
    pub unit: String,
    /// Empty means the default policy for the name.
    pub retention_policy: String,
}

/// A metric's catalog entry with live counts.
#[derive(Debug, Clone)]
pub struct MetricInfo {
    pub name: String,
    pub data_type: DataType,
    pub description: String,
    pub unit: String,
    pub retention_policy: String,
    pub created_ns: TimestampNs,
    pub last_updated_ns: TimestampNs,
    pub point_count: u64,
    pub series_count: u64,
}

/// A named maximum age for stored points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub name: String,
    pub max_age: Duration,
}

/// Counts of what a deletion removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    pub points_deleted: u64,
    pub series_deleted: u64,
}

impl std::ops::AddAssign for DeleteOutcome {
    fn add_assign(&mut self, other: DeleteOutcome) {
        self.points_deleted += other.points_deleted;
        self.series_deleted += other.series_deleted;
    }
}

/// Result of applying one batch.
#[derive(Debug, Clone, Default)]
pub struct WriteOutcome {
    pub accepted: u64,
    /// Points the engine rejected, such as a value kind that does not fit
    /// the metric's type.
    pub rejections: Vec<Rejection>,
    /// Rejected points beyond the first `MAX_LISTED_REJECTIONS`, counted
    /// but not listed.
    pub unlisted_rejections: u64,
    /// Indexes into `WriteBatch::series` of entries rejected as a whole;
    /// the live aggregator skips them.
    pub rejected_entries: Vec<usize>,
}

impl WriteOutcome {
    /// Records that the `count` points from stream position `first_index`
    /// were rejected for `reason`, listing as many as there is room for.
    pub fn reject_run(&mut self, first_index: u64, count: u64, reason: &str) {
        let room = MAX_LISTED_REJECTIONS.saturating_sub(self.rejections.len()) as u64;
        let listed = count.min(room);
        self.rejections.extend((0..listed).map(|i| Rejection {
            index: first_index + i,
            reason: reason.to_owned(),
        }));
        self.unlisted_rejections += count - listed;
    }

    /// Number of rejected points, listed or not.
    pub fn rejected(&self) -> u64 {
        self.rejections.len() as u64 + self.unlisted_rejections
    }
}

/// A handle on an applied write for [`Storage::wait_durable`]: the
/// engine's log position of the write. `CommitTicket::NONE` needs no
/// wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct CommitTicket(pub u64);

impl CommitTicket {
    pub const NONE: CommitTicket = CommitTicket(0);
}

/// A series of one metric, as listed for a query.
#[derive(Debug, Clone)]
pub struct SeriesInfo {
    pub id: SeriesId,
    pub tags: Arc<TagSet>,
}

/// Engine-wide figures for `GetStorageStats`.
#[derive(Debug, Clone, Default)]
pub struct StorageStats {
    pub engine: &'static str,
    pub points: u64,
    pub series: u64,
    pub metrics: u64,
    pub wal_bytes: u64,
    pub block_bytes: u64,
    pub memory_bytes: u64,
}

/// Count, sum, minimum and maximum of a run of stored points, handed
/// over by [`Storage::scan_summarized`] in place of the points. Values are
/// taken as `f64` the way aggregations see them: integers are converted
/// and bools are 1 or 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointSummary {
    /// Time of the first point of the run.
    pub first_time_ns: TimestampNs,
    /// Time of the last point of the run.
    pub last_time_ns: TimestampNs,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

/// One piece of a [`Storage::scan_summarized`] result.
#[derive(Debug, Clone, Copy)]
pub enum ScanPart<'a> {
    /// Points in ascending time order, as [`Storage::scan`] delivers them.
    Points(&'a [TimestampNs], ColumnSlice<'a>),
    /// Every point of the series from `first_time_ns` to `last_time_ns`
    /// inclusive, summarized.
    Summary(PointSummary),
}

/// Returns the default retention policies: name and maximum age.
pub fn default_retention_policies() -> Vec<RetentionPolicy> {
    const HOUR: u64 = 3600;
    const DAY: u64 = 24 * HOUR;
    [
        ("high_frequency", DAY),
        ("medium_frequency", 7 * DAY),
        ("low_frequency", 30 * DAY),
        ("archive", 365 * DAY),
    ]
    .into_iter()
    .map(|(name, secs)| RetentionPolicy {
        name: name.to_owned(),
        max_age: Duration::from_secs(secs),
    })
    .collect()
}

/// Picks the default policy for a metric name: names containing "error"
/// or "alert" are kept for a year, "performance" or "duration" for a week,
/// everything else for 30 days.
pub fn default_policy_for(metric: &str) -> &'static str {
    let lower = metric.to_ascii_lowercase();
    if lower.contains("error") || lower.contains("alert") {
        "archive"
    } else if lower.contains("performance") || lower.contains("duration") {
        "medium_frequency"
    } else {
        "low_frequency"
    }
}

/// A storage engine.
///
/// Ordering contract: within one series, `scan` delivers points in
/// ascending time order with at most one point per timestamp. When two
/// writes carry the same series and timestamp, the later write wins.
///
/// Durability contract of [`Storage::write`]: when it returns, the points
/// are visible to every later `scan`. Whether they also survive a crash
/// depends on the engine: the memory engine keeps nothing across restarts,
/// and the disk engine documents its modes on its own type.
pub trait Storage: Send + Sync + 'static {
    /// Applies a validated batch. A metric that does not exist is created
    /// with the type inferred from its first value. An entry whose value
    /// kind does not fit an existing metric's type is rejected as a whole
    /// and reported per point.
    fn write(&self, batch: &WriteBatch) -> Result<WriteOutcome, StorageError>;

    /// Applies a batch like [`Storage::write`] but returns before it is
    /// durable: the points are visible to scans when this returns, and
    /// [`Storage::wait_durable`] with the ticket waits until the batch is
    /// as durable as `write` would have left it. Tickets are ordered, so
    /// waiting for one covers every earlier write. Lets a stream apply
    /// its next message while the last one is still being synced.
    fn write_applied(
        &self,
        batch: &WriteBatch,
    ) -> Result<(WriteOutcome, CommitTicket), StorageError> {
        self.write(batch)
            .map(|outcome| (outcome, CommitTicket::NONE))
    }

    /// Blocks until every write up to `ticket` is durable. Returns at
    /// once for `CommitTicket::NONE` and for engines without a log.
    fn wait_durable(&self, ticket: CommitTicket) -> Result<(), StorageError> {
        let _ = ticket;
        Ok(())
    }

    /// Creates a metric explicitly. Fails with `MetricExists` if it exists.
    fn create_metric(&self, spec: MetricSpec) -> Result<MetricInfo, StorageError>;

    fn metric(&self, name: &str) -> Option<MetricInfo>;

    /// Lists metrics sorted by name.
    fn list_metrics(&self) -> Vec<MetricInfo>;

    /// Deletes a metric with all its series and points.
    fn delete_metric(&self, name: &str) -> Result<DeleteOutcome, StorageError>;

    /// Adds a retention policy or changes the age of an existing one.
    fn set_retention_policy(&self, policy: RetentionPolicy) -> Result<(), StorageError>;

    /// Lists the retention policies sorted by name.
    fn retention_policies(&self) -> Vec<RetentionPolicy>;

    /// Switches a metric to a named, existing policy.
    fn set_metric_policy(&self, metric: &str, policy: &str) -> Result<(), StorageError>;

    /// Deletes the points of `metric` older than `cutoff_ns`; series left
    /// with no points are removed.
    fn delete_before(
        &self,
        metric: &str,
        cutoff_ns: TimestampNs,
    ) -> Result<DeleteOutcome, StorageError>;

    /// Lists the series of a metric; empty if the metric does not exist.
    fn series(&self, metric: &str) -> Vec<SeriesInfo>;

    /// Calls `visit` with the points of one series inside `range`, in
    /// ascending time order, as one or more runs of parallel time and value
    /// slices. Returns without calling `visit` if the series is gone.
    fn scan(
        &self,
        metric: &str,
        series: SeriesId,
        range: TimeRange,
        visit: &mut dyn FnMut(&[TimestampNs], ColumnSlice<'_>),
    ) -> Result<(), StorageError>;

    /// Scans like [`Storage::scan`], but the engine may hand over a run of
    /// points as a [`ScanPart::Summary`] when it has the count, sum, min
    /// and max without decoding them, as the disk engine has for a whole
    /// block chunk. Parts arrive in ascending time order and never
    /// overlap; a summary lies entirely inside `range`. Summaries are
    /// given only for numeric metrics, never for STRING ones. An
    /// aggregation may use a summary whose time span falls inside one
    /// bucket and must otherwise fall back to [`Storage::scan`] for that
    /// span. The default implementation never summarizes.
    fn scan_summarized(
        &self,
        metric: &str,
        series: SeriesId,
        range: TimeRange,
        visit: &mut dyn FnMut(ScanPart<'_>),
    ) -> Result<(), StorageError> {
        self.scan(metric, series, range, &mut |times, values| {
            visit(ScanPart::Points(times, values))
        })
    }

    fn stats(&self) -> StorageStats;
}
