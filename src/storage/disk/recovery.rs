//! Opening a data directory. Recovery locks it, loads the catalog and the
//! blocks it lists, and deletes files an interrupted flush or compaction
//! left behind. It then rebuilds the series index from the block indexes
//! and replays the WAL records newer than the catalog's `flushed_seq`
//! through the engine's `apply_*` functions.
//!
//! # Damaged data directories
//!
//! Recovery deletes only files that contain no acknowledged data, and
//! logs every file it changes at ERROR, except a torn tail or a leftover.
//! - A missing or invalid catalog next to block files or WAL segments
//!   past record 1 makes `open` fail and changes nothing.
//! - A WAL segment that starts after a gap in sequence numbers is
//!   replayed, because its records are valid and newer than the ones
//!   before the gap. The records in the gap are lost.
//! - A WAL segment that repeats earlier sequence numbers, or whose
//!   header is invalid, is renamed to a unique `*.damaged` name and not
//!   replayed.
//! - A corrupt record ends replay. See `wal::recover` for what happens
//!   to the rest of its segment and to later segments.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use super::block::{Block, BlockId, block_path};
use super::catalog::{Catalog, CatalogError, CatalogPolicy, parse_data_type};
use super::chunk_cache::ChunkCache;
use super::engine::{
    Dirs, Engine, Head, Maintenance, MetricState, SeriesState, WakeFlags, flushed_seq,
};
use super::record::{self, MetricDefinition, WalRecord};
use super::wal::{self, Wal, WalOptions, WalSeq};
use super::{DiskConfig, DiskError};
use crate::storage::default_retention_policies;
use crate::storage::memory::SeriesData;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DiskError + '_ {
    move |source| DiskError::Io {
        path: path.to_owned(),
        source,
    }
}

fn lock_data_dir(dirs: &Dirs) -> Result<File, DiskError> {
    let path = dirs.root.join("LOCK");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(DiskError::Locked {
            path: dirs.root.clone(),
        }),
        Err(fs::TryLockError::Error(source)) => Err(DiskError::Io { path, source }),
    }
}

/// Deletes temporary files and block files the catalog does not list.
fn remove_leftovers(dirs: &Dirs, catalog: &Catalog) -> Result<(), DiskError> {
    let listed: HashSet<u64> = catalog.blocks.iter().map(|b| b.id).collect();
    let mut removed = 0;
    for entry in fs::read_dir(&dirs.blocks).map_err(io_error(&dirs.blocks))? {
        let path = entry.map_err(io_error(&dirs.blocks))?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let unreferenced = match name.strip_suffix(".blk") {
            Some(stem) => stem.parse::<u64>().map_or(true, |id| !listed.contains(&id)),
            None => name.ends_with(".tmp"),
        };
        if unreferenced {
            tracing::warn!(path = %path.display(), "deleting a file the catalog does not list, left by an interrupted flush or compaction");
            fs::remove_file(&path).map_err(io_error(&path))?;
            removed += 1;
        }
    }
    let catalog_tmp = dirs.root.join("catalog.json.tmp");
    if catalog_tmp.exists() {
        fs::remove_file(&catalog_tmp).map_err(io_error(&catalog_tmp))?;
    }
    if removed > 0 {
        super::fsutil::sync_dir(&dirs.blocks).map_err(io_error(&dirs.blocks))?;
    }
    Ok(())
}

/// Describes why a loaded catalog cannot be trusted, or returns `None`
/// when it loaded or failed with an i/o error other than "not found".
fn catalog_problem(loaded: &Result<Option<Catalog>, CatalogError>) -> Option<String> {
    match loaded {
        Ok(Some(_)) | Err(CatalogError::Io { .. }) => None,
        Ok(None) => Some("is missing".to_owned()),
        Err(CatalogError::Invalid { reason, .. }) => Some(format!("is invalid ({reason})")),
    }
}

/// Describes the data a directory contains without a catalog: block
/// files, or WAL segments that do not start at the first record. Returns
/// `None` for a new directory, and for one whose WAL starts at record 1
/// because it crashed before its first flush.
fn existing_data(dirs: &Dirs) -> Result<Option<String>, DiskError> {
    let mut blocks = 0;
    for entry in fs::read_dir(&dirs.blocks).map_err(io_error(&dirs.blocks))? {
        let path = entry.map_err(io_error(&dirs.blocks))?.path();
        if path.extension().is_some_and(|e| e == "blk") {
            blocks += 1;
        }
    }
    let mut later_segments = 0;
    for entry in fs::read_dir(&dirs.wal).map_err(io_error(&dirs.wal))? {
        let path = entry.map_err(io_error(&dirs.wal))?.path();
        let first_seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|stem| stem.parse::<u64>().ok());
        if first_seq.is_some_and(|first| first > 1) {
            later_segments += 1;
        }
    }
    if blocks == 0 && later_segments == 0 {
        return Ok(None);
    }
    Ok(Some(format!(
        "{blocks} block files and {later_segments} WAL segments that start after record 1"
    )))
}

/// Builds the engine from the catalog and the blocks it lists.
fn load_state(
    config: DiskConfig,
    dirs: Dirs,
    lock_file: File,
    catalog: Catalog,
) -> Result<Engine, DiskError> {
    let mut metrics: HashMap<String, Arc<MetricState>> = HashMap::new();
    for entry in &catalog.metrics {
        let data_type = parse_data_type(&entry.data_type).ok_or_else(|| {
            DiskError::Inconsistent(format!(
                "metric {:?} has unknown data type {:?}",
                entry.name, entry.data_type
            ))
        })?;
        let definition = MetricDefinition {
            name: entry.name.clone(),
            data_type,
            description: entry.description.clone(),
            unit: entry.unit.clone(),
            retention_policy: entry.retention_policy.clone(),
        };
        let state = MetricState::new(definition, entry.created_ns, entry.last_updated_ns);
        metrics.insert(entry.name.clone(), Arc::new(state));
    }

    let mut blocks_by_metric: HashMap<String, Vec<Arc<Block>>> = HashMap::new();
    for listed in &catalog.blocks {
        let id = BlockId(listed.id);
        let block = Block::open(&block_path(&dirs.blocks, id), id)?;
        if block.header.metric != listed.metric {
            return Err(DiskError::Inconsistent(format!(
                "block {id} contains metric {:?} but the catalog lists it for {:?}",
                block.header.metric, listed.metric
            )));
        }
        let Some(metric) = metrics.get(&listed.metric) else {
            return Err(DiskError::Inconsistent(format!(
                "block {id} belongs to metric {:?}, which the catalog does not define",
                listed.metric
            )));
        };
        if block.header.kind != metric.kind() {
            return Err(DiskError::Inconsistent(format!(
                "block {id} contains {} values but metric {:?} stores {}",
                block.header.kind.name(),
                listed.metric,
                metric.kind().name()
            )));
        }
        blocks_by_metric
            .entry(listed.metric.clone())
            .or_default()
            .push(Arc::new(block));
    }

    let mut max_series_id = 0;
    for (name, mut blocks) in blocks_by_metric {
        blocks.sort_by_key(|b| (b.header.max_seq, b.id));
        let metric = &metrics[&name];
        {
            let mut index = metric.series.write();
            for block in &blocks {
                for entry in block.entries() {
                    max_series_id = max_series_id.max(entry.series.0);
                    if let Some(known) = index.by_id.get(&entry.series) {
                        if known.tags != entry.tags {
                            return Err(DiskError::Inconsistent(format!(
                                "series {} has tags {} in block {} and {} elsewhere",
                                entry.series, entry.tags, block.id, known.tags
                            )));
                        }
                        continue;
                    }
                    index.insert(Arc::new(SeriesState {
                        id: entry.series,
                        tags: entry.tags.clone(),
                        head: RwLock::new(Head {
                            active: SeriesData::new(metric.kind()),
                            frozen: None,
                        }),
                    }));
                }
            }
        }
        *metric.blocks.write() = Arc::new(blocks);
    }
    if max_series_id >= catalog.next_series_id {
        return Err(DiskError::Inconsistent(format!(
            "a block contains series {max_series_id} but the catalog's next series id is {}",
            catalog.next_series_id
        )));
    }

    let policies: BTreeMap<String, Duration> = catalog
        .policies
        .iter()
        .map(|p| (p.name.clone(), Duration::from_nanos(p.max_age_ns)))
        .collect();
    let chunk_cache = ChunkCache::new(config.chunk_cache_bytes);
    Ok(Engine {
        config,
        dirs,
        wal: OnceLock::new(),
        ingest: Mutex::new(()),
        metrics: RwLock::new(metrics),
        policies: RwLock::new(policies),
        next_series_id: AtomicU64::new(catalog.next_series_id),
        head_points: AtomicU64::new(0),
        flush_generation: AtomicU64::new(0),
        maintenance: Mutex::new(Maintenance {
            catalog,
            last_flush: Instant::now(),
            compaction_errors: HashMap::new(),
        }),
        closing: AtomicBool::new(false),
        wake: Mutex::new(WakeFlags::default()),
        wake_signal: Condvar::new(),
        chunk_cache,
        _lock_file: lock_file,
    })
}

/// Opens a data directory and returns the recovered engine with its WAL
/// started.
pub(super) fn open(config: DiskConfig) -> Result<Arc<Engine>, DiskError> {
    let started = Instant::now();
    let dirs = Dirs::new(config.data_dir.clone());
    if dirs.root.exists() && !dirs.root.is_dir() {
        return Err(DiskError::NotADirectory {
            path: dirs.root.clone(),
        });
    }
    for dir in [&dirs.root, &dirs.wal, &dirs.blocks] {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
    }
    let lock_file = lock_data_dir(&dirs)?;

    let loaded = Catalog::load(&dirs.catalog);
    if let Some(problem) = catalog_problem(&loaded)
        && let Some(found) = existing_data(&dirs)?
    {
        return Err(DiskError::CatalogLost {
            path: dirs.root.clone(),
            found,
            problem,
        });
    }
    let catalog = match loaded? {
        Some(catalog) => catalog,
        None => {
            let policies = default_retention_policies()
                .into_iter()
                .map(|p| CatalogPolicy {
                    name: p.name,
                    max_age_ns: p.max_age.as_nanos() as u64,
                })
                .collect();
            let catalog = Catalog::empty(policies);
            catalog.store(&dirs.catalog)?;
            catalog
        }
    };
    remove_leftovers(&dirs, &catalog)?;
    let after = flushed_seq(&catalog);
    let wal_dir = dirs.wal.clone();
    let engine = load_state(config, dirs, lock_file, catalog)?;

    let recovered = wal::recover(&wal_dir, after, |seq, body| engine.replay(seq, body))?;
    let options = WalOptions {
        segment_bytes: engine.config.wal_segment_bytes,
        max_buffer_bytes: engine.config.wal_buffer_bytes,
    };
    let wal = Wal::start(&wal_dir, options, recovered.next_seq, recovered.segments)?;
    if engine.wal.set(wal).is_err() {
        unreachable!("the wal is started once");
    }

    let stats = engine.stats();
    tracing::info!(
        data_dir = %engine.dirs.root.display(),
        flushed_seq = %after,
        replayed_records = recovered.replayed,
        next_seq = %recovered.next_seq,
        metrics = stats.metrics,
        series = stats.series,
        points = stats.points,
        block_bytes = stats.block_bytes,
        wal_bytes = stats.wal_bytes,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "opened disk storage"
    );
    Ok(Arc::new(engine))
}

impl Engine {
    /// Applies one WAL record during recovery. Block rewrites of replayed
    /// deletions are redone; they find nothing left to remove when the
    /// run before the crash had finished them.
    fn replay(&self, seq: WalSeq, body: &[u8]) -> Result<(), String> {
        let record =
            record::decode(body).map_err(|err| format!("record {seq} does not decode: {err}"))?;
        match record {
            WalRecord::Write { time_ns, batch } => {
                self.apply_write(&batch, time_ns);
            }
            WalRecord::CreateMetric {
                time_ns,
                definition,
            } => {
                self.apply_create_metric(definition, time_ns);
            }
            WalRecord::DeleteMetric { name, .. } => {
                if let Some((metric, _)) = self.remove_metric_from_memory(&name) {
                    let mut maintenance = self.maintenance.lock();
                    self.drop_metric_blocks(&mut maintenance, &metric)
                        .map_err(|err| format!("replaying deletion of metric {name:?}: {err}"))?;
                }
            }
            WalRecord::SetRetentionPolicy { name, max_age, .. } => {
                self.policies.write().insert(name, max_age);
            }
            WalRecord::SetMetricPolicy { metric, policy, .. } => {
                self.apply_set_metric_policy(&metric, &policy);
            }
            WalRecord::DeleteBefore {
                metric, cutoff_ns, ..
            } => {
                if let Some(state) = self.metric_state(&metric) {
                    let mut maintenance = self.maintenance.lock();
                    self.delete_before_in_head(&state, cutoff_ns);
                    self.delete_before_in_blocks(&mut maintenance, &state, cutoff_ns)
                        .map_err(|err| format!("replaying deletion in metric {metric:?}: {err}"))?;
                }
            }
        }
        Ok(())
    }
}
