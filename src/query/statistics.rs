//! Summary statistics of one metric over a range: exact percentiles,
//! sample standard deviation and variance.

use super::{QueryEngine, QueryError};
use crate::aggregate::{Accumulator, AggFn, AggValue};
use crate::model::TimeRange;
use crate::model::filter::FilterSet;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatisticsResult {
    /// Every matching point, string values included.
    pub count: u64,
    pub sum: Option<f64>,
    pub mean: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub median: Option<f64>,
    pub std_dev: Option<f64>,
    pub variance: Option<f64>,
    pub p25: Option<f64>,
    pub p75: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

const STATISTICS: [AggFn; 12] = [
    AggFn::Sum,
    AggFn::Mean,
    AggFn::Min,
    AggFn::Max,
    AggFn::Median,
    AggFn::StdDev,
    AggFn::Variance,
    AggFn::Percentile(25.0),
    AggFn::Percentile(75.0),
    AggFn::Percentile(90.0),
    AggFn::Percentile(95.0),
    AggFn::Percentile(99.0),
];

impl QueryEngine {
    pub fn statistics(
        &self,
        metric: &str,
        range: TimeRange,
        filters: &FilterSet,
    ) -> Result<StatisticsResult, QueryError> {
        let range = filters.narrow_range(range);
        let mut accumulator = Accumulator::new(&STATISTICS, None);
        if !range.is_empty() {
            for series in self.storage.series(metric) {
                if !filters.matches_series(&series.tags) {
                    continue;
                }
                self.storage
                    .scan(metric, series.id, range, &mut |times, values| {
                        if filters.has_point_filters() {
                            for (i, &time_ns) in times.iter().enumerate() {
                                let value = values.get(i);
                                if filters.matches_point(time_ns, value) {
                                    accumulator.push(series.id, time_ns, value);
                                }
                            }
                        } else {
                            accumulator.push_run(series.id, times, values);
                        }
                    })?;
            }
        }

        let count = accumulator.count();
        let values = accumulator.finish(&STATISTICS, 1);
        let number = |i: usize| match values[i] {
            AggValue::Number(v) => Some(v),
            _ => None,
        };
        Ok(StatisticsResult {
            count,
            sum: number(0),
            mean: number(1),
            min: number(2),
            max: number(3),
            median: number(4),
            std_dev: number(5),
            variance: number(6),
            p25: number(7),
            p75: number(8),
            p90: number(9),
            p95: number(10),
            p99: number(11),
        })
    }
}
