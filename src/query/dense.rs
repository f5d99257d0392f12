//! The dense path of aggregations: COUNT, SUM, MEAN, MIN, MAX and RATE
//! over epoch-aligned buckets of a numeric metric without point filters.
//!
//! Each group keeps a flat array of per-bucket cells (count, sum, min,
//! max) indexed by bucket number, so a point costs a comparison and three
//! arithmetic updates instead of a bucket lookup and an accumulator call. Block summaries that fall inside one bucket
//! are added whole. The result is converted to accumulators, so fill and
//! output work as on the general path.

use std::collections::HashMap;

use super::aggregate::GroupBuckets;
use super::{QueryEngine, QueryError};
use crate::aggregate::{Accumulator, AggFn};
use crate::model::{ColumnSlice, GroupKey, TimeRange, TimestampNs, group_key};
use crate::storage::{PointSummary, ScanPart};

/// Count, sum, minimum and maximum of one bucket.
#[derive(Debug, Clone, Copy)]
struct Cell {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Cell {
    const EMPTY: Cell = Cell {
        count: 0,
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };
}

/// The buckets of one group, one [`Cell`] per bucket number. The four
/// figures of a bucket sit together, so a point touches one cache line.
#[derive(Default)]
struct DenseGroup {
    /// Bucket number (`floor(time / width)`) of slot 0.
    first_bucket: i64,
    /// Set when the points span too many buckets for flat arrays; the
    /// query then takes the general path.
    too_sparse: bool,
    cells: Vec<Cell>,
}

impl DenseGroup {
    /// Returns the slot of bucket number `bucket`, growing the array in
    /// either direction as needed. Returns None, and marks the group too
    /// sparse, when the array would span more than [`MAX_DENSE_SLOTS`].
    fn slot(&mut self, bucket: i64) -> Option<usize> {
        // Most buckets already have a cell.
        let offset = bucket.wrapping_sub(self.first_bucket);
        if !self.cells.is_empty() && (offset as u64) < self.cells.len() as u64 {
            return Some(offset as usize);
        }
        if self.cells.is_empty() {
            self.first_bucket = bucket;
        }
        let last_bucket = self.first_bucket + self.cells.len().max(1) as i64 - 1;
        let span = bucket
            .max(last_bucket)
            .abs_diff(bucket.min(self.first_bucket));
        if span >= MAX_DENSE_SLOTS as u64 {
            self.too_sparse = true;
            return None;
        }
        if bucket < self.first_bucket {
            let grow = (self.first_bucket - bucket) as usize;
            self.cells
                .splice(0..0, std::iter::repeat_n(Cell::EMPTY, grow));
            self.first_bucket = bucket;
        }
        let slot = (bucket - self.first_bucket) as usize;
        if slot >= self.cells.len() {
            self.cells.resize(slot + 1, Cell::EMPTY);
        }
        Some(slot)
    }

    fn buckets(&self) -> usize {
        self.cells.len()
    }

    /// Adds another group's buckets into this one.
    fn merge(&mut self, other: &DenseGroup) {
        for (slot, theirs) in other.cells.iter().enumerate() {
            if theirs.count == 0 {
                continue;
            }
            let Some(mine) = self.slot(other.first_bucket + slot as i64) else {
                return;
            };
            let cell = &mut self.cells[mine];
            cell.count += theirs.count;
            cell.sum += theirs.sum;
            cell.min = cell.min.min(theirs.min);
            cell.max = cell.max.max(theirs.max);
        }
    }
}

/// Adds one sorted run of values to a group.
///
/// The points of one bucket are added in a loop of their own. The sum
/// keeps the order of the points, so the result is the same bit for bit
/// as adding them one at a time. Stored values are never NaN, so `<` and
/// `>` give the same minimum and maximum as `f64::min` and `f64::max`.
fn add_run<T: Copy>(
    group: &mut DenseGroup,
    width_ns: i64,
    times: &[TimestampNs],
    values: &[T],
    to_f64: impl Fn(T) -> f64,
) {
    let len = times.len().min(values.len());
    let (times, values) = (&times[..len], &values[..len]);
    let mut from = 0;
    while from < len {
        let bucket = times[from].div_euclid(width_ns);
        let Some(slot) = group.slot(bucket) else {
            return;
        };
        let bucket_end_ns = (bucket + 1).saturating_mul(width_ns);
        let cell = &mut group.cells[slot];
        let (mut sum, mut min, mut max) = (cell.sum, cell.min, cell.max);
        // Points are sorted, so the bucket's points end at the first time
        // at or after its end.
        let mut to = from;
        while to < len && times[to] < bucket_end_ns {
            let value = to_f64(values[to]);
            sum += value;
            if value < min {
                min = value;
            }
            if value > max {
                max = value;
            }
            to += 1;
        }
        cell.count += (to - from) as u64;
        (cell.sum, cell.min, cell.max) = (sum, min, max);
        from = to;
    }
}

fn add_points(
    group: &mut DenseGroup,
    width_ns: i64,
    times: &[TimestampNs],
    values: ColumnSlice<'_>,
) {
    match values {
        ColumnSlice::F64(v) => add_run(group, width_ns, times, v, |x| x),
        ColumnSlice::I64(v) => add_run(group, width_ns, times, v, |x| x as f64),
        ColumnSlice::Bool(v) => add_run(group, width_ns, times, v, |x| if x { 1.0 } else { 0.0 }),
        // Callers only take this path for numeric metrics.
        ColumnSlice::Str(_) => {}
    }
}

/// Adds a summary if it lies in one bucket; false means its points must
/// be scanned instead.
fn add_summary(group: &mut DenseGroup, width_ns: i64, summary: &PointSummary) -> bool {
    let bucket = summary.first_time_ns.div_euclid(width_ns);
    if summary.last_time_ns.div_euclid(width_ns) != bucket {
        return false;
    }
    let Some(slot) = group.slot(bucket) else {
        // The group is too sparse; the caller falls back anyway.
        return true;
    };
    let cell = &mut group.cells[slot];
    cell.count += summary.count;
    cell.sum += summary.sum;
    cell.min = cell.min.min(summary.min);
    cell.max = cell.max.max(summary.max);
    true
}

/// Reports whether the dense path can run `functions`.
pub fn supports(functions: &[AggFn]) -> bool {
    functions.iter().all(|f| {
        matches!(
            f,
            AggFn::Count | AggFn::Sum | AggFn::Mean | AggFn::Min | AggFn::Max | AggFn::Rate
        )
    })
}

/// Most buckets one group's arrays may span; sparser data takes the
/// general path, whose buckets cost memory only where points are.
const MAX_DENSE_SLOTS: usize = 1 << 16;

/// Groups of one thread's series and the points it scanned.
type DensePart = (HashMap<GroupKey, DenseGroup>, u64);

/// Minimum number of series that justifies a thread of its own.
const MIN_SERIES_PER_THREAD: usize = 16;

fn too_many_buckets(max_buckets: usize) -> QueryError {
    QueryError::TooLarge(format!(
        "aggregation spans more than {max_buckets} buckets (max_buckets); use a wider granularity or step, or a shorter range"
    ))
}

impl QueryEngine {
    /// Accumulates some series of a metric into fresh groups; returns them
    /// with the number of points scanned.
    fn dense_part(
        &self,
        metric: &str,
        series: &[crate::storage::SeriesInfo],
        group_by: &[String],
        width_ns: i64,
        range: TimeRange,
        max_buckets: usize,
    ) -> Result<Option<DensePart>, QueryError> {
        let mut dense: HashMap<GroupKey, DenseGroup> = HashMap::new();
        let mut points_scanned = 0u64;
        for series in series {
            let group = dense.entry(group_key(&series.tags, group_by)).or_default();

            let mut straddling: Vec<TimeRange> = Vec::new();
            self.storage
                .scan_summarized(metric, series.id, range, &mut |part| match part {
                    ScanPart::Points(times, values) => {
                        points_scanned += times.len() as u64;
                        add_points(group, width_ns, times, values);
                    }
                    ScanPart::Summary(summary) => {
                        if add_summary(group, width_ns, &summary) {
                            points_scanned += summary.count;
                        } else {
                            straddling.push(TimeRange::new(
                                summary.first_time_ns,
                                summary.last_time_ns.saturating_add(1),
                            ));
                        }
                    }
                })?;
            for span in straddling {
                self.storage
                    .scan(metric, series.id, span, &mut |times, values| {
                        points_scanned += times.len() as u64;
                        add_points(group, width_ns, times, values);
                    })?;
            }

            if group.too_sparse {
                return Ok(None);
            }
            let total: usize = dense.values().map(DenseGroup::buckets).sum();
            if total > max_buckets {
                return Err(too_many_buckets(max_buckets));
            }
        }
        Ok(Some((dense, points_scanned)))
    }

    /// Accumulates a metric's matching series on the dense path. The
    /// caller checked [`supports`], that the metric is numeric, that the
    /// query has no point filters and that `width_ns` is epoch-aligned.
    /// Returns false, with `groups` and `points_scanned` untouched, when
    /// the data is too sparse for flat arrays.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn accumulate_dense(
        &self,
        metric: &str,
        tag_filters: &crate::model::filter::FilterSet,
        group_by: &[String],
        functions: &[AggFn],
        width_ns: i64,
        range: TimeRange,
        groups: &mut HashMap<GroupKey, GroupBuckets>,
        points_scanned: &mut u64,
    ) -> Result<bool, QueryError> {
        let max_buckets = self.limits.max_buckets;
        let series: Vec<_> = self
            .storage
            .series(metric)
            .into_iter()
            .filter(|s| tag_filters.matches_series(&s.tags))
            .collect();

        // Series are split across the cores; each thread fills its own
        // groups, and the groups are merged at the end.
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(series.len().div_ceil(MIN_SERIES_PER_THREAD))
            .max(1);
        let share = series.len().div_ceil(threads).max(1);
        let partials: Vec<Result<Option<DensePart>, QueryError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = series
                .chunks(share)
                .map(|part| {
                    scope.spawn(move || {
                        self.dense_part(metric, part, group_by, width_ns, range, max_buckets)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(QueryError::Internal(
                            "an aggregation thread panicked".into(),
                        ))
                    })
                })
                .collect()
        });

        let mut dense: HashMap<GroupKey, DenseGroup> = HashMap::new();
        let mut scanned_total = 0u64;
        for partial in partials {
            let Some((groups_part, scanned)) = partial? else {
                return Ok(false);
            };
            scanned_total += scanned;
            for (key, group) in groups_part {
                match dense.get_mut(&key) {
                    Some(existing) => existing.merge(&group),
                    None => {
                        dense.insert(key, group);
                    }
                }
            }
        }
        if dense.values().any(|g| g.too_sparse) {
            return Ok(false);
        }
        *points_scanned += scanned_total;
        let total: usize = dense.values().map(DenseGroup::buckets).sum();
        if total > max_buckets {
            return Err(too_many_buckets(max_buckets));
        }

        for (key, group) in dense {
            let buckets = groups.entry(key).or_default();
            for (slot, cell) in group.cells.iter().enumerate() {
                if cell.count == 0 {
                    continue;
                }
                let start_ns = (group.first_bucket + slot as i64).saturating_mul(width_ns);
                let end_ns = start_ns.saturating_add(width_ns);
                let mut accumulator = Accumulator::new(functions, None);
                accumulator.push_summary(cell.count, cell.sum, cell.min, cell.max);
                buckets.insert(start_ns, (end_ns, accumulator));
            }
        }
        Ok(true)
    }
}
