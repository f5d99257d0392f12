//! The engine state behind [`super::DiskStorage`]: metrics, series, the
//! head, the block lists, and the [`Storage`](crate::storage::Storage)
//! operations that change them.
//!
//! Every change runs in two steps under the `ingest` lock: append its WAL
//! record, then apply it to memory. Replay (`super::recovery`) applies the
//! records in sequence order through the same `apply_*` functions, so the
//! state after a restart, series ids included, is the state before it.
//!
//! Lock order: `maintenance`, then `ingest`, then `metrics`, a metric's
//! `series`, a series' `head`, a metric's `blocks`. Scans take no
//! `maintenance` or `ingest` lock.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use super::block::Block;
use super::catalog::{Catalog, CatalogMetric, CatalogPolicy};
use super::chunk_cache::ChunkCache;
use super::record::{self, MetricDefinition, WalRecord};
use super::wal::{CommitWait, Wal, WalSeq};
use super::{DiskConfig, DiskError, Durability};
use crate::clock::now_ns;
use crate::model::{DataType, SeriesId, SeriesWrite, TagSet, TimestampNs, ValueKind, WriteBatch};
use crate::storage::memory::SeriesData;
use crate::storage::{
    CommitTicket, DeleteOutcome, MetricInfo, MetricSpec, RetentionPolicy, SeriesInfo, StorageError,
    StorageStats, WriteOutcome, default_policy_for,
};

/// Paths inside the data directory.
pub(super) struct Dirs {
    pub root: PathBuf,
    pub wal: PathBuf,
    pub blocks: PathBuf,
    pub catalog: PathBuf,
}

impl Dirs {
    pub fn new(root: PathBuf) -> Dirs {
        Dirs {
            wal: root.join("wal"),
            blocks: root.join("blocks"),
            catalog: root.join("catalog.json"),
            root,
        }
    }
}

/// Head points of one series.
pub(super) struct Head {
    /// Points written since the last flush cut.
    pub active: SeriesData,
    /// Points being written to a block by a flush in progress; cleared
    /// once the block is installed.
    pub frozen: Option<Arc<RwLock<SeriesData>>>,
}

pub(super) struct SeriesState {
    pub id: SeriesId,
    pub tags: Arc<TagSet>,
    /// Guards the head; writers take it for writing under `ingest`,
    /// readers for reading.
    pub head: RwLock<Head>,
}

impl SeriesState {
    fn head_len(&self) -> usize {
        let head = self.head.read();
        head.active.len() + head.frozen.as_ref().map_or(0, |f| f.read().len())
    }
}

#[derive(Default)]
pub(super) struct SeriesIndex {
    pub by_tags: HashMap<Arc<TagSet>, Arc<SeriesState>>,
    pub by_id: HashMap<SeriesId, Arc<SeriesState>>,
}

impl SeriesIndex {
    pub fn insert(&mut self, series: Arc<SeriesState>) {
        self.by_tags.insert(series.tags.clone(), series.clone());
        self.by_id.insert(series.id, series);
    }

    pub fn remove(&mut self, series: &SeriesState) {
        self.by_tags.remove(&series.tags);
        self.by_id.remove(&series.id);
    }
}

pub(super) struct MetricMeta {
    pub description: String,
    pub unit: String,
    pub retention_policy: String,
}

pub(super) struct MetricState {
    pub name: String,
    pub data_type: DataType,
    pub created_ns: TimestampNs,
    pub last_updated_ns: AtomicI64,
    /// Guards the descriptive fields, changed only through the admin API.
    pub meta: Mutex<MetricMeta>,
    /// Guards the series index; taken for writing only under `ingest`.
    pub series: RwLock<SeriesIndex>,
    /// Guards the live blocks, oldest WAL sequence range first; replaced
    /// as a whole under `maintenance`.
    pub blocks: RwLock<Arc<Vec<Arc<Block>>>>,
}

impl MetricState {
    pub fn new(
        definition: MetricDefinition,
        created_ns: TimestampNs,
        last_updated_ns: TimestampNs,
    ) -> MetricState {
        MetricState {
            name: definition.name,
            data_type: definition.data_type,
            created_ns,
            last_updated_ns: AtomicI64::new(last_updated_ns),
            meta: Mutex::new(MetricMeta {
                description: definition.description,
                unit: definition.unit,
                retention_policy: definition.retention_policy,
            }),
            series: RwLock::new(SeriesIndex::default()),
            blocks: RwLock::new(Arc::new(Vec::new())),
        }
    }

    pub fn kind(&self) -> ValueKind {
        self.data_type.column_kind()
    }

    pub fn block_list(&self) -> Arc<Vec<Arc<Block>>> {
        self.blocks.read().clone()
    }

    fn info(&self) -> MetricInfo {
        let (description, unit, retention_policy) = {
            let meta = self.meta.lock();
            (
                meta.description.clone(),
                meta.unit.clone(),
                meta.retention_policy.clone(),
            )
        };
        let index = self.series.read();
        // NOTE: a timestamp written again after its block was flushed is
        // counted once per block or head that contains it, until
        // compaction merges those blocks, so this count can exceed what
        // a scan returns.
        let head_points: u64 = index.by_id.values().map(|s| s.head_len() as u64).sum();
        let block_points: u64 = self.block_list().iter().map(|b| b.point_count).sum();
        MetricInfo {
            name: self.name.clone(),
            data_type: self.data_type,
            description,
            unit,
            retention_policy,
            created_ns: self.created_ns,
            last_updated_ns: self.last_updated_ns.load(Ordering::Relaxed),
            point_count: head_points + block_points,
            series_count: index.by_id.len() as u64,
        }
    }

    pub fn catalog_entry(&self) -> CatalogMetric {
        let meta = self.meta.lock();
        CatalogMetric {
            name: self.name.clone(),
            data_type: self.data_type.name().to_owned(),
            description: meta.description.clone(),
            unit: meta.unit.clone(),
            retention_policy: meta.retention_policy.clone(),
            created_ns: self.created_ns,
            last_updated_ns: self.last_updated_ns.load(Ordering::Relaxed),
        }
    }
}

/// State that only flush, compaction and deletions change.
pub(super) struct Maintenance {
    /// The catalog as last committed to disk.
    pub catalog: Catalog,
    pub last_flush: Instant,
    /// Message of the last compaction failure of each metric, by metric
    /// name, so a repeated failure is logged once.
    pub compaction_errors: HashMap<String, String>,
}

/// Flags the background thread waits on.
#[derive(Default)]
pub(super) struct WakeFlags {
    pub flush_requested: bool,
    pub stopping: bool,
}

pub(super) struct Engine {
    pub config: DiskConfig,
    pub dirs: Dirs,
    /// Set once recovery has replayed the old segments.
    pub wal: OnceLock<Wal>,
    /// Orders WAL appends and their application to memory, so replay
    /// applies records in the order they were applied at run time.
    pub ingest: Mutex<()>,
    /// Guards the metric map; taken for writing only under `ingest`.
    pub metrics: RwLock<HashMap<String, Arc<MetricState>>>,
    /// Guards the retention policies: name to maximum age. Written only
    /// under `ingest`.
    pub policies: RwLock<BTreeMap<String, Duration>>,
    /// Next series id; advanced only under `ingest`.
    pub next_series_id: AtomicU64,
    /// Points appended to the head since the last flush cut.
    pub head_points: AtomicU64,
    /// Incremented when a flush installs blocks, so a scan can tell that
    /// points moved from the head to a block while it read.
    pub flush_generation: AtomicU64,
    /// Serializes flush, compaction and deletions, and guards the
    /// committed catalog.
    pub maintenance: Mutex<Maintenance>,
    /// Set by `close`; writes are rejected from then on.
    pub closing: AtomicBool,
    /// Guards the background thread's wake-up flags.
    pub wake: Mutex<WakeFlags>,
    /// Signalled, with `wake` held, when a flush is requested or the
    /// engine stops.
    pub wake_signal: Condvar,
    /// Encoded block chunks shared by scans; it has its own lock.
    pub chunk_cache: ChunkCache,
    /// Holds the exclusive lock on `LOCK` while the engine lives.
    pub _lock_file: File,
}

thread_local! {
    /// Reused buffer for encoding write records.
    static RECORD_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Buffers above this size are released after use instead of kept.
const MAX_KEPT_RECORD_BUFFER_BYTES: usize = 4 << 20;

impl Engine {
    pub fn wal(&self) -> &Wal {
        self.wal
            .get()
            .expect("the wal starts before the engine is shared")
    }

    fn check_open(&self) -> Result<(), DiskError> {
        if self.closing.load(Ordering::Acquire) {
            return Err(DiskError::Closed);
        }
        Ok(())
    }

    fn commit_wait(&self) -> CommitWait {
        match self.config.durability {
            Durability::Sync => CommitWait::Synced,
            Durability::Interval(_) | Durability::None => CommitWait::Written,
        }
    }

    pub fn metric_state(&self, name: &str) -> Option<Arc<MetricState>> {
        self.metrics.read().get(name).cloned()
    }

    // ----- write path -----

    /// Logs and applies a batch, then waits for the commit that the
    /// durability mode requires.
    pub fn write(&self, batch: &WriteBatch) -> Result<WriteOutcome, StorageError> {
        let (outcome, ticket) = self.write_applied(batch)?;
        self.wait_durable(ticket)?;
        Ok(outcome)
    }

    /// Waits until the WAL record `ticket` is written or synced, as the
    /// durability mode requires.
    pub fn wait_durable(&self, ticket: CommitTicket) -> Result<(), StorageError> {
        if ticket == CommitTicket::NONE {
            return Ok(());
        }
        self.wal()
            .commit(WalSeq(ticket.0), self.commit_wait())
            .map_err(DiskError::from)?;
        Ok(())
    }

    /// Logs and applies a batch and returns before the log record is
    /// written: the points are visible to scans, and the ticket waits for
    /// the record with [`Engine::wait_durable`].
    pub fn write_applied(
        &self,
        batch: &WriteBatch,
    ) -> Result<(WriteOutcome, CommitTicket), StorageError> {
        self.check_open()?;
        if batch.series.is_empty() {
            return Ok((WriteOutcome::default(), CommitTicket::NONE));
        }
        let time_ns = now_ns();
        let (seq, outcome) = RECORD_BUFFER.with_borrow_mut(|body| -> Result<_, DiskError> {
            body.clear();
            record::encode_write(time_ns, batch, body);
            let applied = {
                let _order = self.ingest.lock();
                let seq = self.wal().append(body)?;
                (seq, self.apply_write(batch, time_ns))
            };
            if body.capacity() > MAX_KEPT_RECORD_BUFFER_BYTES {
                *body = Vec::new();
            }
            Ok(applied)
        })?;

        if self.head_points.load(Ordering::Relaxed) >= self.config.head_flush_points {
            self.request_flush();
        }
        Ok((outcome, CommitTicket(seq.0)))
    }

    pub fn request_flush(&self) {
        let mut wake = self.wake.lock();
        if !wake.flush_requested {
            wake.flush_requested = true;
            self.wake_signal.notify_all();
        }
    }

    /// Applies a write batch to the head. Runs under `ingest` or during
    /// replay.
    pub fn apply_write(&self, batch: &WriteBatch, time_ns: TimestampNs) -> WriteOutcome {
        let mut outcome = WriteOutcome::default();
        for (entry_index, entry) in batch.series.iter().enumerate() {
            match self.apply_entry(entry, time_ns) {
                Ok(accepted) => outcome.accepted += accepted,
                Err(reason) => {
                    outcome.rejected_entries.push(entry_index);
                    outcome.reject_run(entry.first_index, entry.len() as u64, &reason);
                }
            }
        }
        outcome
    }

    fn apply_entry(&self, entry: &SeriesWrite, time_ns: TimestampNs) -> Result<u64, String> {
        if entry.is_empty() {
            return Ok(0);
        }
        let kind = entry.values.kind();
        let metric = self.metric_for_write(&entry.metric, kind, time_ns);
        if !metric.data_type.accepts(kind) {
            return Err(format!(
                "value kind {} does not fit metric {:?} of type {}",
                kind.name(),
                metric.name,
                metric.data_type
            ));
        }
        let series = self.series_for(&metric, &entry.tags);
        series
            .head
            .write()
            .active
            .append(&entry.times_ns, entry.values.as_slice());
        self.head_points
            .fetch_add(entry.len() as u64, Ordering::Relaxed);
        metric.last_updated_ns.store(time_ns, Ordering::Relaxed);
        Ok(entry.len() as u64)
    }

    fn metric_for_write(
        &self,
        name: &str,
        kind: ValueKind,
        time_ns: TimestampNs,
    ) -> Arc<MetricState> {
        if let Some(metric) = self.metric_state(name) {
            return metric;
        }
        let definition = MetricDefinition {
            name: name.to_owned(),
            data_type: DataType::inferred_from(kind),
            description: String::new(),
            unit: String::new(),
            retention_policy: default_policy_for(name).to_owned(),
        };
        let metric = Arc::new(MetricState::new(definition, time_ns, time_ns));
        self.metrics.write().insert(name.to_owned(), metric.clone());
        tracing::debug!(metric = name, data_type = %metric.data_type, "created metric on first write");
        metric
    }

    fn series_for(&self, metric: &MetricState, tags: &TagSet) -> Arc<SeriesState> {
        if let Some(series) = metric.series.read().by_tags.get(tags) {
            return series.clone();
        }
        let series = Arc::new(SeriesState {
            id: SeriesId(self.next_series_id.fetch_add(1, Ordering::Relaxed)),
            tags: Arc::new(tags.clone()),
            head: RwLock::new(Head {
                active: SeriesData::new(metric.kind()),
                frozen: None,
            }),
        });
        metric.series.write().insert(series.clone());
        series
    }

    // ----- catalog changes -----

    /// Appends a catalog-change record under `ingest`, applies it with
    /// `apply` and waits for its fsync. `check` runs first under the same
    /// lock and may reject the change before anything is logged.
    fn log_change<T>(
        &self,
        record: WalRecord,
        check: impl FnOnce() -> Result<(), StorageError>,
        apply: impl FnOnce() -> T,
    ) -> Result<T, StorageError> {
        self.check_open()?;
        let mut body = Vec::new();
        record::encode_change(&record, &mut body);
        let (seq, result) = {
            let _order = self.ingest.lock();
            check()?;
            let seq = self.wal().append(&body).map_err(DiskError::from)?;
            (seq, apply())
        };
        self.wal()
            .commit(seq, CommitWait::Synced)
            .map_err(DiskError::from)?;
        Ok(result)
    }

    pub fn create_metric(&self, spec: MetricSpec) -> Result<MetricInfo, StorageError> {
        let retention_policy = if spec.retention_policy.is_empty() {
            default_policy_for(&spec.name).to_owned()
        } else {
            spec.retention_policy.clone()
        };
        let definition = MetricDefinition {
            name: spec.name.clone(),
            data_type: spec.data_type,
            description: spec.description,
            unit: spec.unit,
            retention_policy,
        };
        let time_ns = now_ns();
        let record = WalRecord::CreateMetric {
            time_ns,
            definition: definition.clone(),
        };
        let check = || {
            if !spec.retention_policy.is_empty()
                && !self.policies.read().contains_key(&spec.retention_policy)
            {
                return Err(StorageError::PolicyNotFound {
                    name: spec.retention_policy.clone(),
                });
            }
            if let Some(existing) = self.metric_state(&spec.name) {
                return Err(StorageError::MetricExists {
                    name: spec.name.clone(),
                    existing: existing.data_type,
                });
            }
            Ok(())
        };
        let metric = self.log_change(record, check, || {
            self.apply_create_metric(definition, time_ns)
        })?;
        Ok(metric.info())
    }

    /// Adds a metric unless one of that name exists, which happens when
    /// replay meets a creation already contained in the catalog.
    pub fn apply_create_metric(
        &self,
        definition: MetricDefinition,
        time_ns: TimestampNs,
    ) -> Arc<MetricState> {
        let mut metrics = self.metrics.write();
        metrics
            .entry(definition.name.clone())
            .or_insert_with(|| Arc::new(MetricState::new(definition, time_ns, time_ns)))
            .clone()
    }

    pub fn set_retention_policy(&self, policy: RetentionPolicy) -> Result<(), StorageError> {
        let record = WalRecord::SetRetentionPolicy {
            time_ns: now_ns(),
            name: policy.name.clone(),
            max_age: policy.max_age,
        };
        self.log_change(
            record,
            || Ok(()),
            || {
                self.policies.write().insert(policy.name, policy.max_age);
            },
        )
    }

    pub fn set_metric_policy(&self, metric: &str, policy: &str) -> Result<(), StorageError> {
        let record = WalRecord::SetMetricPolicy {
            time_ns: now_ns(),
            metric: metric.to_owned(),
            policy: policy.to_owned(),
        };
        let check = || {
            if !self.policies.read().contains_key(policy) {
                return Err(StorageError::PolicyNotFound {
                    name: policy.to_owned(),
                });
            }
            if self.metric_state(metric).is_none() {
                return Err(StorageError::MetricNotFound {
                    name: metric.to_owned(),
                });
            }
            Ok(())
        };
        self.log_change(record, check, || {
            self.apply_set_metric_policy(metric, policy)
        })
    }

    pub fn apply_set_metric_policy(&self, metric: &str, policy: &str) {
        if let Some(state) = self.metric_state(metric) {
            state.meta.lock().retention_policy = policy.to_owned();
        }
    }

    pub fn delete_metric(&self, name: &str) -> Result<DeleteOutcome, StorageError> {
        let mut maintenance = self.maintenance.lock();
        let record = WalRecord::DeleteMetric {
            time_ns: now_ns(),
            name: name.to_owned(),
        };
        let check = || {
            if self.metric_state(name).is_none() {
                return Err(StorageError::MetricNotFound {
                    name: name.to_owned(),
                });
            }
            Ok(())
        };
        let removed = self.log_change(record, check, || self.remove_metric_from_memory(name))?;
        let Some((metric, outcome)) = removed else {
            return Ok(DeleteOutcome::default());
        };
        self.drop_metric_blocks(&mut maintenance, &metric)?;
        tracing::info!(
            metric = name,
            points_deleted = outcome.points_deleted,
            series_deleted = outcome.series_deleted,
            "deleted metric"
        );
        Ok(outcome)
    }

    /// Removes a metric from the map and counts what it held. Its blocks
    /// stay on disk until [`Engine::drop_metric_blocks`].
    pub fn remove_metric_from_memory(
        &self,
        name: &str,
    ) -> Option<(Arc<MetricState>, DeleteOutcome)> {
        let metric = self.metrics.write().remove(name)?;
        let info = metric.info();
        Some((
            metric,
            DeleteOutcome {
                points_deleted: info.point_count,
                series_deleted: info.series_count,
            },
        ))
    }

    pub fn delete_before(
        &self,
        metric: &str,
        cutoff_ns: TimestampNs,
    ) -> Result<DeleteOutcome, StorageError> {
        let mut maintenance = self.maintenance.lock();
        let record = WalRecord::DeleteBefore {
            time_ns: now_ns(),
            metric: metric.to_owned(),
            cutoff_ns,
        };
        let state = self.metric_state(metric);
        let check = || {
            if state.is_none() {
                return Err(StorageError::MetricNotFound {
                    name: metric.to_owned(),
                });
            }
            Ok(())
        };
        let state = state.clone();
        let mut outcome = self.log_change(record, check, || {
            state
                .as_ref()
                .map(|s| self.delete_before_in_head(s, cutoff_ns))
                .unwrap_or_default()
        })?;
        if let Some(state) = &state {
            outcome.points_deleted +=
                self.delete_before_in_blocks(&mut maintenance, state, cutoff_ns)?;
        }
        Ok(outcome)
    }

    /// Drops head points older than `cutoff_ns` and removes the series
    /// that have no point left in the head or in any block. Runs under
    /// `ingest` and `maintenance`, or during replay.
    pub fn delete_before_in_head(
        &self,
        metric: &MetricState,
        cutoff_ns: TimestampNs,
    ) -> DeleteOutcome {
        let mut outcome = DeleteOutcome::default();
        let blocks = metric.block_list();
        let all: Vec<Arc<SeriesState>> = metric.series.read().by_id.values().cloned().collect();
        let mut emptied = Vec::new();
        for series in all {
            let mut head = series.head.write();
            debug_assert!(
                head.frozen.is_none(),
                "deletions and flushes both hold maintenance"
            );
            outcome.points_deleted += head.active.drop_before(cutoff_ns) as u64;
            let keeps_block_points = blocks
                .iter()
                .flat_map(|b| b.entries_for(series.id))
                .any(|e| e.max_time_ns >= cutoff_ns);
            if head.active.is_empty() && !keeps_block_points {
                emptied.push(series.clone());
            }
        }
        if !emptied.is_empty() {
            let mut index = metric.series.write();
            for series in emptied {
                index.remove(&series);
                outcome.series_deleted += 1;
            }
        }
        outcome
    }

    // ----- reads -----

    pub fn metric_info(&self, name: &str) -> Option<MetricInfo> {
        self.metric_state(name).map(|m| m.info())
    }

    pub fn list_metrics(&self) -> Vec<MetricInfo> {
        let states: Vec<Arc<MetricState>> = self.metrics.read().values().cloned().collect();
        let mut infos: Vec<MetricInfo> = states.iter().map(|m| m.info()).collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        infos
    }

    pub fn retention_policies(&self) -> Vec<RetentionPolicy> {
        self.policies
            .read()
            .iter()
            .map(|(name, max_age)| RetentionPolicy {
                name: name.clone(),
                max_age: *max_age,
            })
            .collect()
    }

    pub fn series(&self, metric: &str) -> Vec<SeriesInfo> {
        let Some(state) = self.metric_state(metric) else {
            return Vec::new();
        };
        let index = state.series.read();
        let mut list: Vec<SeriesInfo> = index
            .by_id
            .values()
            .map(|s| SeriesInfo {
                id: s.id,
                tags: s.tags.clone(),
            })
            .collect();
        list.sort_by_key(|s| s.id);
        list
    }

    pub fn stats(&self) -> StorageStats {
        let states: Vec<Arc<MetricState>> = self.metrics.read().values().cloned().collect();
        let mut stats = StorageStats {
            engine: "disk",
            metrics: states.len() as u64,
            wal_bytes: self.wal.get().map_or(0, Wal::total_bytes),
            ..StorageStats::default()
        };
        stats.memory_bytes += self.chunk_cache.used_bytes() as u64;
        for metric in states {
            for block in metric.block_list().iter() {
                stats.points += block.point_count;
                stats.block_bytes += block.file_bytes;
                stats.memory_bytes += block.memory_bytes() as u64;
            }
            let index = metric.series.read();
            stats.series += index.by_id.len() as u64;
            for series in index.by_id.values() {
                let head = series.head.read();
                stats.points += head.active.len() as u64;
                stats.memory_bytes +=
                    (head.active.memory_bytes() + series.tags.len() * 64 + 192) as u64;
                if let Some(frozen) = &head.frozen {
                    let frozen = frozen.read();
                    stats.points += frozen.len() as u64;
                    stats.memory_bytes += frozen.memory_bytes() as u64;
                }
            }
        }
        stats
    }

    // ----- catalog snapshot -----

    /// Returns the metric and policy parts of the catalog as they are now.
    /// Called under `ingest`, so it matches the last WAL sequence number.
    pub fn catalog_snapshot(&self) -> (Vec<CatalogMetric>, Vec<CatalogPolicy>, u64) {
        let mut metrics: Vec<CatalogMetric> = self
            .metrics
            .read()
            .values()
            .map(|m| m.catalog_entry())
            .collect();
        metrics.sort_by(|a, b| a.name.cmp(&b.name));
        let policies = self
            .policies
            .read()
            .iter()
            .map(|(name, max_age)| CatalogPolicy {
                name: name.clone(),
                max_age_ns: max_age.as_nanos().min(u128::from(u64::MAX)) as u64,
            })
            .collect();
        (
            metrics,
            policies,
            self.next_series_id.load(Ordering::Relaxed),
        )
    }

    // ----- closing -----

    pub fn begin_close(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// Flushes the head, syncs the WAL and deletes the segments the flush
    /// covered.
    pub fn finish_close(&self) -> Result<(), DiskError> {
        let flushed = self.flush(super::maintenance::FlushStop::Complete);
        let synced = self.wal().close();
        flushed?;
        synced?;
        tracing::info!(data_dir = %self.dirs.root.display(), "closed disk storage");
        Ok(())
    }
}

/// Returns the WAL sequence number a catalog records as flushed.
pub(super) fn flushed_seq(catalog: &Catalog) -> WalSeq {
    WalSeq(catalog.flushed_seq)
}
