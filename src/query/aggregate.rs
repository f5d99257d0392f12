//! Time-bucketed aggregations, grouped by tags, with fill.

use std::collections::{BTreeMap, HashMap};

use super::{QueryEngine, QueryError, dense};
use crate::aggregate::bucket::Bucketer;
use crate::aggregate::fill::{FillMode, FilledBucket, fill};
use crate::aggregate::{Accumulator, AggFn};
use crate::model::filter::FilterSet;
use crate::model::{ColumnSlice, GroupKey, SeriesId, TimeRange, TimestampNs, ValueKind, group_key};
use crate::storage::{PointSummary, ScanPart};

#[derive(Debug)]
pub struct AggregateQuery {
    pub metric: String,
    /// `None` means all time.
    pub range: Option<TimeRange>,
    pub filters: FilterSet,
    pub bucketer: Bucketer,
    pub functions: Vec<AggFn>,
    pub group_by: Vec<String>,
    pub fill: FillMode,
}

/// The buckets of one group.
#[derive(Debug, Clone)]
pub struct GroupSeries {
    /// Group-by tags the group has, in request order; a tag the points
    /// lack is absent.
    pub group: Vec<(String, String)>,
    pub buckets: Vec<FilledBucket>,
}

#[derive(Debug, Clone, Default)]
pub struct AggregateResult {
    pub series: Vec<GroupSeries>,
    pub points_scanned: u64,
}

/// Accumulators of one group, by bucket start.
pub(super) type GroupBuckets = BTreeMap<TimestampNs, (TimestampNs, Accumulator)>;

impl QueryEngine {
    pub fn aggregate(&self, query: &mut AggregateQuery) -> Result<AggregateResult, QueryError> {
        let range = query
            .filters
            .narrow_range(query.range.unwrap_or(TimeRange::ALL));
        let mut result = AggregateResult::default();
        let mut groups: HashMap<GroupKey, GroupBuckets> = HashMap::new();

        if !range.is_empty() {
            let numeric = self
                .storage
                .metric(&query.metric)
                .is_some_and(|m| m.data_type.column_kind() != ValueKind::Str);
            match query.bucketer.epoch_width_ns() {
                Some(width_ns)
                    if numeric
                        && !query.filters.has_point_filters()
                        && dense::supports(&query.functions) =>
                {
                    let done = self.accumulate_dense(
                        &query.metric,
                        &query.filters,
                        &query.group_by,
                        &query.functions,
                        width_ns,
                        range,
                        &mut groups,
                        &mut result.points_scanned,
                    )?;
                    if !done {
                        self.accumulate(query, range, &mut groups, &mut result.points_scanned)?;
                    }
                }
                _ => self.accumulate(query, range, &mut groups, &mut result.points_scanned)?,
            }
        }

        // Fill covers the requested range, or the span of the data when
        // the request has no range.
        let fill_span = match query.range {
            Some(requested) if !range.is_empty() => Some((
                query.bucketer.bucket_of(requested.start_ns).0,
                query
                    .bucketer
                    .bucket_of(requested.end_ns.saturating_sub(1))
                    .0,
            )),
            Some(_) => None,
            None => {
                let first = groups
                    .values()
                    .filter_map(|b| b.keys().next())
                    .min()
                    .copied();
                let last = groups
                    .values()
                    .filter_map(|b| b.keys().next_back())
                    .max()
                    .copied();
                first.zip(last)
            }
        };

        // The bucket limit covers the whole response, not each group, so a
        // request with many groups cannot fill its way past it.
        let max_buckets = self.limits.max_buckets;
        if let (true, Some((first_start, last_start))) = (query.fill != FillMode::None, fill_span) {
            let per_group = query.bucketer.count_buckets(first_start, last_start);
            let total = per_group.saturating_mul(groups.len() as u64);
            if total > max_buckets as u64 {
                return Err(QueryError::TooLarge(format!(
                    "fill would produce {total} buckets ({per_group} in each of {} groups), more than the limit of {max_buckets} (max_buckets); use a wider granularity or step, a shorter range, or fewer groups",
                    groups.len()
                )));
            }
        }

        let mut ordered: Vec<(GroupKey, GroupBuckets)> = groups.into_iter().collect();
        ordered.sort_by(|a, b| a.0.cmp(&b.0));

        for (key, buckets) in ordered {
            let finished: Vec<FilledBucket> = buckets
                .into_iter()
                .map(|(start_ns, (end_ns, mut accumulator))| FilledBucket {
                    start_ns,
                    end_ns,
                    count: accumulator.count(),
                    values: accumulator.finish(&query.functions, end_ns.saturating_sub(start_ns)),
                })
                .collect();

            let buckets = match (query.fill, fill_span) {
                (FillMode::None, _) | (_, None) => finished,
                (mode, Some((first_start, last_start))) => fill(
                    finished,
                    mode,
                    &mut query.bucketer,
                    first_start,
                    last_start,
                    query.functions.len(),
                    self.limits.max_buckets,
                )
                .map_err(QueryError::TooLarge)?,
            };

            let group = query
                .group_by
                .iter()
                .zip(key)
                .filter_map(|(name, value)| value.map(|v| (name.clone(), v)))
                .collect();
            result.series.push(GroupSeries { group, buckets });
        }
        Ok(result)
    }

    fn accumulate(
        &self,
        query: &mut AggregateQuery,
        range: TimeRange,
        groups: &mut HashMap<GroupKey, GroupBuckets>,
        points_scanned: &mut u64,
    ) -> Result<(), QueryError> {
        let functions = &query.functions;
        let filters = &query.filters;
        let bucketer = &mut query.bucketer;
        let max_buckets = self.limits.max_buckets;
        let mut bucket_total = 0usize;

        // Block summaries (count, sum, min, max of a whole chunk) can stand
        // in for points when no point is filtered and no function needs the
        // individual values.
        let use_summaries =
            !filters.has_point_filters() && Accumulator::new(functions, None).accepts_summaries();

        for series in self.storage.series(&query.metric) {
            if !filters.matches_series(&series.tags) {
                continue;
            }
            let buckets = groups
                .entry(group_key(&series.tags, &query.group_by))
                .or_default();
            let mut run = RunAccumulation {
                functions,
                filters,
                bucketer: &mut *bucketer,
                buckets,
                bucket_total: &mut bucket_total,
                points_scanned: &mut *points_scanned,
            };

            if use_summaries {
                // Summaries that straddle a bucket boundary are scanned
                // point by point afterwards, outside the storage callback.
                let mut straddling: Vec<TimeRange> = Vec::new();
                self.storage
                    .scan_summarized(&query.metric, series.id, range, &mut |part| match part {
                        ScanPart::Points(times, values) => run.add_points(series.id, times, values),
                        ScanPart::Summary(summary) => {
                            if !run.add_summary(&summary) {
                                straddling.push(TimeRange::new(
                                    summary.first_time_ns,
                                    summary.last_time_ns.saturating_add(1),
                                ));
                            }
                        }
                    })?;
                for span in straddling {
                    self.storage
                        .scan(&query.metric, series.id, span, &mut |times, values| {
                            run.add_points(series.id, times, values)
                        })?;
                }
            } else {
                self.storage
                    .scan(&query.metric, series.id, range, &mut |times, values| {
                        run.add_points(series.id, times, values)
                    })?;
            }

            if bucket_total > max_buckets {
                return Err(QueryError::TooLarge(format!(
                    "aggregation produces more than {max_buckets} buckets (max_buckets); use a wider granularity or step, or a shorter range"
                )));
            }
        }
        Ok(())
    }
}

/// Feeds the scanned parts of one series into its group's buckets.
struct RunAccumulation<'a> {
    functions: &'a [AggFn],
    filters: &'a FilterSet,
    bucketer: &'a mut Bucketer,
    buckets: &'a mut GroupBuckets,
    bucket_total: &'a mut usize,
    points_scanned: &'a mut u64,
}

impl RunAccumulation<'_> {
    fn accumulator(&mut self, start_ns: TimestampNs, end_ns: TimestampNs) -> &mut Accumulator {
        let functions = self.functions;
        let bucket_total = &mut *self.bucket_total;
        let (_, accumulator) = self.buckets.entry(start_ns).or_insert_with(|| {
            *bucket_total += 1;
            (end_ns, Accumulator::new(functions, None))
        });
        accumulator
    }

    fn add_points(&mut self, series: SeriesId, times: &[TimestampNs], values: ColumnSlice<'_>) {
        *self.points_scanned += times.len() as u64;

        if self.filters.has_point_filters() {
            for (i, &time_ns) in times.iter().enumerate() {
                let value = values.get(i);
                if !self.filters.matches_point(time_ns, value) {
                    continue;
                }
                let (start_ns, end_ns) = self.bucketer.bucket_of(time_ns);
                self.accumulator(start_ns, end_ns)
                    .push(series, time_ns, value);
            }
            return;
        }

        // Points are sorted, so each bucket's points form one run.
        let mut from = 0;
        while from < times.len() {
            let (start_ns, end_ns) = self.bucketer.bucket_of(times[from]);
            let to = from + times[from..].partition_point(|&t| t < end_ns);
            self.accumulator(start_ns, end_ns).push_run(
                series,
                &times[from..to],
                values.slice(from, to),
            );
            from = to;
        }
    }

    /// Adds a summary if it lies inside one bucket; returns false if it
    /// straddles a boundary and its points must be scanned instead.
    fn add_summary(&mut self, summary: &PointSummary) -> bool {
        let (start_ns, end_ns) = self.bucketer.bucket_of(summary.first_time_ns);
        if summary.last_time_ns >= end_ns {
            return false;
        }
        *self.points_scanned += summary.count;
        self.accumulator(start_ns, end_ns).push_summary(
            summary.count,
            summary.sum,
            summary.min,
            summary.max,
        );
        true
    }
}
