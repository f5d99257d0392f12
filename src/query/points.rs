//! Raw point queries: every matching point of one or more metrics in time
//! order, with limit and offset.

use std::sync::Arc;

use super::{QueryEngine, QueryError};
use crate::model::filter::FilterSet;
use crate::model::{TagSet, TimeRange, TimestampNs, Value};

#[derive(Debug, Clone)]
pub struct PointsQuery {
    pub metrics: Vec<String>,
    pub range: TimeRange,
    pub filters: FilterSet,
    pub limit: usize,
    pub offset: usize,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueriedPoint {
    pub metric: Arc<str>,
    pub tags: Arc<TagSet>,
    pub time_ns: TimestampNs,
    pub value: Value,
}

#[derive(Debug, Clone, Default)]
pub struct PointsResult {
    pub points: Vec<QueriedPoint>,
    /// Matching points before limit and offset.
    pub total_matched: u64,
    pub points_scanned: u64,
}

impl QueryEngine {
    /// Returns the matching points sorted by time, then metric (in request
    /// order), then series.
    pub fn query_points(&self, query: &PointsQuery) -> Result<PointsResult, QueryError> {
        let range = query.filters.narrow_range(query.range);
        let mut result = PointsResult::default();
        if range.is_empty() {
            return Ok(result);
        }

        // NOTE: every match is collected before sorting, so memory grows
        // with total_matched even when limit is small.
        let mut matched: Vec<(TimestampNs, usize, usize, QueriedPoint)> = Vec::new();
        let mut seen_metrics: Vec<&str> = Vec::new();
        for (metric_order, metric) in query.metrics.iter().enumerate() {
            if seen_metrics.contains(&metric.as_str()) {
                continue;
            }
            seen_metrics.push(metric);
            let metric_name: Arc<str> = Arc::from(metric.as_str());

            let series_list = self.storage.series(metric);
            for (series_order, series) in series_list.iter().enumerate() {
                if !query.filters.matches_series(&series.tags) {
                    continue;
                }
                self.storage
                    .scan(metric, series.id, range, &mut |times, values| {
                        result.points_scanned += times.len() as u64;
                        for (i, &time_ns) in times.iter().enumerate() {
                            let value = values.get(i);
                            if !query.filters.matches_point(time_ns, value) {
                                continue;
                            }
                            matched.push((
                                time_ns,
                                metric_order,
                                series_order,
                                QueriedPoint {
                                    metric: metric_name.clone(),
                                    tags: series.tags.clone(),
                                    time_ns,
                                    value: value.to_owned(),
                                },
                            ));
                        }
                    })?;
            }
        }

        matched.sort_by_key(|(time_ns, metric_order, series_order, _)| {
            (*time_ns, *metric_order, *series_order)
        });
        if query.descending {
            matched.reverse();
        }
        result.total_matched = matched.len() as u64;
        result.points = matched
            .into_iter()
            .skip(query.offset)
            .take(query.limit)
            .map(|(_, _, _, point)| point)
            .collect();
        Ok(result)
    }
}
