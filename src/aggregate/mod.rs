//! Aggregation of points into per-bucket or per-window results: the
//! aggregation functions, time buckets and the fill of empty buckets.
//!
//! The query engine (the Aggregate and GetStatistics RPCs) maps each point
//! of a `crate::storage` scan to a bucket with [`bucket::Bucketer`], feeds
//! it to that bucket's [`Accumulator`], calls [`Accumulator::finish`] and
//! completes the bucket sequence with [`fill::fill`]. The live-window
//! aggregator keeps one `Accumulator` per open window, caps the values it
//! keeps for percentiles, and combines partial states with
//! [`Accumulator::merge`]. Everything here is pure computation: callers
//! bring the points and own the state.

pub mod bucket;
pub mod fill;
mod increase;
mod moments;
mod quantile;
pub mod sketch;

use std::sync::Arc;

use crate::model::{ColumnSlice, SeriesId, ValueRef};

pub use bucket::{Bucketer, Granularity};
pub use fill::{FillMode, FilledBucket, fill};
pub use quantile::percentile_exact;
pub use sketch::{QuantileSketch, SKETCH_RELATIVE_ACCURACY};

use increase::CounterIncrease;
use moments::{Moments, Trend};
use quantile::QuantileValues;

/// Suggested `exact_value_cap` for live windows: past this many numeric
/// values an accumulator moves them into a [`QuantileSketch`]. At 8 bytes
/// per value, the kept values take 512 KiB at the cap, plus the spare
/// capacity of their `Vec`.
pub const DEFAULT_EXACT_VALUE_CAP: usize = 65_536;

/// Maximum number of points that [`Accumulator::push_run`] converts to f64
/// at a time. The 8 KiB buffer fits a typical 32 KiB L1 data cache.
const RUN_CHUNK: usize = 1024;

const NANOS_PER_SECOND: f64 = 1e9;

/// An aggregation function.
///
/// Numeric functions read int, double and bool values, with true as 1 and
/// false as 0, so the MEAN of a bool metric is a success rate. String
/// values count only in COUNT, RATE, FIRST and LAST. A numeric function
/// over a bucket without numeric values returns [`AggValue::None`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AggFn {
    Sum,
    Mean,
    /// Exact median, the same as `Percentile(50.0)`.
    Median,
    Min,
    Max,
    /// Number of points, string values included. Zero points give 0.
    Count,
    /// Percentile p in 0..=100 with linear interpolation between the
    /// closest ranks (see [`percentile_exact`]). A p outside that range
    /// returns [`AggValue::None`].
    Percentile(f64),
    /// Sample standard deviation (n − 1 in the denominator). One value
    /// gives 0.
    StdDev,
    /// Sample variance (n − 1 in the denominator). One value gives 0.
    Variance,
    /// Points per second of bucket width, string values included.
    Rate,
    /// Least-squares slope of value over time in value units per second.
    /// Needs two points with different times.
    Trend,
    /// Value of the earliest point. Of points with equal times, the first
    /// pushed wins.
    First,
    /// Value of the latest point. Of points with equal times, the last
    /// pushed wins.
    Last,
    /// Counter increase per series, summed over series. A drop is a
    /// counter reset, so the delta is the new value. Points of a series
    /// should arrive in ascending time order. A point older than the
    /// series' first point is still placed exactly, but one between its
    /// first and last point is left out of INCREASE.
    Increase,
}

/// Result of one aggregation function.
#[derive(Debug, Clone, PartialEq)]
pub enum AggValue {
    /// No result: no numeric values, or too few for the function.
    None,
    Number(f64),
    /// FIRST or LAST of string values.
    Text(Arc<str>),
}

/// The parts of the accumulator state that the requested functions need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tracked {
    sum: bool,
    min: bool,
    max: bool,
    moments: bool,
    trend: bool,
    quantiles: bool,
    first: bool,
    last: bool,
    increase: bool,
}

impl Tracked {
    fn for_fns(fns: &[AggFn]) -> Tracked {
        let mut tracked = Tracked::default();
        for function in fns {
            match function {
                AggFn::Sum | AggFn::Mean => tracked.sum = true,
                AggFn::Min => tracked.min = true,
                AggFn::Max => tracked.max = true,
                AggFn::Median | AggFn::Percentile(_) => tracked.quantiles = true,
                AggFn::StdDev | AggFn::Variance => tracked.moments = true,
                AggFn::Trend => tracked.trend = true,
                AggFn::First => tracked.first = true,
                AggFn::Last => tracked.last = true,
                AggFn::Increase => tracked.increase = true,
                AggFn::Count | AggFn::Rate => {}
            }
        }
        tracked
    }

    /// Reports whether any tracked state reads numeric values.
    fn reads_numbers(self) -> bool {
        self != Tracked::default()
    }

    fn covers(self, needed: Tracked) -> bool {
        (!needed.sum || self.sum)
            && (!needed.min || self.min)
            && (!needed.max || self.max)
            && (!needed.moments || self.moments)
            && (!needed.trend || self.trend)
            && (!needed.quantiles || self.quantiles)
            && (!needed.first || self.first)
            && (!needed.last || self.last)
            && (!needed.increase || self.increase)
    }
}

/// Value of a FIRST or LAST point. Text keeps its `String` so that
/// replacing it with a string of similar length reuses the allocation.
#[derive(Debug, Clone, PartialEq)]
enum SampleValue {
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    time_ns: i64,
    value: SampleValue,
}

#[derive(Debug, Clone, Copy)]
enum SampleRef<'a> {
    Number(f64),
    Text(&'a str),
}

/// Stores `value` at `time_ns` in `slot`, reusing its text buffer.
fn record(slot: &mut Option<Sample>, time_ns: i64, value: SampleRef<'_>) {
    let sample = slot.get_or_insert_with(|| Sample {
        time_ns,
        value: SampleValue::Number(0.0),
    });
    sample.time_ns = time_ns;
    match (&mut sample.value, value) {
        (SampleValue::Text(buffer), SampleRef::Text(text)) => {
            buffer.clear();
            buffer.push_str(text);
        }
        (stored, SampleRef::Text(text)) => *stored = SampleValue::Text(text.to_owned()),
        (stored, SampleRef::Number(number)) => *stored = SampleValue::Number(number),
    }
}

/// Reports whether a point at `time_ns` pushed now becomes FIRST: it must
/// be strictly earlier, so the first pushed wins a tie.
fn replaces_first(slot: &Option<Sample>, time_ns: i64) -> bool {
    slot.as_ref().is_none_or(|sample| time_ns < sample.time_ns)
}

/// Reports whether a point at `time_ns` pushed now becomes LAST: a tie
/// goes to the point pushed later.
fn replaces_last(slot: &Option<Sample>, time_ns: i64) -> bool {
    slot.as_ref().is_none_or(|sample| time_ns >= sample.time_ns)
}

fn sample_result(slot: &Option<Sample>) -> AggValue {
    match slot {
        None => AggValue::None,
        Some(Sample {
            value: SampleValue::Number(number),
            ..
        }) => AggValue::Number(*number),
        Some(Sample {
            value: SampleValue::Text(text),
            ..
        }) => AggValue::Text(Arc::from(text.as_str())),
    }
}

/// Incremental state of a set of aggregation functions over the points of
/// one bucket or window.
///
/// [`Accumulator::new`] decides which state to maintain, so a request for
/// MEAN alone keeps a sum and a count and nothing else. The functions
/// passed to [`Accumulator::finish`] must be among those given to `new`.
/// A function whose state was not kept returns [`AggValue::None`] and
/// fails a debug assertion.
///
/// Precision after [`Accumulator::merge`]:
/// - COUNT, RATE, MIN, MAX, FIRST and LAST are exact. SUM and MEAN equal a
///   single pass up to the rounding of the additions.
/// - STD_DEV, VARIANCE and TREND combine with pairwise moment updates,
///   exact in real arithmetic and as stable as one pass.
/// - MEDIAN and PERCENTILE stay exact while both sides kept every value and
///   the combined count fits the cap. Otherwise they carry the error bound
///   of [`QuantileSketch`].
/// - INCREASE is exact when each series' points in the two states cover
///   time ranges that do not overlap, as with consecutive panes or
///   disjoint scans. Otherwise it misses the delta between the two states.
///
/// Merging assumes the two states saw different points, so a point in both
/// counts twice.
#[derive(Debug, Clone)]
pub struct Accumulator {
    tracked: Tracked,
    exact_value_cap: Option<usize>,
    count: u64,
    numeric_count: u64,
    sum: f64,
    min: f64,
    max: f64,
    moments: Moments,
    trend: Trend,
    quantiles: QuantileValues,
    first: Option<Sample>,
    last: Option<Sample>,
    increase: CounterIncrease,
}

impl Accumulator {
    /// Creates an empty accumulator that keeps the state `fns` need.
    ///
    /// `exact_value_cap` limits the values kept for MEDIAN and PERCENTILE.
    /// With None every value is kept and the results are always exact, as
    /// queries need. With Some(n), the first n values are kept exactly and
    /// then moved into a mergeable [`QuantileSketch`], which bounds the
    /// memory of a live window. [`DEFAULT_EXACT_VALUE_CAP`] is the
    /// suggested n.
    pub fn new(fns: &[AggFn], exact_value_cap: Option<usize>) -> Accumulator {
        Accumulator {
            tracked: Tracked::for_fns(fns),
            exact_value_cap,
            count: 0,
            numeric_count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            moments: Moments::default(),
            trend: Trend::default(),
            quantiles: QuantileValues::default(),
            first: None,
            last: None,
            increase: CounterIncrease::default(),
        }
    }

    /// Adds one point. Points may arrive in any order and series may
    /// interleave. Only INCREASE depends on the order within a series.
    pub fn push(&mut self, series: SeriesId, time_ns: i64, value: ValueRef<'_>) {
        self.count += 1;
        match value {
            ValueRef::Str(text) => self.push_text(time_ns, text),
            number => {
                // `as_f64` is the one definition of the numeric view, with
                // booleans as 1 or 0. It returns None only for strings.
                if let Some(number) = number.as_f64() {
                    self.push_number(series, time_ns, number);
                }
            }
        }
    }

    fn push_text(&mut self, time_ns: i64, text: &str) {
        if self.tracked.first && replaces_first(&self.first, time_ns) {
            record(&mut self.first, time_ns, SampleRef::Text(text));
        }
        if self.tracked.last && replaces_last(&self.last, time_ns) {
            record(&mut self.last, time_ns, SampleRef::Text(text));
        }
    }

    fn push_number(&mut self, series: SeriesId, time_ns: i64, value: f64) {
        self.numeric_count += 1;
        let tracked = self.tracked;
        if tracked.sum {
            self.sum += value;
        }
        if tracked.min && value < self.min {
            self.min = value;
        }
        if tracked.max && value > self.max {
            self.max = value;
        }
        if tracked.moments {
            self.moments.push(value);
        }
        if tracked.trend {
            self.trend.push(time_ns, value);
        }
        if tracked.quantiles {
            self.quantiles.push(value, self.exact_value_cap);
        }
        if tracked.first && replaces_first(&self.first, time_ns) {
            record(&mut self.first, time_ns, SampleRef::Number(value));
        }
        if tracked.last && replaces_last(&self.last, time_ns) {
            record(&mut self.last, time_ns, SampleRef::Number(value));
        }
        if tracked.increase {
            self.increase.push(series, time_ns, value);
        }
    }

    /// Adds a run of one series' points with ascending times. This is the
    /// fast path: each tracked state gets one tight loop per chunk.
    ///
    /// The results match pushing the points one by one, up to
    /// floating-point rounding. Panics if the slices differ in length.
    /// Unsorted times fail a debug assertion, and in release builds they
    /// give wrong FIRST, LAST and INCREASE results.
    pub fn push_run(&mut self, series: SeriesId, times_ns: &[i64], values: ColumnSlice<'_>) {
        assert_eq!(
            times_ns.len(),
            values.len(),
            "push_run needs one timestamp per value"
        );
        debug_assert!(times_ns.is_sorted(), "push_run needs ascending timestamps");
        if times_ns.is_empty() {
            return;
        }
        self.count += times_ns.len() as u64;

        if let ColumnSlice::Str(texts) = values {
            self.push_text_run(times_ns, texts);
            return;
        }
        if !self.tracked.reads_numbers() {
            self.numeric_count += times_ns.len() as u64;
            return;
        }

        match values {
            ColumnSlice::F64(numbers) => {
                for (times, chunk) in times_ns.chunks(RUN_CHUNK).zip(numbers.chunks(RUN_CHUNK)) {
                    self.push_numbers(series, times, chunk);
                }
            }
            ColumnSlice::I64(integers) => {
                // Only the conversion paths need the buffer; zeroing it for
                // every f64 run cost more than the aggregation itself.
                let mut buffer = [0.0; RUN_CHUNK];
                for (times, chunk) in times_ns.chunks(RUN_CHUNK).zip(integers.chunks(RUN_CHUNK)) {
                    let converted = &mut buffer[..chunk.len()];
                    for (slot, &integer) in converted.iter_mut().zip(chunk) {
                        *slot = integer as f64;
                    }
                    self.push_numbers(series, times, converted);
                }
            }
            ColumnSlice::Bool(flags) => {
                let mut buffer = [0.0; RUN_CHUNK];
                for (times, chunk) in times_ns.chunks(RUN_CHUNK).zip(flags.chunks(RUN_CHUNK)) {
                    let converted = &mut buffer[..chunk.len()];
                    for (slot, &flag) in converted.iter_mut().zip(chunk) {
                        *slot = f64::from(u8::from(flag));
                    }
                    self.push_numbers(series, times, converted);
                }
            }
            ColumnSlice::Str(_) => unreachable!("string runs returned above"),
        }
    }

    /// Updates FIRST and LAST from a run of string values. Because the run
    /// is sorted, only its two ends can replace the stored points.
    fn push_text_run(&mut self, times_ns: &[i64], texts: &[Arc<str>]) {
        let last_index = times_ns.len() - 1;
        self.push_text(times_ns[0], &texts[0]);
        if last_index > 0 && self.tracked.last && replaces_last(&self.last, times_ns[last_index]) {
            record(
                &mut self.last,
                times_ns[last_index],
                SampleRef::Text(&texts[last_index]),
            );
        }
    }

    /// Adds a sorted chunk of numeric points, one slice pass per tracked
    /// state.
    fn push_numbers(&mut self, series: SeriesId, times_ns: &[i64], values: &[f64]) {
        self.numeric_count += values.len() as u64;
        let tracked = self.tracked;
        if tracked.sum {
            self.sum += moments::sum(values);
        }
        if tracked.min {
            self.min = self.min.min(moments::min(values));
        }
        if tracked.max {
            self.max = self.max.max(moments::max(values));
        }
        if tracked.moments {
            self.moments.merge(&Moments::of_slice(values));
        }
        if tracked.trend {
            self.trend.push_run(times_ns, values);
        }
        if tracked.quantiles {
            self.quantiles.extend(values, self.exact_value_cap);
        }

        let last_index = values.len() - 1;
        if tracked.first && replaces_first(&self.first, times_ns[0]) {
            record(&mut self.first, times_ns[0], SampleRef::Number(values[0]));
        }
        if tracked.last && replaces_last(&self.last, times_ns[last_index]) {
            record(
                &mut self.last,
                times_ns[last_index],
                SampleRef::Number(values[last_index]),
            );
        }
        if tracked.increase {
            self.increase.push_run(series, times_ns, values);
        }
    }

    /// Reports whether [`Accumulator::push_summary`] can stand in for the
    /// points: only COUNT, SUM, MEAN, MIN, MAX and RATE are tracked.
    pub fn accepts_summaries(&self) -> bool {
        let t = self.tracked;
        !(t.moments || t.trend || t.quantiles || t.first || t.last || t.increase)
    }

    /// Adds `count` numeric points known only by their sum, minimum and
    /// maximum, such as a block chunk's index entry. The caller checks
    /// [`Accumulator::accepts_summaries`] first.
    pub fn push_summary(&mut self, count: u64, sum: f64, min: f64, max: f64) {
        debug_assert!(self.accepts_summaries());
        if count == 0 {
            return;
        }
        self.count += count;
        self.numeric_count += count;
        self.sum += sum;
        self.min = self.min.min(min);
        self.max = self.max.max(max);
    }

    /// Number of points pushed, string values included.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Reports whether MEDIAN and PERCENTILE results are exact. They stop
    /// being exact once the kept values pass the exact value cap and move
    /// into a sketch.
    pub fn quantiles_are_exact(&self) -> bool {
        !self.quantiles.is_sketch()
    }

    /// Adds the partial state `other`, which must have been created for the
    /// same functions. `other` counts as pushed after `self`, which decides
    /// FIRST and LAST ties. The type documentation lists which results stay
    /// exact. Quantile values follow this accumulator's cap.
    pub fn merge(&mut self, other: &Accumulator) {
        debug_assert_eq!(
            self.tracked, other.tracked,
            "merge needs accumulators created for the same functions"
        );
        self.count += other.count;
        self.numeric_count += other.numeric_count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.moments.merge(&other.moments);
        self.trend.merge(&other.trend);
        if self.tracked.quantiles {
            self.quantiles.merge(&other.quantiles, self.exact_value_cap);
        }
        if let Some(sample) = &other.first
            && replaces_first(&self.first, sample.time_ns)
        {
            self.first = Some(sample.clone());
        }
        if let Some(sample) = &other.last
            && replaces_last(&self.last, sample.time_ns)
        {
            self.last = Some(sample.clone());
        }
        self.increase.merge(&other.increase);
    }

    /// Computes one result per function, in order. `width_ns` is the bucket
    /// or window width, used by RATE. The state stays valid for more
    /// pushes and merges, but kept percentile values are reordered.
    pub fn finish(&mut self, fns: &[AggFn], width_ns: i64) -> Vec<AggValue> {
        let ps: Vec<f64> = fns
            .iter()
            .filter_map(|&function| quantile_of(function))
            .collect();
        if ps.len() < 2 || !self.tracked.quantiles || self.quantiles.is_sketch() {
            return fns
                .iter()
                .map(|&function| self.finish_one(function, width_ns))
                .collect();
        }
        // Several exact percentiles share their selections.
        let mut percentiles = self.quantiles.percentiles(&ps).into_iter();
        fns.iter()
            .map(|&function| match quantile_of(function) {
                Some(_) => percentiles
                    .next()
                    .flatten()
                    .map_or(AggValue::None, AggValue::Number),
                None => self.finish_one(function, width_ns),
            })
            .collect()
    }

    /// Reserves room for the values that merging `others` adds to those
    /// kept for MEDIAN and PERCENTILE, so the merges copy each value once
    /// instead of regrowing the vector.
    pub fn reserve_for_merge(&mut self, others: &[Accumulator]) {
        if !self.tracked.quantiles {
            return;
        }
        let additional: usize = others.iter().map(|other| other.quantiles.exact_len()).sum();
        if self
            .exact_value_cap
            .is_none_or(|cap| self.quantiles.exact_len() + additional <= cap)
        {
            self.quantiles.reserve(additional);
        }
    }

    fn finish_one(&mut self, function: AggFn, width_ns: i64) -> AggValue {
        let tracked = self.tracked.covers(Tracked::for_fns(&[function]));
        debug_assert!(
            tracked,
            "finish got {function:?}, which was not passed to Accumulator::new"
        );
        if !tracked {
            return AggValue::None;
        }

        let has_numbers = self.numeric_count > 0;
        let number = |value: f64| {
            if has_numbers {
                AggValue::Number(value)
            } else {
                AggValue::None
            }
        };
        let optional = |value: Option<f64>| value.map_or(AggValue::None, AggValue::Number);

        match function {
            AggFn::Count => AggValue::Number(self.count as f64),
            AggFn::Rate if width_ns > 0 => {
                AggValue::Number(self.count as f64 / (width_ns as f64 / NANOS_PER_SECOND))
            }
            AggFn::Rate => AggValue::None,
            AggFn::Sum => number(self.sum),
            AggFn::Mean => number(self.sum / self.numeric_count as f64),
            AggFn::Min => number(self.min),
            AggFn::Max => number(self.max),
            AggFn::Median => optional(self.quantiles.percentile(50.0)),
            AggFn::Percentile(p) => optional(self.quantiles.percentile(p)),
            AggFn::Variance => optional(self.moments.sample_variance()),
            AggFn::StdDev => optional(self.moments.sample_variance().map(f64::sqrt)),
            AggFn::Trend => optional(self.trend.slope()),
            AggFn::First => sample_result(&self.first),
            AggFn::Last => sample_result(&self.last),
            AggFn::Increase => optional(self.increase.total()),
        }
    }
}

/// Returns the percentile that MEDIAN or PERCENTILE computes, or None for
/// other functions.
fn quantile_of(function: AggFn) -> Option<f64> {
    match function {
        AggFn::Median => Some(50.0),
        AggFn::Percentile(p) => Some(p),
        _ => None,
    }
}

#[cfg(test)]
mod summary_tests {
    use super::*;

    #[test]
    fn summary_matches_pushed_points() {
        let fns = [
            AggFn::Count,
            AggFn::Sum,
            AggFn::Mean,
            AggFn::Min,
            AggFn::Max,
            AggFn::Rate,
        ];
        let times = [1, 2, 3, 4];
        let values = [4.0, -1.0, 2.5, 8.0];

        let mut by_points = Accumulator::new(&fns, None);
        by_points.push_run(SeriesId(1), &times, ColumnSlice::F64(&values));
        let mut by_summary = Accumulator::new(&fns, None);
        assert!(by_summary.accepts_summaries());
        by_summary.push_summary(4, 13.5, -1.0, 8.0);

        assert_eq!(by_summary.count(), by_points.count());
        assert_eq!(
            by_summary.finish(&fns, 1_000_000_000),
            by_points.finish(&fns, 1_000_000_000)
        );
    }

    #[test]
    fn several_percentiles_match_one_at_a_time() {
        let fns = [
            AggFn::Mean,
            AggFn::Percentile(99.0),
            AggFn::Median,
            AggFn::Percentile(25.0),
            AggFn::Percentile(101.0),
            AggFn::Percentile(90.0),
        ];
        let times: Vec<i64> = (0..1001).collect();
        let values: Vec<f64> = (0..1001).map(|i| ((i * 37) % 101) as f64 / 4.0).collect();
        let mut together = Accumulator::new(&fns, None);
        together.push_run(SeriesId(1), &times, ColumnSlice::F64(&values));
        let actual = together.finish(&fns, 1);

        for (index, &function) in fns.iter().enumerate() {
            let mut alone = Accumulator::new(&[function], None);
            alone.push_run(SeriesId(1), &times, ColumnSlice::F64(&values));
            assert_eq!(
                actual[index],
                alone.finish(&[function], 1)[0],
                "{function:?}"
            );
        }
    }

    #[test]
    fn summaries_refused_for_order_statistics() {
        for function in [
            AggFn::Median,
            AggFn::StdDev,
            AggFn::First,
            AggFn::Increase,
            AggFn::Trend,
        ] {
            assert!(
                !Accumulator::new(&[AggFn::Sum, function], None).accepts_summaries(),
                "{function:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Column;

    const SECOND: i64 = 1_000_000_000;
    /// 2023-11-14 22:13:20 UTC, so times have realistic magnitudes.
    const BASE_NS: i64 = 1_700_000_000 * SECOND;
    const SERIES: SeriesId = SeriesId(1);
    const OTHER_SERIES: SeriesId = SeriesId(2);

    fn f64s(values: &[f64]) -> Column {
        Column::F64(values.to_vec())
    }

    fn i64s(values: &[i64]) -> Column {
        Column::I64(values.to_vec())
    }

    fn bools(values: &[bool]) -> Column {
        Column::Bool(values.to_vec())
    }

    fn strings(values: &[&str]) -> Column {
        Column::Str(values.iter().map(|&text| Arc::from(text)).collect())
    }

    fn number(value: f64) -> AggValue {
        AggValue::Number(value)
    }

    fn text(value: &str) -> AggValue {
        AggValue::Text(Arc::from(value))
    }

    /// Times of a run of `len` points, one second apart from `BASE_NS`.
    fn times(len: usize) -> Vec<i64> {
        (0..len as i64).map(|i| BASE_NS + i * SECOND).collect()
    }

    /// Result of `function` over `column` fed point by point.
    fn by_points(function: AggFn, column: &Column, width_ns: i64) -> AggValue {
        let fns = [function];
        let mut accumulator = Accumulator::new(&fns, None);
        for (index, time) in times(column.len()).into_iter().enumerate() {
            accumulator.push(SERIES, time, column.get(index));
        }
        accumulator.finish(&fns, width_ns).remove(0)
    }

    /// Result of `function` over `column` fed as one run.
    fn by_run(function: AggFn, column: &Column, width_ns: i64) -> AggValue {
        let fns = [function];
        let mut accumulator = Accumulator::new(&fns, None);
        accumulator.push_run(SERIES, &times(column.len()), column.as_slice());
        accumulator.finish(&fns, width_ns).remove(0)
    }

    /// Compares results with a relative tolerance of 1e-12 for numbers.
    fn assert_same(actual: &AggValue, expected: &AggValue, context: &str) {
        match (actual, expected) {
            (AggValue::Number(a), AggValue::Number(e)) if a.is_finite() && e.is_finite() => {
                assert!(
                    (a - e).abs() <= 1e-12 * e.abs().max(1.0),
                    "{context}: expected {e}, got {a}"
                );
            }
            _ => assert_eq!(actual, expected, "{context}"),
        }
    }

    #[test]
    fn functions_table() {
        let inf = f64::INFINITY;
        let one_to_ten: Vec<f64> = (1..=10).map(f64::from).collect();
        let width = 2 * SECOND;
        // (function, values at BASE_NS + i seconds, expected with a 2 s width)
        let cases: Vec<(AggFn, Column, AggValue)> = vec![
            (AggFn::Sum, f64s(&[1.0, 2.0, 3.5]), number(6.5)),
            (AggFn::Sum, i64s(&[1, 2, 3]), number(6.0)),
            (AggFn::Sum, bools(&[true, false, true, true]), number(3.0)),
            (AggFn::Sum, f64s(&[1.0, inf]), number(inf)),
            (AggFn::Sum, strings(&["a", "b"]), AggValue::None),
            (AggFn::Sum, f64s(&[]), AggValue::None),
            (AggFn::Mean, f64s(&[1.0, 2.0, 3.0, 4.0]), number(2.5)),
            (AggFn::Mean, bools(&[true, false, true, true]), number(0.75)),
            (AggFn::Mean, f64s(&[2.0, inf]), number(inf)),
            (AggFn::Mean, strings(&["a"]), AggValue::None),
            (AggFn::Min, f64s(&[3.0, -1.0, 2.0]), number(-1.0)),
            (AggFn::Min, i64s(&[5, -7]), number(-7.0)),
            (AggFn::Min, f64s(&[3.0, -inf]), number(-inf)),
            (AggFn::Min, strings(&["a"]), AggValue::None),
            (AggFn::Max, f64s(&[3.0, -1.0, 2.0]), number(3.0)),
            (AggFn::Max, f64s(&[1.0, inf]), number(inf)),
            (AggFn::Max, bools(&[false, false]), number(0.0)),
            (AggFn::Max, f64s(&[]), AggValue::None),
            (AggFn::Count, f64s(&[]), number(0.0)),
            (AggFn::Count, f64s(&[1.0, 2.0]), number(2.0)),
            (AggFn::Count, strings(&["a", "b", "c"]), number(3.0)),
            (AggFn::Median, f64s(&[5.0, 1.0, 3.0]), number(3.0)),
            (AggFn::Median, i64s(&[4, 1, 3, 2]), number(2.5)),
            (AggFn::Median, f64s(&[inf, inf]), number(inf)),
            (AggFn::Median, strings(&["a"]), AggValue::None),
            // r = 0.9 · 9 = 8.1, between 9 and 10.
            (AggFn::Percentile(90.0), f64s(&one_to_ten), number(9.1)),
            (AggFn::Percentile(0.0), f64s(&one_to_ten), number(1.0)),
            (AggFn::Percentile(100.0), f64s(&one_to_ten), number(10.0)),
            (
                AggFn::Percentile(25.0),
                f64s(&[1.0, 2.0, 3.0, 4.0]),
                number(1.75),
            ),
            (AggFn::Percentile(100.5), f64s(&one_to_ten), AggValue::None),
            (AggFn::Percentile(-1.0), f64s(&one_to_ten), AggValue::None),
            // Mean 2.5, squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5.
            (
                AggFn::Variance,
                f64s(&[1.0, 2.0, 3.0, 4.0]),
                number(5.0 / 3.0),
            ),
            (
                AggFn::StdDev,
                f64s(&[1.0, 2.0, 3.0, 4.0]),
                number((5.0f64 / 3.0).sqrt()),
            ),
            // Mean 5, squared deviations 9 + 1 + 1 + 1 + 0 + 0 + 4 + 16 = 32.
            (
                AggFn::Variance,
                i64s(&[2, 4, 4, 4, 5, 5, 7, 9]),
                number(32.0 / 7.0),
            ),
            // Mean 0.75, squared deviations 0.0625 · 3 + 0.5625 = 0.75.
            (
                AggFn::Variance,
                bools(&[true, false, true, true]),
                number(0.25),
            ),
            (AggFn::Variance, f64s(&[7.0]), number(0.0)),
            (AggFn::StdDev, f64s(&[7.0]), number(0.0)),
            (AggFn::StdDev, f64s(&[inf]), number(0.0)),
            (AggFn::StdDev, f64s(&[]), AggValue::None),
            (AggFn::Variance, strings(&["a", "b"]), AggValue::None),
            // 6 points in 2 s.
            (AggFn::Rate, f64s(&[1.0; 6]), number(3.0)),
            (AggFn::Rate, strings(&["a", "b"]), number(1.0)),
            (AggFn::Rate, f64s(&[]), number(0.0)),
            // One point per second.
            (AggFn::Trend, f64s(&[1.0, 3.0, 5.0]), number(2.0)),
            (AggFn::Trend, i64s(&[10, 7, 4, 1]), number(-3.0)),
            (AggFn::Trend, bools(&[false, true]), number(1.0)),
            (AggFn::Trend, f64s(&[5.0]), AggValue::None),
            (AggFn::Trend, strings(&["a", "b"]), AggValue::None),
            (AggFn::First, f64s(&[4.0, 5.0, 6.0]), number(4.0)),
            (AggFn::Last, f64s(&[4.0, 5.0, 6.0]), number(6.0)),
            (AggFn::First, strings(&["x", "y", "z"]), text("x")),
            (AggFn::Last, strings(&["x", "y", "z"]), text("z")),
            (AggFn::First, bools(&[true, false]), number(1.0)),
            (AggFn::Last, f64s(&[]), AggValue::None),
            // 5 + 3 (reset to 3) + 5.
            (AggFn::Increase, f64s(&[10.0, 15.0, 3.0, 8.0]), number(13.0)),
            (AggFn::Increase, i64s(&[7, 7, 7]), number(0.0)),
            // 0 → 1 adds 1, 1 → 0 is a reset to 0, 0 → 1 adds 1.
            (
                AggFn::Increase,
                bools(&[false, true, false, true]),
                number(2.0),
            ),
            (AggFn::Increase, f64s(&[42.0]), number(0.0)),
            (AggFn::Increase, strings(&["a", "b"]), AggValue::None),
            (AggFn::Increase, f64s(&[]), AggValue::None),
        ];

        for (function, column, expected) in cases {
            let context = format!("{function:?} of {column:?}");
            assert_same(
                &by_points(function, &column, width),
                &expected,
                &format!("{context} by points"),
            );
            assert_same(
                &by_run(function, &column, width),
                &expected,
                &format!("{context} by run"),
            );
        }
    }

    #[test]
    fn rate_without_width_is_none() {
        let column = f64s(&[1.0, 2.0]);
        assert_eq!(by_points(AggFn::Rate, &column, 0), AggValue::None);
        assert_eq!(by_points(AggFn::Rate, &column, -SECOND), AggValue::None);
    }

    #[test]
    fn opposite_infinities_give_nan() {
        let column = f64s(&[f64::INFINITY, f64::NEG_INFINITY]);
        for function in [AggFn::Sum, AggFn::Mean, AggFn::Median] {
            let AggValue::Number(result) = by_run(function, &column, SECOND) else {
                panic!("{function:?} returned no number");
            };
            assert!(result.is_nan(), "{function:?} returned {result}");
        }
    }

    /// Variance by E[x²] − E[x]², the formula the accumulator avoids.
    fn naive_variance(values: &[f64]) -> f64 {
        let n = values.len() as f64;
        let sum: f64 = values.iter().sum();
        let sum_of_squares: f64 = values.iter().map(|x| x * x).sum();
        (sum_of_squares - sum * sum / n) / (n - 1.0)
    }

    #[test]
    fn variance_stable_with_large_offset() {
        // Mean 1e9 + 10, deviations −6, −3, 3, 6, squares summing to 90,
        // so the sample variance is 90 / 3 = 30.
        let values = [1e9 + 4.0, 1e9 + 7.0, 1e9 + 13.0, 1e9 + 16.0];
        let integers = [1_000_000_004, 1_000_000_007, 1_000_000_013, 1_000_000_016];
        assert!(
            (naive_variance(&values) - 30.0).abs() > 1.0,
            "the naive formula should fail here"
        );

        for column in [f64s(&values), i64s(&integers)] {
            for (path, result) in [
                ("points", by_points(AggFn::Variance, &column, SECOND)),
                ("run", by_run(AggFn::Variance, &column, SECOND)),
            ] {
                assert_same(
                    &result,
                    &number(30.0),
                    &format!("variance by {path} of {column:?}"),
                );
            }
            assert_same(
                &by_run(AggFn::StdDev, &column, SECOND),
                &number(30f64.sqrt()),
                "std dev",
            );
        }
    }

    #[test]
    fn trend_stable_with_large_offsets() {
        // Values near 1e9 rising 0.5 per second at nanosecond timestamps
        // near 1.7e18.
        let values: Vec<f64> = (0..100).map(|i| 1e9 + 0.5 * i as f64).collect();
        let column = f64s(&values);
        assert_same(
            &by_points(AggFn::Trend, &column, SECOND),
            &number(0.5),
            "trend by points",
        );
        assert_same(
            &by_run(AggFn::Trend, &column, SECOND),
            &number(0.5),
            "trend by run",
        );
    }

    #[test]
    fn trend_with_equal_times_is_none() {
        let fns = [AggFn::Trend];
        let mut accumulator = Accumulator::new(&fns, None);
        accumulator.push(SERIES, BASE_NS, ValueRef::F64(1.0));
        accumulator.push(OTHER_SERIES, BASE_NS, ValueRef::F64(5.0));
        assert_eq!(accumulator.finish(&fns, SECOND), vec![AggValue::None]);
    }

    #[test]
    fn first_last_by_timestamp() {
        let fns = [AggFn::First, AggFn::Last];
        let mut accumulator = Accumulator::new(&fns, None);
        for (time, value) in [(5, 50.0), (1, 10.0), (9, 90.0), (3, 30.0)] {
            accumulator.push(SERIES, time, ValueRef::F64(value));
        }
        assert_eq!(
            accumulator.finish(&fns, SECOND),
            vec![number(10.0), number(90.0)]
        );
    }

    #[test]
    fn first_last_ties_follow_push_order() {
        let fns = [AggFn::First, AggFn::Last];
        let mut accumulator = Accumulator::new(&fns, None);
        accumulator.push(SERIES, 7, ValueRef::Str("early"));
        accumulator.push(OTHER_SERIES, 7, ValueRef::Str("late"));
        assert_eq!(
            accumulator.finish(&fns, SECOND),
            vec![text("early"), text("late")]
        );

        let mut numbers = Accumulator::new(&fns, None);
        numbers.push_run(SERIES, &[7, 7], Column::F64(vec![1.0, 2.0]).as_slice());
        numbers.push_run(OTHER_SERIES, &[7], Column::F64(vec![3.0]).as_slice());
        assert_eq!(numbers.finish(&fns, SECOND), vec![number(1.0), number(3.0)]);
    }

    #[test]
    fn first_last_mixed_kinds() {
        let fns = [AggFn::First, AggFn::Last, AggFn::Count, AggFn::Sum];
        let mut accumulator = Accumulator::new(&fns, None);
        accumulator.push(SERIES, 2, ValueRef::I64(4));
        accumulator.push(OTHER_SERIES, 1, ValueRef::Str("text first"));
        accumulator.push(OTHER_SERIES, 3, ValueRef::Str("text last"));
        assert_eq!(
            accumulator.finish(&fns, SECOND),
            vec![
                text("text first"),
                text("text last"),
                number(3.0),
                number(4.0)
            ]
        );
    }

    #[test]
    fn increase_sums_interleaved_series() {
        let fns = [AggFn::Increase];
        let mut accumulator = Accumulator::new(&fns, None);
        // Series 1: 10, 15, 3 (reset), 8 gives 13. Series 2: 100, 110 gives 10.
        let points = [
            (SERIES, 1, 10.0),
            (OTHER_SERIES, 1, 100.0),
            (SERIES, 2, 15.0),
            (SERIES, 3, 3.0),
            (OTHER_SERIES, 2, 110.0),
            (SERIES, 4, 8.0),
        ];
        for (series, time, value) in points {
            accumulator.push(series, time, ValueRef::F64(value));
        }
        assert_eq!(accumulator.finish(&fns, SECOND), vec![number(23.0)]);
    }

    const ALL_FUNCTIONS: [AggFn; 15] = [
        AggFn::Sum,
        AggFn::Mean,
        AggFn::Median,
        AggFn::Min,
        AggFn::Max,
        AggFn::Count,
        AggFn::Percentile(90.0),
        AggFn::StdDev,
        AggFn::Variance,
        AggFn::Rate,
        AggFn::Trend,
        AggFn::First,
        AggFn::Last,
        AggFn::Increase,
        AggFn::Percentile(1.0),
    ];

    /// Returns a sawtooth counter with resets, long enough to cross chunk
    /// borders.
    fn sawtooth(len: usize) -> Vec<f64> {
        (0..len)
            .map(|i| ((i * 7) % 500) as f64 + (i / 500) as f64 * 0.25)
            .collect()
    }

    #[test]
    fn run_matches_points_across_chunks() {
        let len = 2 * RUN_CHUNK + 123;
        let values = sawtooth(len);
        let integers: Vec<i64> = values.iter().map(|&value| value as i64).collect();
        for column in [Column::F64(values), Column::I64(integers)] {
            let mut pointwise = Accumulator::new(&ALL_FUNCTIONS, None);
            for (index, time) in times(len).into_iter().enumerate() {
                pointwise.push(SERIES, time, column.get(index));
            }
            let mut runwise = Accumulator::new(&ALL_FUNCTIONS, None);
            runwise.push_run(SERIES, &times(len), column.as_slice());

            let expected = pointwise.finish(&ALL_FUNCTIONS, 60 * SECOND);
            let actual = runwise.finish(&ALL_FUNCTIONS, 60 * SECOND);
            for ((function, actual), expected) in ALL_FUNCTIONS.iter().zip(&actual).zip(&expected) {
                assert_same(
                    actual,
                    expected,
                    &format!("{function:?} of {:?}", column.kind()),
                );
            }
        }
    }

    #[test]
    fn merge_of_split_matches_whole() {
        let len = 3000;
        let values = sawtooth(len);
        let all_times = times(len);
        let mut whole = Accumulator::new(&ALL_FUNCTIONS, None);
        whole.push_run(SERIES, &all_times, ColumnSlice::F64(&values));

        for split in [0, 1, 999, len] {
            let mut left = Accumulator::new(&ALL_FUNCTIONS, None);
            left.push_run(
                SERIES,
                &all_times[..split],
                ColumnSlice::F64(&values[..split]),
            );
            let mut right = Accumulator::new(&ALL_FUNCTIONS, None);
            right.push_run(
                SERIES,
                &all_times[split..],
                ColumnSlice::F64(&values[split..]),
            );
            left.merge(&right);

            assert_eq!(left.count(), whole.count(), "count at split {split}");
            let expected = whole.finish(&ALL_FUNCTIONS, 60 * SECOND);
            let actual = left.finish(&ALL_FUNCTIONS, 60 * SECOND);
            for ((function, actual), expected) in ALL_FUNCTIONS.iter().zip(&actual).zip(&expected) {
                assert_same(actual, expected, &format!("{function:?} at split {split}"));
            }
        }
    }

    #[test]
    fn merge_later_state_first_keeps_order() {
        let fns = [AggFn::First, AggFn::Last, AggFn::Increase];
        let mut late = Accumulator::new(&fns, None);
        late.push_run(SERIES, &[30, 40], ColumnSlice::F64(&[7.0, 9.0]));
        let mut early = Accumulator::new(&fns, None);
        early.push_run(SERIES, &[10, 20], ColumnSlice::F64(&[1.0, 5.0]));
        late.merge(&early);
        // 1 → 5 → 7 → 9.
        assert_eq!(
            late.finish(&fns, SECOND),
            vec![number(1.0), number(9.0), number(8.0)]
        );
    }

    #[test]
    fn merge_ties_prefer_self_for_first() {
        let fns = [AggFn::First, AggFn::Last];
        let mut left = Accumulator::new(&fns, None);
        left.push(SERIES, 5, ValueRef::Str("left"));
        let mut right = Accumulator::new(&fns, None);
        right.push(OTHER_SERIES, 5, ValueRef::Str("right"));
        left.merge(&right);
        assert_eq!(left.finish(&fns, SECOND), vec![text("left"), text("right")]);
    }

    #[test]
    fn live_cap_keeps_small_windows_exact() {
        let fns = [AggFn::Median, AggFn::Percentile(25.0)];
        let mut accumulator = Accumulator::new(&fns, Some(4));
        accumulator.push_run(SERIES, &times(4), ColumnSlice::F64(&[4.0, 1.0, 3.0, 2.0]));
        // r = 1.5 for the median and 0.75 for p25.
        assert_eq!(
            accumulator.finish(&fns, SECOND),
            vec![number(2.5), number(1.75)]
        );
        assert!(accumulator.quantiles_are_exact());

        accumulator.push(SERIES, BASE_NS + 10 * SECOND, ValueRef::F64(100.0));
        assert!(!accumulator.quantiles_are_exact());
    }

    #[test]
    fn live_cap_sketch_within_bound() {
        let fns = [
            AggFn::Median,
            AggFn::Percentile(99.0),
            AggFn::Percentile(0.5),
            AggFn::Count,
        ];
        let len = 200_000;
        // Values from 1 to about 2.2e4 on a quadratic curve, shuffled by a
        // stride coprime to the length.
        let values: Vec<f64> = (0..len)
            .map(|i| 1.0 + ((i * 7919) % len) as f64 / 1350.0)
            .map(|x| x * x)
            .collect();
        let mut accumulator = Accumulator::new(&fns, Some(DEFAULT_EXACT_VALUE_CAP));
        for (chunk_times, chunk) in times(len).chunks(5000).zip(values.chunks(5000)) {
            // Each run is sorted by time, but the values are not.
            accumulator.push_run(SERIES, chunk_times, ColumnSlice::F64(chunk));
        }
        assert!(!accumulator.quantiles_are_exact());

        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let results = accumulator.finish(&fns, SECOND);
        for (index, p) in [(0, 50.0), (1, 99.0), (2, 0.5)] {
            let rank = (p * (len - 1) as f64 / 100.0).floor() as usize;
            let exact = sorted[rank];
            let AggValue::Number(estimate) = results[index] else {
                panic!("p{p} returned no number");
            };
            assert!(
                (estimate - exact).abs() <= SKETCH_RELATIVE_ACCURACY * exact.abs(),
                "p{p}: estimate {estimate}, exact {exact}"
            );
        }
        assert_eq!(results[3], number(len as f64));
    }

    #[test]
    fn merge_of_live_windows_switches_to_sketch() {
        let fns = [AggFn::Median];
        let mut left = Accumulator::new(&fns, Some(3));
        left.push_run(SERIES, &times(2), ColumnSlice::F64(&[1.0, 2.0]));
        let mut right = Accumulator::new(&fns, Some(3));
        right.push_run(SERIES, &times(2), ColumnSlice::F64(&[3.0, 4.0]));
        left.merge(&right);

        assert!(!left.quantiles_are_exact());
        let AggValue::Number(median) = left.finish(&fns, SECOND)[0] else {
            panic!("median returned no number");
        };
        // The sketch estimates rank ⌊0.5 · 3⌋ = 1, the value 2.
        assert!((median - 2.0).abs() <= 0.02, "median {median}");
    }

    #[test]
    fn count_only_tracks_nothing_else() {
        let fns = [AggFn::Count, AggFn::Rate];
        let mut accumulator = Accumulator::new(&fns, None);
        assert_eq!(accumulator.tracked, Tracked::default());
        accumulator.push_run(SERIES, &times(10), ColumnSlice::F64(&[1.0; 10]));
        accumulator.push(SERIES, BASE_NS + 20 * SECOND, ValueRef::Bool(true));
        assert_eq!(accumulator.count(), 11);
        assert_eq!(
            accumulator.finish(&fns, 11 * SECOND),
            vec![number(11.0), number(1.0)]
        );
    }

    #[test]
    fn finish_twice_gives_same_results() {
        let fns = [AggFn::Median, AggFn::Percentile(10.0), AggFn::Max];
        let mut accumulator = Accumulator::new(&fns, None);
        accumulator.push_run(
            SERIES,
            &times(5),
            ColumnSlice::F64(&[9.0, 2.0, 7.0, 4.0, 5.0]),
        );
        let first = accumulator.finish(&fns, SECOND);
        let second = accumulator.finish(&fns, SECOND);
        assert_eq!(first, second);
        // r = 0.4 between 2 and 4.
        assert_same(&first[1], &number(2.8), "p10");
    }

    #[test]
    #[should_panic(expected = "one timestamp per value")]
    fn push_run_length_mismatch_panics() {
        let mut accumulator = Accumulator::new(&[AggFn::Count], None);
        accumulator.push_run(SERIES, &[1, 2], ColumnSlice::F64(&[1.0]));
    }

    #[test]
    fn tracked_state_per_function() {
        let cases = [
            (
                AggFn::Mean,
                Tracked {
                    sum: true,
                    ..Tracked::default()
                },
            ),
            (
                AggFn::Percentile(5.0),
                Tracked {
                    quantiles: true,
                    ..Tracked::default()
                },
            ),
            (
                AggFn::StdDev,
                Tracked {
                    moments: true,
                    ..Tracked::default()
                },
            ),
            (AggFn::Rate, Tracked::default()),
        ];
        for (function, expected) in cases {
            assert_eq!(Tracked::for_fns(&[function]), expected, "{function:?}");
        }
    }
}
