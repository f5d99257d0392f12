//! The durable storage engine: a write-ahead log, an in-memory head of
//! recent points, and immutable compressed block files.
//!
//! [`DiskStorage`] implements [`Storage`] with the same ordering and
//! last-write-wins rules as the memory engine in `super::memory`, whose
//! `SeriesData` it reuses for its head. The gRPC ingest, query and live
//! window code reach it only through the trait.
//!
//! Submodules, in data-flow order:
//! - `record`: binary encoding of write batches and catalog changes.
//! - `wal`: segment files, framing, group commit, torn-tail recovery.
//! - `engine`: the metric and series state and every [`Storage`] call.
//! - `codec` and `block`: column compression and block files.
//! - `scan`: reading one series from blocks and head; `chunk_cache`
//!   keeps the bytes of block chunks for later scans.
//! - `maintenance`: head flush, compaction and block rewrites for
//!   deletions; `background` runs flush and compaction on threads.
//! - `catalog`: the atomically replaced file that lists live blocks.
//! - `recovery`: opening a data directory and replaying the WAL.
//!
//! # Data directory
//!
//! ```text
//! LOCK            held with an exclusive file lock while open
//! catalog.json    see `catalog`
//! wal/*.wal       see `wal`
//! blocks/*.blk    see `block`
//! ```

mod background;
mod block;
mod catalog;
mod chunk_cache;
pub mod codec;
mod engine;
mod fsutil;
mod maintenance;
mod record;
mod recovery;
mod scan;
mod wal;

#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{
    CommitTicket, DeleteOutcome, MetricInfo, MetricSpec, RetentionPolicy, ScanPart, SeriesInfo,
    Storage, StorageError, StorageStats, WriteOutcome,
};
use crate::model::{ColumnSlice, SeriesId, TimeRange, TimestampNs, WriteBatch};

pub use block::BlockError;
pub use catalog::CatalogError;
pub use wal::{WalError, WalSeq};

use background::Background;
use engine::Engine;

/// When [`Storage::write`] returns relative to the fsync of its WAL
/// record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// The default. `write` returns after the fsync that covers its record, so an
    /// acknowledged write survives a process crash and a power loss.
    /// Concurrent writes share fsyncs.
    #[default]
    Sync,
    /// `write` returns once its record is handed to the kernel; a thread
    /// fsyncs the WAL at this interval. A process crash loses nothing
    /// acknowledged; a power loss or kernel crash may lose up to the
    /// interval's worth of acknowledged writes.
    Interval(Duration),
    /// `write` returns once its record is handed to the kernel and the
    /// WAL is fsynced only when a segment is closed, at a head flush and
    /// at close. A power loss may lose any write since then.
    None,
}

/// Interval of [`Durability::Interval`] when none is given.
pub const DEFAULT_FSYNC_INTERVAL: Duration = Duration::from_millis(100);

impl FromStr for Durability {
    type Err = String;

    /// Parses `sync`, `none`, `interval` (100 ms) or `interval:<N>ms` /
    /// `interval:<N>s`.
    fn from_str(text: &str) -> Result<Durability, String> {
        let invalid = || {
            format!("durability {text:?} is invalid; use sync, none, interval or interval:<N>ms")
        };
        match text {
            "sync" => return Ok(Durability::Sync),
            "none" => return Ok(Durability::None),
            "interval" => return Ok(Durability::Interval(DEFAULT_FSYNC_INTERVAL)),
            _ => {}
        }
        let spec = text.strip_prefix("interval:").ok_or_else(invalid)?;
        let interval = if let Some(ms) = spec.strip_suffix("ms") {
            Duration::from_millis(ms.parse().map_err(|_| invalid())?)
        } else if let Some(secs) = spec.strip_suffix('s') {
            Duration::from_secs(secs.parse().map_err(|_| invalid())?)
        } else {
            return Err(invalid());
        };
        if interval.is_zero() {
            return Err(format!(
                "durability {text:?} has a zero interval; use sync instead"
            ));
        }
        Ok(Durability::Interval(interval))
    }
}

/// Settings of a [`DiskStorage`]. [`DiskConfig::new`] fills in the
/// documented defaults.
#[derive(Debug, Clone)]
pub struct DiskConfig {
    /// Directory that holds the WAL, blocks and catalog; created if
    /// missing. Default `./tidemark-data`.
    pub data_dir: PathBuf,
    /// Default [`Durability::Sync`].
    pub durability: Durability,
    /// The head is flushed to blocks once it holds this many points.
    /// Default 1,000,000 (about 16 MB of doubles).
    pub head_flush_points: u64,
    /// The head is flushed at least this often while the WAL contains
    /// unflushed records, which bounds replay time after a crash. Default
    /// 5 min.
    pub head_flush_age: Duration,
    /// Size at which a WAL segment is closed. Default 64 MiB.
    pub wal_segment_bytes: u64,
    /// Most appended but unwritten WAL bytes before writers wait for the
    /// write in progress. Default 16 MiB.
    pub wal_buffer_bytes: usize,
    /// Compaction merges a run of at least this many consecutive blocks
    /// of one metric. Default 4.
    pub compaction_min_blocks: usize,
    /// Compaction output is at most this many points. Default 8,000,000.
    pub block_max_points: u64,
    /// Compaction output spans at most this much time, so retention can
    /// drop whole blocks. Default 6 h.
    pub block_max_span: Duration,
    /// How often the background thread checks whether to flush or
    /// compact. Default 1 s.
    pub maintenance_interval: Duration,
    /// Budget of the cache of encoded block chunks that scans share, in
    /// bytes; 0 disables it. Default 64 MiB. A regular gauge takes about
    /// 1.6 bytes per point in blocks, so that covers about 40M points.
    pub chunk_cache_bytes: usize,
}

/// Default of [`DiskConfig::chunk_cache_bytes`].
pub const DEFAULT_CHUNK_CACHE_BYTES: usize = 64 << 20;

impl DiskConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> DiskConfig {
        DiskConfig {
            data_dir: data_dir.into(),
            durability: Durability::Sync,
            head_flush_points: 1_000_000,
            head_flush_age: Duration::from_secs(300),
            wal_segment_bytes: 64 << 20,
            wal_buffer_bytes: 16 << 20,
            compaction_min_blocks: 4,
            block_max_points: 8_000_000,
            block_max_span: Duration::from_secs(6 * 3600),
            maintenance_interval: Duration::from_secs(1),
            chunk_cache_bytes: DEFAULT_CHUNK_CACHE_BYTES,
        }
    }
}

impl Default for DiskConfig {
    fn default() -> Self {
        DiskConfig::new("./tidemark-data")
    }
}

/// Errors of the disk engine.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error(
        "data directory {path} is in use by another process; stop it or choose another --data-dir"
    )]
    Locked { path: PathBuf },

    #[error("data directory {path} is not a directory; choose another --data-dir")]
    NotADirectory { path: PathBuf },

    #[error("i/o failed on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(transparent)]
    Wal(#[from] WalError),

    #[error(transparent)]
    Block(#[from] BlockError),

    #[error(transparent)]
    Catalog(#[from] CatalogError),

    #[error("data directory is inconsistent: {0}")]
    Inconsistent(String),

    /// The catalog is missing or invalid in a directory that contains
    /// data, so recovery cannot tell live blocks from leftovers.
    #[error(
        "data directory {path} contains {found} but its catalog.json {problem}; \
         nothing was changed. Restore catalog.json from a backup, or move the \
         directory aside and start with an empty --data-dir"
    )]
    CatalogLost {
        path: PathBuf,
        found: String,
        problem: String,
    },

    #[error("storage is closed")]
    Closed,
}

impl From<DiskError> for StorageError {
    fn from(err: DiskError) -> StorageError {
        match err {
            DiskError::Io { path, source }
            | DiskError::Wal(WalError::Io { path, source })
            | DiskError::Block(BlockError::Io { path, source })
            | DiskError::Catalog(CatalogError::Io { path, source }) => StorageError::Io {
                context: path.display().to_string(),
                source,
            },
            corrupt @ (DiskError::Block(BlockError::Corrupt { .. })
            | DiskError::Catalog(CatalogError::Invalid { .. })
            | DiskError::Inconsistent(_)
            | DiskError::CatalogLost { .. }) => StorageError::Corrupt(corrupt.to_string()),
            other => StorageError::Io {
                context: "disk storage".to_owned(),
                source: io::Error::other(other.to_string()),
            },
        }
    }
}

/// The durable storage engine.
///
/// # Durability contract
///
/// Every write batch and every catalog change (metric creation and
/// deletion, retention policy changes, `set_metric_policy`,
/// `delete_before`) is appended to the WAL before it is applied. When
/// [`Storage::write`] returns `Ok`, the points are visible to every later
/// scan and survive a crash as [`Durability`] describes for the
/// configured mode. Catalog changes always return after their WAL record
/// is fsynced, whatever the mode. A write that returns an error may still
/// be visible until restart and may or may not survive it. After a WAL
/// write or fsync failure the engine rejects all writes until restart.
///
/// Recovery replays exactly the WAL records newer than the last flush, so
/// restarting any number of times yields the same data. A torn or corrupt
/// record ends replay at the last good record.
///
/// [`DiskStorage::close`], also run by `Drop`, flushes the head to blocks
/// and syncs the WAL.
pub struct DiskStorage {
    engine: Arc<Engine>,
    /// Guards the background threads; emptied by `close`.
    background: Mutex<Option<Background>>,
}

impl DiskStorage {
    /// Opens or creates the data directory, recovers its contents and
    /// starts the background threads.
    pub fn open(config: DiskConfig) -> Result<DiskStorage, DiskError> {
        let engine = recovery::open(config)?;
        let background = Background::start(engine.clone());
        Ok(DiskStorage {
            engine,
            background: Mutex::new(Some(background)),
        })
    }

    /// Stops the background threads, flushes the head into blocks, syncs
    /// the WAL and rejects later writes. Reads keep working. Calling it
    /// again does nothing.
    pub fn close(&self) -> Result<(), DiskError> {
        let Some(background) = self.background.lock().take() else {
            return Ok(());
        };
        self.engine.begin_close();
        background.stop();
        self.engine.finish_close()
    }

    /// Flushes the head into blocks now and deletes the WAL segments it
    /// covers.
    pub fn flush(&self) -> Result<(), DiskError> {
        self.engine
            .flush(maintenance::FlushStop::Complete)
            .map(|_| ())
    }

    /// Runs compaction until no metric has a run of blocks to merge.
    /// Returns the number of merges, or the first error after every other
    /// metric has been compacted.
    pub fn compact(&self) -> Result<usize, DiskError> {
        self.engine.compact()
    }

    /// Stops the engine the way a crash would: the background threads end
    /// and nothing is flushed, synced or cleaned up.
    #[cfg(test)]
    fn crash(self) {
        if let Some(background) = self.background.lock().take() {
            self.engine.begin_close();
            background.stop();
        }
    }
}

impl Drop for DiskStorage {
    fn drop(&mut self) {
        if let Err(err) = self.close() {
            tracing::error!(
                data_dir = %self.engine.config.data_dir.display(),
                error = %err,
                "closing disk storage failed; the next start replays the WAL"
            );
        }
    }
}

impl Storage for DiskStorage {
    fn write(&self, batch: &WriteBatch) -> Result<WriteOutcome, StorageError> {
        self.engine.write(batch)
    }

    fn write_applied(
        &self,
        batch: &WriteBatch,
    ) -> Result<(WriteOutcome, CommitTicket), StorageError> {
        self.engine.write_applied(batch)
    }

    fn wait_durable(&self, ticket: CommitTicket) -> Result<(), StorageError> {
        self.engine.wait_durable(ticket)
    }

    fn create_metric(&self, spec: MetricSpec) -> Result<MetricInfo, StorageError> {
        self.engine.create_metric(spec)
    }

    fn metric(&self, name: &str) -> Option<MetricInfo> {
        self.engine.metric_info(name)
    }

    fn list_metrics(&self) -> Vec<MetricInfo> {
        self.engine.list_metrics()
    }

    fn delete_metric(&self, name: &str) -> Result<DeleteOutcome, StorageError> {
        self.engine.delete_metric(name)
    }

    fn set_retention_policy(&self, policy: RetentionPolicy) -> Result<(), StorageError> {
        self.engine.set_retention_policy(policy)
    }

    fn retention_policies(&self) -> Vec<RetentionPolicy> {
        self.engine.retention_policies()
    }

    fn set_metric_policy(&self, metric: &str, policy: &str) -> Result<(), StorageError> {
        self.engine.set_metric_policy(metric, policy)
    }

    fn delete_before(
        &self,
        metric: &str,
        cutoff_ns: TimestampNs,
    ) -> Result<DeleteOutcome, StorageError> {
        self.engine.delete_before(metric, cutoff_ns)
    }

    fn series(&self, metric: &str) -> Vec<SeriesInfo> {
        self.engine.series(metric)
    }

    fn scan(
        &self,
        metric: &str,
        series: SeriesId,
        range: TimeRange,
        visit: &mut dyn FnMut(&[TimestampNs], ColumnSlice<'_>),
    ) -> Result<(), StorageError> {
        self.engine
            .scan_parts(metric, series, range, false, &mut |part| {
                if let ScanPart::Points(times, values) = part {
                    visit(times, values);
                }
            })
            .map_err(StorageError::from)
    }

    fn scan_summarized(
        &self,
        metric: &str,
        series: SeriesId,
        range: TimeRange,
        visit: &mut dyn FnMut(ScanPart<'_>),
    ) -> Result<(), StorageError> {
        self.engine
            .scan_parts(metric, series, range, true, visit)
            .map_err(StorageError::from)
    }

    fn stats(&self) -> StorageStats {
        self.engine.stats()
    }
}
