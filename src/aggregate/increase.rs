//! INCREASE: the growth of monotonic counters inside a bucket, summed over
//! series.
//!
//! Within one series, each point adds its delta from the previous point in
//! time order. A value below the previous one is a counter reset, so the
//! counter restarted from zero and the delta is the new value itself.
//! Counters are assumed non-negative.
//!
//! Arrival order: points of a series are expected in ascending time order,
//! though series may interleave. A point older than the series' first
//! point is prepended exactly. A point that falls between the series'
//! first and last points cannot be placed without the points around it,
//! so INCREASE leaves it out. Other functions still count it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

use crate::model::SeriesId;

/// Counter delta from `previous` to `current` with reset detection.
/// Equal values give 0, also for two equal infinities.
fn counter_delta(previous: f64, current: f64) -> f64 {
    if current > previous {
        current - previous
    } else if current < previous {
        current
    } else {
        0.0
    }
}

/// Sum of the deltas between consecutive values.
fn run_increase(values: &[f64]) -> f64 {
    values
        .windows(2)
        .map(|pair| counter_delta(pair[0], pair[1]))
        .sum()
}

/// Hasher for `SeriesId` keys. Series ids are assigned by the storage
/// engine, not chosen by clients, so a multiplicative (Fibonacci) hash is
/// enough and much cheaper than SipHash.
#[derive(Default)]
struct SeriesIdHasher(u64);

/// 2^64 divided by the golden ratio, rounded to an odd number.
const FIBONACCI_MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for SeriesIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(FIBONACCI_MULTIPLIER);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0 ^ value).wrapping_mul(FIBONACCI_MULTIPLIER);
    }
}

type SeriesMap<V> = HashMap<SeriesId, V, BuildHasherDefault<SeriesIdHasher>>;

/// The earliest and latest point of one series seen so far.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SeriesEnds {
    first_time_ns: i64,
    first_value: f64,
    last_time_ns: i64,
    last_value: f64,
}

/// State of INCREASE: the summed deltas and the end points of every series,
/// which [`CounterIncrease::merge`] needs to join partial states.
#[derive(Debug, Clone, Default)]
pub(super) struct CounterIncrease {
    total: f64,
    series: SeriesMap<SeriesEnds>,
}

impl CounterIncrease {
    pub fn push(&mut self, series: SeriesId, time_ns: i64, value: f64) {
        match self.series.entry(series) {
            Entry::Vacant(entry) => {
                entry.insert(SeriesEnds {
                    first_time_ns: time_ns,
                    first_value: value,
                    last_time_ns: time_ns,
                    last_value: value,
                });
            }
            Entry::Occupied(mut entry) => {
                self.total += add_point(entry.get_mut(), time_ns, value);
            }
        }
    }

    /// Adds points of one series in ascending time order.
    pub fn push_run(&mut self, series: SeriesId, times_ns: &[i64], values: &[f64]) {
        debug_assert_eq!(times_ns.len(), values.len());
        let (Some(&first_time_ns), Some(&last_time_ns)) = (times_ns.first(), times_ns.last())
        else {
            return;
        };
        let (first_value, last_value) = (values[0], values[values.len() - 1]);

        match self.series.entry(series) {
            Entry::Vacant(entry) => {
                entry.insert(SeriesEnds {
                    first_time_ns,
                    first_value,
                    last_time_ns,
                    last_value,
                });
                self.total += run_increase(values);
            }
            Entry::Occupied(mut entry) => {
                let ends = entry.get_mut();
                if first_time_ns >= ends.last_time_ns {
                    self.total +=
                        counter_delta(ends.last_value, first_value) + run_increase(values);
                    ends.last_time_ns = last_time_ns;
                    ends.last_value = last_value;
                } else if last_time_ns < ends.first_time_ns {
                    self.total +=
                        run_increase(values) + counter_delta(last_value, ends.first_value);
                    ends.first_time_ns = first_time_ns;
                    ends.first_value = first_value;
                } else {
                    // The run overlaps what this series has seen, so fall
                    // back to the point rules.
                    for (&time_ns, &value) in times_ns.iter().zip(values) {
                        self.total += add_point(ends, time_ns, value);
                    }
                }
            }
        }
    }

    /// Combines two partial states, treating `other` as pushed after
    /// `self`.
    ///
    /// Exact when, for every series present in both, the two states cover
    /// time ranges that do not overlap (a shared boundary timestamp is
    /// fine), as with consecutive panes of a hopping window or scans of
    /// disjoint time ranges. When a series' ranges overlap, the deltas
    /// inside each state are kept and the delta between the two states is
    /// left out, because the order of their points is unknown.
    pub fn merge(&mut self, other: &CounterIncrease) {
        self.total += other.total;
        for (&series, other_ends) in &other.series {
            match self.series.entry(series) {
                Entry::Vacant(entry) => {
                    entry.insert(*other_ends);
                }
                Entry::Occupied(mut entry) => {
                    let ends = entry.get_mut();
                    if other_ends.first_time_ns >= ends.last_time_ns {
                        self.total += counter_delta(ends.last_value, other_ends.first_value);
                    } else if other_ends.last_time_ns <= ends.first_time_ns {
                        self.total += counter_delta(other_ends.last_value, ends.first_value);
                    }
                    if other_ends.first_time_ns < ends.first_time_ns {
                        ends.first_time_ns = other_ends.first_time_ns;
                        ends.first_value = other_ends.first_value;
                    }
                    if other_ends.last_time_ns >= ends.last_time_ns {
                        ends.last_time_ns = other_ends.last_time_ns;
                        ends.last_value = other_ends.last_value;
                    }
                }
            }
        }
    }

    /// Total increase, or `None` if no numeric point was pushed.
    pub fn total(&self) -> Option<f64> {
        if self.series.is_empty() {
            None
        } else {
            Some(self.total)
        }
    }
}

/// Applies the arrival-order rules of the module docs to one point and
/// returns the delta it adds.
fn add_point(ends: &mut SeriesEnds, time_ns: i64, value: f64) -> f64 {
    if time_ns >= ends.last_time_ns {
        let delta = counter_delta(ends.last_value, value);
        ends.last_time_ns = time_ns;
        ends.last_value = value;
        delta
    } else if time_ns < ends.first_time_ns {
        let delta = counter_delta(value, ends.first_value);
        ends.first_time_ns = time_ns;
        ends.first_value = value;
        delta
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: SeriesId = SeriesId(1);
    const B: SeriesId = SeriesId(2);

    #[test]
    fn counter_delta_table() {
        let inf = f64::INFINITY;
        // (previous, current, expected delta)
        let cases = [
            (10.0, 15.0, 5.0),
            (15.0, 3.0, 3.0),
            (7.0, 7.0, 0.0),
            (0.0, 0.0, 0.0),
            (5.0, 0.0, 0.0),
            (inf, inf, 0.0),
            (1.0, inf, inf),
        ];
        for (previous, current, expected) in cases {
            assert_eq!(
                counter_delta(previous, current),
                expected,
                "{previous} -> {current}"
            );
        }
    }

    #[test]
    fn interleaved_series_sum_their_increases() {
        let mut increase = CounterIncrease::default();
        // A: 10, 15, 3 (reset), 8 gives 5 + 3 + 5 = 13. B: 100, 110 gives 10.
        let points = [
            (A, 1, 10.0),
            (B, 1, 100.0),
            (A, 2, 15.0),
            (A, 3, 3.0),
            (B, 2, 110.0),
            (A, 4, 8.0),
        ];
        for (series, time, value) in points {
            increase.push(series, time, value);
        }
        assert_eq!(increase.total(), Some(23.0));
    }

    #[test]
    fn run_matches_point_pushes() {
        let times = [10, 20, 30, 40, 50];
        let values = [1.0, 4.0, 2.0, 2.0, 9.0];
        let mut by_run = CounterIncrease::default();
        by_run.push_run(A, &times[..2], &values[..2]);
        by_run.push_run(A, &times[2..], &values[2..]);
        let mut by_point = CounterIncrease::default();
        for (&time, &value) in times.iter().zip(&values) {
            by_point.push(A, time, value);
        }

        // 3 + 2 (reset) + 0 + 7.
        assert_eq!(by_run.total(), Some(12.0));
        assert_eq!(by_point.total(), Some(12.0));
    }

    #[test]
    fn point_before_first_is_prepended() {
        let mut increase = CounterIncrease::default();
        increase.push(A, 20, 5.0);
        increase.push(A, 30, 9.0);
        increase.push(A, 10, 2.0);
        // 2 -> 5 -> 9.
        assert_eq!(increase.total(), Some(7.0));
    }

    #[test]
    fn point_between_first_and_last_is_left_out() {
        let mut increase = CounterIncrease::default();
        increase.push(A, 10, 1.0);
        increase.push(A, 30, 9.0);
        increase.push(A, 20, 100.0);
        assert_eq!(increase.total(), Some(8.0));
    }

    #[test]
    fn earlier_run_is_prepended() {
        let mut increase = CounterIncrease::default();
        increase.push_run(A, &[30, 40], &[10.0, 12.0]);
        increase.push_run(A, &[10, 20], &[4.0, 6.0]);
        // 4 -> 6 -> 10 -> 12.
        assert_eq!(increase.total(), Some(8.0));
    }

    #[test]
    fn overlapping_run_uses_point_rules() {
        let mut increase = CounterIncrease::default();
        increase.push_run(A, &[10, 30], &[1.0, 3.0]);
        // 5 precedes the first point, 20 falls inside, 40 follows the last.
        increase.push_run(A, &[5, 20, 40], &[0.0, 2.0, 7.0]);
        // 0 -> 1 -> 3 -> 7.
        assert_eq!(increase.total(), Some(7.0));
    }

    #[test]
    fn merge_of_consecutive_panes_is_exact() {
        let mut first_pane = CounterIncrease::default();
        first_pane.push_run(A, &[1, 2], &[10.0, 12.0]);
        first_pane.push_run(B, &[1], &[50.0]);
        let mut second_pane = CounterIncrease::default();
        second_pane.push_run(A, &[3, 4], &[2.0, 6.0]);
        second_pane.push_run(B, &[3], &[55.0]);
        first_pane.merge(&second_pane);

        // A: 2 + 2 (reset) + 4 = 8. B: 5.
        assert_eq!(first_pane.total(), Some(13.0));
    }

    #[test]
    fn merge_joins_later_state_given_first() {
        let mut late = CounterIncrease::default();
        late.push_run(A, &[3, 4], &[7.0, 9.0]);
        let mut early = CounterIncrease::default();
        early.push_run(A, &[1, 2], &[1.0, 5.0]);
        late.merge(&early);
        // 1 -> 5 -> 7 -> 9.
        assert_eq!(late.total(), Some(8.0));
    }

    #[test]
    fn merge_with_overlap_keeps_inner_deltas() {
        let mut left = CounterIncrease::default();
        left.push_run(A, &[1, 3], &[1.0, 3.0]);
        let mut right = CounterIncrease::default();
        right.push_run(A, &[2, 4], &[2.0, 4.0]);
        left.merge(&right);
        assert_eq!(left.total(), Some(4.0));
    }

    #[test]
    fn no_points_gives_none() {
        assert_eq!(CounterIncrease::default().total(), None);
    }
}
