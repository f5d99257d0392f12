//! Reading one series: merges its block chunks, the frozen head of a
//! flush in progress and the active head into one time-ordered stream
//! with the newest write winning for equal timestamps.
//!
//! Sources that do not overlap in time are handed over as they are. A
//! block chunk that lies inside the range and overlaps nothing can be
//! handed over as its index summary without being read. Overlapping
//! sources, which out-of-order writes produce, are merged.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::DiskError;
use super::block::{Block, ChunkEntry};
use super::chunk_cache::ChunkKey;
use super::engine::Engine;
use crate::model::{Column, ColumnSlice, SeriesId, TimeRange, TimestampNs, ValueKind};
use crate::storage::{PointSummary, ScanPart};

/// A block chunk that overlaps the scanned range.
struct ChunkRun {
    block: Arc<Block>,
    entry: ChunkEntry,
    /// Priority among sources: the block's position, oldest first.
    priority: usize,
    decoded: Option<(Vec<TimestampNs>, Column)>,
}

#[derive(Clone, Copy)]
enum SpanSource {
    Chunk(usize),
    Frozen,
    Active,
}

/// Time extent of one source inside the range.
#[derive(Clone, Copy)]
struct Span {
    first_ns: TimestampNs,
    last_ns: TimestampNs,
    source: SpanSource,
}

/// Returns the index range of `times` inside `range`.
fn positions_in(times: &[TimestampNs], range: TimeRange) -> (usize, usize) {
    let from = times.partition_point(|&t| t < range.start_ns);
    let to = times.partition_point(|&t| t < range.end_ns).max(from);
    (from, to)
}

fn slice_in<'a>(
    times: &'a [TimestampNs],
    values: ColumnSlice<'a>,
    range: TimeRange,
) -> (&'a [TimestampNs], ColumnSlice<'a>) {
    let (from, to) = positions_in(times, range);
    (&times[from..to], values.slice(from, to))
}

/// Merges runs given oldest first into one sorted run that keeps, for
/// each timestamp, the value of the newest run. Each run is sorted and
/// free of duplicates.
pub(super) fn merge_runs(
    runs: &[(&[TimestampNs], ColumnSlice<'_>)],
    kind: ValueKind,
) -> (Vec<TimestampNs>, Column) {
    let total: usize = runs.iter().map(|(times, _)| times.len()).sum();
    let mut order: Vec<(TimestampNs, u32, u32)> = Vec::with_capacity(total);
    for (run, (times, _)) in runs.iter().enumerate() {
        order.extend(
            times
                .iter()
                .enumerate()
                .map(|(pos, &t)| (t, run as u32, pos as u32)),
        );
    }
    order.sort_unstable();

    let mut times = Vec::with_capacity(total);
    let mut values = Column::empty(kind);
    for (i, &(time, run, pos)) in order.iter().enumerate() {
        if order.get(i + 1).is_some_and(|next| next.0 == time) {
            continue;
        }
        times.push(time);
        values.push(runs[run as usize].1.get(pos as usize));
    }
    (times, values)
}

impl Engine {
    /// Scans one series, see [`crate::storage::Storage::scan_summarized`].
    /// With `summaries` false every part is `ScanPart::Points`.
    pub fn scan_parts(
        &self,
        metric: &str,
        series: SeriesId,
        range: TimeRange,
        summaries: bool,
        visit: &mut dyn FnMut(ScanPart<'_>),
    ) -> Result<(), DiskError> {
        if range.is_empty() {
            return Ok(());
        }
        let Some(metric) = self.metric_state(metric) else {
            return Ok(());
        };
        let Some(series) = metric.series.read().by_id.get(&series).cloned() else {
            return Ok(());
        };
        let kind = metric.kind();
        let summaries = summaries && kind != ValueKind::Str;

        loop {
            // A flush moves points from the head into a block. Reading the
            // head's frozen part before the block list and checking both
            // again under the head lock ensures no point is missed.
            let generation = self.flush_generation.load(Ordering::SeqCst);
            let frozen = series.head.read().frozen.clone();
            let blocks = metric.block_list();

            let mut chunks = Vec::new();
            for (priority, block) in blocks.iter().enumerate() {
                if block.max_time_ns < range.start_ns || block.min_time_ns >= range.end_ns {
                    continue;
                }
                for entry in block.entries_for(series.id) {
                    if entry.max_time_ns < range.start_ns || entry.min_time_ns >= range.end_ns {
                        continue;
                    }
                    let inside =
                        range.contains(entry.min_time_ns) && range.contains(entry.max_time_ns);
                    let decoded = if summaries && inside {
                        None
                    } else {
                        Some(self.read_chunk_cached(block, entry)?)
                    };
                    chunks.push(ChunkRun {
                        block: block.clone(),
                        entry: entry.clone(),
                        priority,
                        decoded,
                    });
                }
            }

            let frozen_guard = frozen.as_ref().map(|f| f.read());
            let head = series.head.read();
            let same_frozen = match (&head.frozen, &frozen) {
                (Some(now), Some(before)) => Arc::ptr_eq(now, before),
                (None, None) => true,
                _ => false,
            };
            if !same_frozen || self.flush_generation.load(Ordering::SeqCst) != generation {
                continue;
            }

            let frozen_run = frozen_guard.as_ref().map(|data| {
                let (times, values) = data.as_slices();
                slice_in(times, values, range)
            });
            let (active_times, active_values) = head.active.as_slices();
            let active_run = slice_in(active_times, active_values, range);
            return emit(
                self,
                &mut chunks,
                frozen_run,
                active_run,
                range,
                blocks.len(),
                kind,
                visit,
            );
        }
    }

    /// Reads and decodes a chunk, taking its bytes from the chunk cache
    /// when they are there.
    fn read_chunk_cached(
        &self,
        block: &Block,
        entry: &ChunkEntry,
    ) -> Result<(Vec<TimestampNs>, Column), DiskError> {
        let key = ChunkKey {
            block: block.id,
            offset: entry.offset(),
        };
        let bytes = match self.chunk_cache.get(key) {
            Some(bytes) => bytes,
            None => {
                let bytes: Arc<[u8]> = block.read_chunk_bytes(entry)?.into();
                self.chunk_cache.insert(key, bytes.clone());
                bytes
            }
        };
        Ok(block.decode_chunk(entry, &bytes)?)
    }
}

/// Hands the sources over in time order, merging the ones that overlap.
#[allow(clippy::too_many_arguments)]
fn emit(
    engine: &Engine,
    chunks: &mut [ChunkRun],
    frozen: Option<(&[TimestampNs], ColumnSlice<'_>)>,
    active: (&[TimestampNs], ColumnSlice<'_>),
    range: TimeRange,
    block_count: usize,
    kind: ValueKind,
    visit: &mut dyn FnMut(ScanPart<'_>),
) -> Result<(), DiskError> {
    let mut spans: Vec<Span> = Vec::with_capacity(chunks.len() + 2);
    for (index, chunk) in chunks.iter().enumerate() {
        let (first_ns, last_ns) = match &chunk.decoded {
            Some((times, values)) => match slice_in(times, values.as_slice(), range).0 {
                [] => continue,
                times => (times[0], times[times.len() - 1]),
            },
            None => (chunk.entry.min_time_ns, chunk.entry.max_time_ns),
        };
        spans.push(Span {
            first_ns,
            last_ns,
            source: SpanSource::Chunk(index),
        });
    }
    for (run, source) in [
        (frozen, SpanSource::Frozen),
        (Some(active), SpanSource::Active),
    ] {
        if let Some((times, _)) = run
            && let (Some(&first_ns), Some(&last_ns)) = (times.first(), times.last())
        {
            spans.push(Span {
                first_ns,
                last_ns,
                source,
            });
        }
    }
    spans.sort_by_key(|s| (s.first_ns, s.last_ns));

    // Groups of spans that overlap in time, in time order.
    let mut clusters: Vec<Vec<Span>> = Vec::new();
    let mut cluster_last = TimestampNs::MIN;
    for span in spans {
        match clusters.last_mut() {
            Some(cluster) if span.first_ns <= cluster_last => {
                cluster.push(span);
                cluster_last = cluster_last.max(span.last_ns);
            }
            _ => {
                cluster_last = span.last_ns;
                clusters.push(vec![span]);
            }
        }
    }

    // A chunk kept undecoded for its summary must be read after all when
    // it overlaps another source.
    for cluster in clusters.iter().filter(|c| c.len() > 1) {
        for span in cluster {
            if let SpanSource::Chunk(index) = span.source {
                let chunk = &mut chunks[index];
                if chunk.decoded.is_none() {
                    chunk.decoded = Some(engine.read_chunk_cached(&chunk.block, &chunk.entry)?);
                }
            }
        }
    }

    for cluster in &clusters {
        // Runs with their priority: blocks by position, then the frozen
        // head, then the active head.
        let mut runs: Vec<(usize, &[TimestampNs], ColumnSlice<'_>)> =
            Vec::with_capacity(cluster.len());
        for span in cluster {
            match span.source {
                SpanSource::Chunk(index) => {
                    let chunk = &chunks[index];
                    match &chunk.decoded {
                        Some((times, values)) => {
                            let (times, values) = slice_in(times, values.as_slice(), range);
                            runs.push((chunk.priority, times, values));
                        }
                        None => {
                            let stats = chunk.entry.stats;
                            visit(ScanPart::Summary(PointSummary {
                                first_time_ns: chunk.entry.min_time_ns,
                                last_time_ns: chunk.entry.max_time_ns,
                                count: stats.count,
                                sum: stats.sum,
                                min: stats.min,
                                max: stats.max,
                            }));
                        }
                    }
                }
                SpanSource::Frozen => {
                    let (times, values) = frozen.expect("a frozen span has a frozen run");
                    runs.push((block_count, times, values));
                }
                SpanSource::Active => runs.push((block_count + 1, active.0, active.1)),
            }
        }
        match runs.len() {
            0 => {}
            1 => visit(ScanPart::Points(runs[0].1, runs[0].2)),
            _ => {
                runs.sort_by_key(|r| r.0);
                let ordered: Vec<(&[TimestampNs], ColumnSlice<'_>)> =
                    runs.iter().map(|r| (r.1, r.2)).collect();
                let (times, values) = merge_runs(&ordered, kind);
                visit(ScanPart::Points(&times, values.as_slice()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_prefers_newer_runs() {
        let old_times = [1, 2, 3];
        let old_values = [1.0, 2.0, 3.0];
        let new_times = [2, 4];
        let new_values = [20.0, 40.0];
        let (times, values) = merge_runs(
            &[
                (&old_times, ColumnSlice::F64(&old_values)),
                (&new_times, ColumnSlice::F64(&new_values)),
            ],
            ValueKind::F64,
        );
        assert_eq!(times, vec![1, 2, 3, 4]);
        assert_eq!(values, Column::F64(vec![1.0, 20.0, 3.0, 40.0]));
    }
}
