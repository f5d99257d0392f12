//! Work that changes the set of block files: head flush, compaction, and
//! the block half of `delete_before` and `delete_metric`. All of it runs
//! under the engine's `maintenance` lock, one operation at a time.
//!
//! Every change follows the same crash-safe order: write new block files
//! (temporary name, fsync, rename, directory fsync), commit the catalog
//! that lists them, swap them into memory, and only then delete what they
//! replace (old blocks, covered WAL segments). A crash before the catalog
//! commit leaves unreferenced block files, which the next start deletes.
//! A crash after it leaves files that are no longer needed, which the
//! next flush or start deletes.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::mem;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use parking_lot::RwLock;

use super::DiskError;
use super::block::{Block, BlockHeader, BlockId, BlockWriter, ChunkEntry};
use super::catalog::{Catalog, CatalogBlock};
use super::engine::{Engine, Maintenance, MetricState, SeriesState, flushed_seq};
use super::fsutil::sync_dir;
use super::scan::merge_runs;
use super::wal::WalSeq;
use crate::model::{ColumnSlice, SeriesId, TimestampNs};
use crate::storage::memory::SeriesData;

/// How far a flush goes; tests stop early to simulate a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushStop {
    Complete,
    /// Stop after the catalog commit, before the new blocks are installed
    /// in memory and before WAL segments are deleted.
    #[cfg_attr(not(test), allow(dead_code))]
    AfterCatalogCommit,
}

/// Points, blocks and bytes written by a flush.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlushReport {
    pub points: u64,
    pub blocks: u64,
    pub bytes: u64,
}

type FrozenSeries = (Arc<SeriesState>, Arc<RwLock<SeriesData>>);

/// A block written for a metric, not yet installed.
type NewBlock = (Arc<MetricState>, Arc<Block>);

impl Engine {
    fn io_error(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> DiskError + '_ {
        move |source| DiskError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// Allocates a block id; it is persisted with the next catalog commit.
    fn next_block_id(maintenance: &mut Maintenance) -> BlockId {
        let id = BlockId(maintenance.catalog.next_block_id);
        maintenance.catalog.next_block_id += 1;
        id
    }

    /// Writes `update` applied to the committed catalog and makes it the
    /// committed one.
    fn commit_catalog(
        &self,
        maintenance: &mut Maintenance,
        update: impl FnOnce(&mut Catalog),
    ) -> Result<(), DiskError> {
        let mut catalog = maintenance.catalog.clone();
        update(&mut catalog);
        catalog.store(&self.dirs.catalog)?;
        maintenance.catalog = catalog;
        Ok(())
    }

    /// Deletes block files that the committed catalog no longer lists.
    fn remove_block_files(&self, blocks: &[Arc<Block>]) -> Result<(), DiskError> {
        for block in blocks {
            fs::remove_file(&block.path).map_err(Self::io_error(&block.path))?;
        }
        if !blocks.is_empty() {
            sync_dir(&self.dirs.blocks).map_err(Self::io_error(&self.dirs.blocks))?;
        }
        Ok(())
    }

    /// Reports whether the head should be flushed now.
    pub fn flush_due(&self) -> bool {
        if self.head_points.load(Ordering::Relaxed) >= self.config.head_flush_points {
            return true;
        }
        let maintenance = self.maintenance.lock();
        let unflushed = self.wal().last_seq() > flushed_seq(&maintenance.catalog);
        unflushed && maintenance.last_flush.elapsed() >= self.config.head_flush_age
    }

    /// Moves the head into new blocks, commits them and deletes the WAL
    /// segments they make redundant.
    pub fn flush(&self, stop: FlushStop) -> Result<FlushReport, DiskError> {
        let mut maintenance = self.maintenance.lock();
        let started = Instant::now();

        let (cut_seq, frozen, snapshot) = {
            let _order = self.ingest.lock();
            let cut_seq = self.wal().rotate()?;
            let mut frozen: Vec<(Arc<MetricState>, Vec<FrozenSeries>)> = Vec::new();
            for metric in self.metrics.read().values() {
                let mut list = Vec::new();
                for series in metric.series.read().by_id.values() {
                    let mut head = series.head.write();
                    if head.active.is_empty() {
                        continue;
                    }
                    let data = mem::replace(&mut head.active, SeriesData::new(metric.kind()));
                    let shared = Arc::new(RwLock::new(data));
                    head.frozen = Some(shared.clone());
                    list.push((series.clone(), shared));
                }
                if !list.is_empty() {
                    frozen.push((metric.clone(), list));
                }
            }
            self.head_points.store(0, Ordering::Relaxed);
            (cut_seq, frozen, self.catalog_snapshot())
        };

        let previous_seq = flushed_seq(&maintenance.catalog);
        if cut_seq == previous_seq && frozen.is_empty() {
            // Segments left by a crash after the last catalog commit.
            self.wal().remove_through(cut_seq)?;
            maintenance.last_flush = Instant::now();
            return Ok(FlushReport::default());
        }

        let written = self.write_flush_blocks(&mut maintenance, &frozen, previous_seq, cut_seq);
        let new_blocks = match written {
            Ok(blocks) => blocks,
            Err(err) => {
                Self::unfreeze(&frozen);
                return Err(err);
            }
        };

        let (metrics, policies, next_series_id) = snapshot;
        let committed = self.commit_catalog(&mut maintenance, |catalog| {
            catalog.flushed_seq = cut_seq.0;
            catalog.metrics = metrics;
            catalog.policies = policies;
            catalog.next_series_id = next_series_id;
            catalog
                .blocks
                .extend(new_blocks.iter().map(|(metric, block)| CatalogBlock {
                    id: block.id.0,
                    metric: metric.name.clone(),
                }));
        });
        if let Err(err) = committed {
            Self::unfreeze(&frozen);
            let orphans: Vec<Arc<Block>> = new_blocks.into_iter().map(|(_, b)| b).collect();
            if let Err(cleanup) = self.remove_block_files(&orphans) {
                tracing::warn!(error = %cleanup, "removing blocks of a failed flush failed; the next start removes them");
            }
            return Err(err);
        }
        if stop == FlushStop::AfterCatalogCommit {
            return Ok(FlushReport::default());
        }

        let mut report = FlushReport::default();
        for (metric, block) in &new_blocks {
            report.points += block.point_count;
            report.bytes += block.file_bytes;
            report.blocks += 1;
            let mut blocks = metric.blocks.write();
            let mut list = (**blocks).clone();
            list.push(block.clone());
            *blocks = Arc::new(list);
        }
        self.flush_generation.fetch_add(1, Ordering::SeqCst);
        for (_, list) in &frozen {
            for (series, _) in list {
                series.head.write().frozen = None;
            }
        }
        let wal_freed = self.wal().remove_through(cut_seq)?;
        maintenance.last_flush = Instant::now();

        tracing::info!(
            rows = report.points,
            bytes = report.bytes,
            blocks = report.blocks,
            elapsed_ms = started.elapsed().as_millis() as u64,
            flushed_seq = %cut_seq,
            wal_bytes_freed = wal_freed,
            "flushed head to blocks"
        );
        Ok(report)
    }

    fn write_flush_blocks(
        &self,
        maintenance: &mut Maintenance,
        frozen: &[(Arc<MetricState>, Vec<FrozenSeries>)],
        previous_seq: WalSeq,
        cut_seq: WalSeq,
    ) -> Result<Vec<NewBlock>, DiskError> {
        let mut written: Vec<NewBlock> = Vec::new();
        let result = (|| {
            for (metric, list) in frozen {
                let mut writer = BlockWriter::new(BlockHeader {
                    metric: metric.name.clone(),
                    kind: metric.kind(),
                    min_seq: previous_seq.next(),
                    max_seq: cut_seq,
                });
                let mut ordered: Vec<&FrozenSeries> = list.iter().collect();
                ordered.sort_by_key(|(series, _)| series.id);
                for (series, data) in ordered {
                    let data = data.read();
                    let (times, values) = data.as_slices();
                    writer.add_series(series.id, series.tags.clone(), times, values);
                }
                if writer.is_empty() {
                    continue;
                }
                let id = Self::next_block_id(maintenance);
                let block = writer.write(&self.dirs.blocks, id)?;
                written.push((metric.clone(), Arc::new(block)));
            }
            sync_dir(&self.dirs.blocks).map_err(Self::io_error(&self.dirs.blocks))
        })();
        match result {
            Ok(()) => Ok(written),
            Err(err) => {
                let orphans: Vec<Arc<Block>> = written.into_iter().map(|(_, b)| b).collect();
                if let Err(cleanup) = self.remove_block_files(&orphans) {
                    tracing::warn!(error = %cleanup, "removing blocks of a failed flush failed; the next start removes them");
                }
                Err(err)
            }
        }
    }

    /// Puts frozen points back into the active head after a failed flush.
    /// Points written since the cut are newer and win.
    fn unfreeze(frozen: &[(Arc<MetricState>, Vec<FrozenSeries>)]) {
        for (metric, list) in frozen {
            for (series, data) in list {
                let mut head = series.head.write();
                let mut merged = mem::replace(&mut *data.write(), SeriesData::new(metric.kind()));
                let (times, values) = head.active.as_slices();
                merged.append(times, values);
                head.active = merged;
                head.frozen = None;
            }
        }
    }

    // ----- compaction -----

    /// Merges runs of small blocks until none is left. Returns the number
    /// of merges, or the first error after the other metrics are done.
    pub fn compact(&self) -> Result<usize, DiskError> {
        let mut merges = 0;
        let mut first_error = None;
        let mut failed_metrics: HashSet<String> = HashSet::new();
        loop {
            let mut maintenance = self.maintenance.lock();
            let metrics: Vec<Arc<MetricState>> = self.metrics.read().values().cloned().collect();
            let mut merged_any = false;
            for metric in metrics {
                if failed_metrics.contains(&metric.name) {
                    continue;
                }
                let blocks = metric.block_list();
                let Some(run) = self.pick_compaction_run(&blocks) else {
                    continue;
                };
                match self.merge_blocks(&mut maintenance, &metric, &blocks[run]) {
                    Ok(()) => {
                        maintenance.compaction_errors.remove(&metric.name);
                        merges += 1;
                        merged_any = true;
                    }
                    Err(err) => {
                        log_compaction_error(&mut maintenance, &metric.name, &err);
                        failed_metrics.insert(metric.name.clone());
                        first_error.get_or_insert(err);
                    }
                }
            }
            if !merged_any {
                return match first_error {
                    Some(err) => Err(err),
                    None => Ok(merges),
                };
            }
        }
    }

    /// Finds the oldest run of consecutive blocks that together stay
    /// within the point and span limits and has at least
    /// `compaction_min_blocks` members.
    fn pick_compaction_run(&self, blocks: &[Arc<Block>]) -> Option<std::ops::Range<usize>> {
        let min_blocks = self.config.compaction_min_blocks.max(2);
        let max_span_ns =
            i128::try_from(self.config.block_max_span.as_nanos()).unwrap_or(i128::MAX);
        for start in 0..blocks.len() {
            let mut points = 0u64;
            let mut first_ns = TimestampNs::MAX;
            let mut last_ns = TimestampNs::MIN;
            let mut end = start;
            while end < blocks.len() {
                let block = &blocks[end];
                let span_first = first_ns.min(block.min_time_ns);
                let span_last = last_ns.max(block.max_time_ns);
                let span = i128::from(span_last) - i128::from(span_first);
                if points + block.point_count > self.config.block_max_points || span > max_span_ns {
                    break;
                }
                points += block.point_count;
                first_ns = span_first;
                last_ns = span_last;
                end += 1;
            }
            if end - start >= min_blocks {
                return Some(start..end);
            }
        }
        None
    }

    /// Replaces consecutive blocks of one metric with one block.
    fn merge_blocks(
        &self,
        maintenance: &mut Maintenance,
        metric: &MetricState,
        inputs: &[Arc<Block>],
    ) -> Result<(), DiskError> {
        let started = Instant::now();
        let header = BlockHeader {
            metric: metric.name.clone(),
            kind: metric.kind(),
            min_seq: inputs[0].header.min_seq,
            max_seq: inputs[inputs.len() - 1].header.max_seq,
        };
        let mut writer = BlockWriter::new(header);
        // Series removed since the inputs were written are left out. The
        // index lock is released before any chunk is read, because a
        // writer that adds a series waits for it while holding `ingest`.
        let series_ids: BTreeSet<SeriesId> = {
            let live = metric.series.read();
            inputs
                .iter()
                .flat_map(|b| b.entries().iter().map(|e| e.series))
                .filter(|id| live.by_id.contains_key(id))
                .collect()
        };
        for series in series_ids {
            let sources: Vec<(&Arc<Block>, &[ChunkEntry])> = inputs
                .iter()
                .map(|b| (b, b.entries_for(series)))
                .filter(|(_, chunks)| !chunks.is_empty())
                .collect();
            if let [(block, chunks)] = sources[..] {
                for entry in chunks {
                    writer.add_encoded(entry, &block.read_chunk_bytes(entry)?);
                }
                continue;
            }
            // Chunks in input order: blocks oldest first, each block's
            // chunks in time order. Chunks of one block never share a
            // timestamp, so their relative priority does not matter.
            let decoded = sources
                .iter()
                .flat_map(|(block, chunks)| chunks.iter().map(move |entry| block.read_chunk(entry)))
                .collect::<Result<Vec<_>, _>>()?;
            let runs: Vec<(&[TimestampNs], ColumnSlice<'_>)> = decoded
                .iter()
                .map(|(times, values)| (times.as_slice(), values.as_slice()))
                .collect();
            let (times, values) = merge_runs(&runs, metric.kind());
            let tags = sources[0].1[0].tags.clone();
            writer.add_series(series, tags, &times, values.as_slice());
        }

        let output = if writer.is_empty() {
            None
        } else {
            let id = Self::next_block_id(maintenance);
            let block = Arc::new(writer.write(&self.dirs.blocks, id)?);
            sync_dir(&self.dirs.blocks).map_err(Self::io_error(&self.dirs.blocks))?;
            Some(block)
        };
        self.replace_blocks(maintenance, metric, inputs, output.clone())?;
        tracing::info!(
            metric = %metric.name,
            input_blocks = inputs.len(),
            output_block = output.as_ref().map(|b| b.id.0),
            rows = output.as_ref().map_or(0, |b| b.point_count),
            bytes = output.as_ref().map_or(0, |b| b.file_bytes),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compacted blocks"
        );
        Ok(())
    }

    /// Commits a catalog in which `replacement` (if any) replaces `olds`,
    /// installs it and deletes the old files.
    fn replace_blocks(
        &self,
        maintenance: &mut Maintenance,
        metric: &MetricState,
        olds: &[Arc<Block>],
        replacement: Option<Arc<Block>>,
    ) -> Result<(), DiskError> {
        let old_ids: BTreeSet<u64> = olds.iter().map(|b| b.id.0).collect();
        self.commit_catalog(maintenance, |catalog| {
            catalog.blocks.retain(|b| !old_ids.contains(&b.id));
            if let Some(block) = &replacement {
                catalog.blocks.push(CatalogBlock {
                    id: block.id.0,
                    metric: metric.name.clone(),
                });
            }
        })?;
        {
            let mut blocks = metric.blocks.write();
            let mut list: Vec<Arc<Block>> = Vec::with_capacity(blocks.len());
            let mut placed = false;
            for block in blocks.iter() {
                if !old_ids.contains(&block.id.0) {
                    list.push(block.clone());
                } else if !placed {
                    placed = true;
                    list.extend(replacement.clone());
                }
            }
            *blocks = Arc::new(list);
        }
        self.remove_block_files(olds)
    }

    // ----- deletions -----

    /// Removes the blocks of a metric that has left the metric map.
    pub fn drop_metric_blocks(
        &self,
        maintenance: &mut Maintenance,
        metric: &MetricState,
    ) -> Result<(), DiskError> {
        let blocks = metric.block_list();
        if blocks.is_empty() {
            return Ok(());
        }
        let ids: BTreeSet<u64> = blocks.iter().map(|b| b.id.0).collect();
        self.commit_catalog(maintenance, |catalog| {
            catalog.blocks.retain(|b| !ids.contains(&b.id))
        })?;
        *metric.blocks.write() = Arc::new(Vec::new());
        self.remove_block_files(&blocks)
    }

    /// Removes block points older than `cutoff_ns`: whole blocks where all
    /// points are older, rewritten blocks where some are. Chunks entirely
    /// at or after the cutoff are copied unchanged. Returns the number of
    /// points removed.
    pub fn delete_before_in_blocks(
        &self,
        maintenance: &mut Maintenance,
        metric: &MetricState,
        cutoff_ns: TimestampNs,
    ) -> Result<u64, DiskError> {
        let blocks = metric.block_list();
        let mut deleted = 0u64;
        for block in blocks.iter() {
            if block.min_time_ns >= cutoff_ns {
                continue;
            }
            if block.max_time_ns < cutoff_ns {
                deleted += block.point_count;
                self.replace_blocks(maintenance, metric, std::slice::from_ref(block), None)?;
                continue;
            }
            let mut writer = BlockWriter::new(block.header.clone());
            for entry in block.entries() {
                if entry.max_time_ns < cutoff_ns {
                    deleted += entry.stats.count;
                } else if entry.min_time_ns >= cutoff_ns {
                    writer.add_encoded(entry, &block.read_chunk_bytes(entry)?);
                } else {
                    let (times, values) = block.read_chunk(entry)?;
                    let keep_from = times.partition_point(|&t| t < cutoff_ns);
                    deleted += keep_from as u64;
                    let values = values.as_slice();
                    writer.add_series(
                        entry.series,
                        entry.tags.clone(),
                        &times[keep_from..],
                        values.slice(keep_from, values.len()),
                    );
                }
            }
            let replacement = if writer.is_empty() {
                None
            } else {
                let id = Self::next_block_id(maintenance);
                let rewritten = Arc::new(writer.write(&self.dirs.blocks, id)?);
                sync_dir(&self.dirs.blocks).map_err(Self::io_error(&self.dirs.blocks))?;
                Some(rewritten)
            };
            self.replace_blocks(
                maintenance,
                metric,
                std::slice::from_ref(block),
                replacement,
            )?;
        }
        Ok(deleted)
    }
}

/// Logs a failed merge of `metric` at ERROR unless the previous failure of
/// that metric had the same message, so a retry every maintenance
/// interval logs a persistent error once.
fn log_compaction_error(maintenance: &mut Maintenance, metric: &str, err: &DiskError) {
    let message = err.to_string();
    if maintenance.compaction_errors.get(metric) == Some(&message) {
        return;
    }
    tracing::error!(
        metric,
        error = %message,
        "compaction failed; other metrics continue, and the merge is retried at \
         each check without logging this error again"
    );
    maintenance
        .compaction_errors
        .insert(metric.to_owned(), message);
}
