//! Fill of empty buckets: completes the aggregated buckets of one group
//! into the gap-free sequence a query requested.
//!
//! The query engine calls [`fill`] with the non-empty buckets it finished
//! with [`super::Accumulator::finish`], and the [`Bucketer`] that produced
//! them, which supplies the starts of the missing buckets.

use super::AggValue;
use super::bucket::Bucketer;
use super::quantile::interpolate;

/// Fill strategy for buckets that received no points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillMode {
    /// Only the non-empty buckets are returned.
    None,
    /// Empty buckets are inserted with every value `AggValue::None`.
    Null,
    /// Empty buckets are inserted with every value 0, except values of
    /// functions that return text, which stay `AggValue::None`.
    Zero,
    /// Empty buckets repeat the values of the previous non-empty bucket.
    /// Leading empty buckets stay `AggValue::None`.
    Previous,
    /// Empty buckets interpolate each numeric value linearly by bucket
    /// start between the neighbouring non-empty buckets. Leading and
    /// trailing empty buckets, and values that are not numbers on both
    /// sides, stay `AggValue::None`.
    Linear,
}

/// One bucket of a query result. `count` is the number of points, and
/// inserted buckets have a count of 0.
#[derive(Debug, Clone, PartialEq)]
pub struct FilledBucket {
    pub start_ns: i64,
    pub end_ns: i64,
    pub count: u64,
    pub values: Vec<AggValue>,
}

/// Fills the buckets from the bucket of `first_start` to the bucket of
/// `last_start`, both included, according to `mode`.
///
/// `buckets` contains the non-empty buckets sorted by start, each with
/// `n_values` values. Buckets outside the range, or with a start that is
/// not a bucket boundary, are kept in start order and are never dropped.
/// Inserted buckets end where the next bucket starts.
///
/// Fails, naming the count and the limit, if the result would have more
/// than `max_buckets` buckets.
pub fn fill(
    buckets: Vec<FilledBucket>,
    mode: FillMode,
    bucketer: &mut Bucketer,
    first_start: i64,
    last_start: i64,
    n_values: usize,
    max_buckets: usize,
) -> Result<Vec<FilledBucket>, String> {
    if mode == FillMode::None {
        if buckets.len() > max_buckets {
            return Err(too_many_buckets(buckets.len() as u64, max_buckets));
        }
        return Ok(buckets);
    }

    // Checked before any allocation, so a tiny step over a long range
    // fails fast instead of exhausting memory.
    let range_count = bucketer.count_buckets(first_start, last_start);
    if range_count > max_buckets as u64 {
        return Err(too_many_buckets(range_count, max_buckets));
    }

    let (mut filled, has_points) = lay_out(buckets, bucketer, first_start, last_start, n_values);
    if filled.len() > max_buckets {
        return Err(too_many_buckets(filled.len() as u64, max_buckets));
    }

    match mode {
        FillMode::None | FillMode::Null => {}
        FillMode::Zero => fill_zero(&mut filled, &has_points, n_values),
        FillMode::Previous => fill_previous(&mut filled, &has_points),
        FillMode::Linear => fill_linear(&mut filled, &has_points),
    }
    Ok(filled)
}

fn too_many_buckets(count: u64, max_buckets: usize) -> String {
    format!(
        "fill would produce {count} buckets, more than the limit of {max_buckets}; \
         use a wider bucket or a shorter time range"
    )
}

/// Merges the non-empty buckets into the bucket sequence of the range.
/// Returns the buckets, with `AggValue::None` values in the inserted ones,
/// and for each bucket whether it has points.
fn lay_out(
    buckets: Vec<FilledBucket>,
    bucketer: &mut Bucketer,
    first_start: i64,
    last_start: i64,
    n_values: usize,
) -> (Vec<FilledBucket>, Vec<bool>) {
    let mut filled = Vec::with_capacity(buckets.len());
    let mut has_points = Vec::with_capacity(buckets.len());
    let mut input = buckets.into_iter().peekable();

    let first = bucketer.bucket_of(first_start).0;
    let last = bucketer.bucket_of(last_start).0;
    let mut start = first;
    while start <= last {
        while let Some(bucket) = input.next_if(|bucket| bucket.start_ns < start) {
            filled.push(bucket);
            has_points.push(true);
        }

        let next = bucketer.next_start(start);
        match input.next_if(|bucket| bucket.start_ns == start) {
            Some(bucket) => {
                filled.push(bucket);
                has_points.push(true);
            }
            None => {
                filled.push(FilledBucket {
                    start_ns: start,
                    end_ns: next,
                    count: 0,
                    values: vec![AggValue::None; n_values],
                });
                has_points.push(false);
            }
        }

        // The start saturates at i64::MAX, so stop when it no longer moves.
        if next <= start {
            break;
        }
        start = next;
    }

    for bucket in input {
        filled.push(bucket);
        has_points.push(true);
    }
    (filled, has_points)
}

fn fill_zero(filled: &mut [FilledBucket], has_points: &[bool], n_values: usize) {
    // A value position belongs to a text function (FIRST or LAST of
    // strings) if any non-empty bucket has text there.
    let mut is_text = vec![false; n_values];
    for (bucket, &points) in filled.iter().zip(has_points) {
        if !points {
            continue;
        }
        for (flag, value) in is_text.iter_mut().zip(&bucket.values) {
            *flag |= matches!(value, AggValue::Text(_));
        }
    }

    for (bucket, &points) in filled.iter_mut().zip(has_points) {
        if points {
            continue;
        }
        for (value, &text) in bucket.values.iter_mut().zip(&is_text) {
            *value = if text {
                AggValue::None
            } else {
                AggValue::Number(0.0)
            };
        }
    }
}

fn fill_previous(filled: &mut [FilledBucket], has_points: &[bool]) {
    let mut previous: Option<Vec<AggValue>> = None;
    for (bucket, &points) in filled.iter_mut().zip(has_points) {
        if points {
            previous = Some(bucket.values.clone());
        } else if let Some(values) = &previous {
            bucket.values.clone_from(values);
        }
    }
}

fn fill_linear(filled: &mut [FilledBucket], has_points: &[bool]) {
    let with_points: Vec<usize> = (0..filled.len())
        .filter(|&index| has_points[index])
        .collect();
    for pair in with_points.windows(2) {
        let (before, after) = (pair[0], pair[1]);
        if after == before + 1 {
            continue;
        }

        let (head, tail) = filled.split_at_mut(after);
        let (head, gap) = head.split_at_mut(before + 1);
        let (left, right) = (&head[before], &tail[0]);
        let span = (right.start_ns as i128 - left.start_ns as i128) as f64;
        for bucket in gap {
            let fraction = (bucket.start_ns as i128 - left.start_ns as i128) as f64 / span;
            for (index, value) in bucket.values.iter_mut().enumerate() {
                *value = match (left.values.get(index), right.values.get(index)) {
                    (Some(AggValue::Number(from)), Some(AggValue::Number(to))) => {
                        AggValue::Number(interpolate(*from, *to, fraction))
                    }
                    _ => AggValue::None,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::bucket::Granularity;
    use chrono::TimeZone;
    use chrono_tz::America;
    use std::sync::Arc;

    fn number(value: f64) -> AggValue {
        AggValue::Number(value)
    }

    fn text(value: &str) -> AggValue {
        AggValue::Text(Arc::from(value))
    }

    fn bucket(start_ns: i64, width: i64, count: u64, values: Vec<AggValue>) -> FilledBucket {
        FilledBucket {
            start_ns,
            end_ns: start_ns + width,
            count,
            values,
        }
    }

    /// Start, count and values of a bucket.
    type BucketSummary = (i64, u64, Vec<AggValue>);

    /// Buckets of width 10 at 10 and 40, with a numeric and a text value.
    fn sparse_input() -> Vec<FilledBucket> {
        vec![
            bucket(10, 10, 2, vec![number(1.0), text("a")]),
            bucket(40, 10, 1, vec![number(4.0), text("b")]),
        ]
    }

    #[test]
    fn fill_modes_table() {
        let none = AggValue::None;
        let empty = || vec![AggValue::None, AggValue::None];
        // (mode, expected (start, count, values) over the range 0..=50)
        let cases: Vec<(FillMode, Vec<BucketSummary>)> = vec![
            (
                FillMode::None,
                vec![
                    (10, 2, vec![number(1.0), text("a")]),
                    (40, 1, vec![number(4.0), text("b")]),
                ],
            ),
            (
                FillMode::Null,
                vec![
                    (0, 0, empty()),
                    (10, 2, vec![number(1.0), text("a")]),
                    (20, 0, empty()),
                    (30, 0, empty()),
                    (40, 1, vec![number(4.0), text("b")]),
                    (50, 0, empty()),
                ],
            ),
            (
                FillMode::Zero,
                vec![
                    (0, 0, vec![number(0.0), none.clone()]),
                    (10, 2, vec![number(1.0), text("a")]),
                    (20, 0, vec![number(0.0), none.clone()]),
                    (30, 0, vec![number(0.0), none.clone()]),
                    (40, 1, vec![number(4.0), text("b")]),
                    (50, 0, vec![number(0.0), none.clone()]),
                ],
            ),
            (
                FillMode::Previous,
                vec![
                    (0, 0, empty()),
                    (10, 2, vec![number(1.0), text("a")]),
                    (20, 0, vec![number(1.0), text("a")]),
                    (30, 0, vec![number(1.0), text("a")]),
                    (40, 1, vec![number(4.0), text("b")]),
                    (50, 0, vec![number(4.0), text("b")]),
                ],
            ),
            (
                FillMode::Linear,
                vec![
                    (0, 0, empty()),
                    (10, 2, vec![number(1.0), text("a")]),
                    // 1 + (4 − 1) · 10/30 = 2 and 1 + 3 · 20/30 = 3.
                    (20, 0, vec![number(2.0), none.clone()]),
                    (30, 0, vec![number(3.0), none.clone()]),
                    (40, 1, vec![number(4.0), text("b")]),
                    (50, 0, empty()),
                ],
            ),
        ];

        for (mode, expected) in cases {
            let mut bucketer = Bucketer::fixed(10).unwrap();
            let filled = fill(sparse_input(), mode, &mut bucketer, 0, 50, 2, 100).unwrap();
            let actual: Vec<BucketSummary> = filled
                .iter()
                .map(|bucket| (bucket.start_ns, bucket.count, bucket.values.clone()))
                .collect();
            assert_eq!(actual, expected, "{mode:?}");
            for bucket in &filled {
                assert_eq!(
                    bucket.end_ns,
                    bucket.start_ns + 10,
                    "{mode:?} end of {}",
                    bucket.start_ns
                );
            }
        }
    }

    #[test]
    fn fill_unaligned_range_uses_containing_buckets() {
        let mut bucketer = Bucketer::fixed(10).unwrap();
        let filled = fill(sparse_input(), FillMode::Null, &mut bucketer, 3, 47, 2, 100).unwrap();
        let starts: Vec<i64> = filled.iter().map(|bucket| bucket.start_ns).collect();
        assert_eq!(starts, vec![0, 10, 20, 30, 40]);
    }

    #[test]
    fn fill_over_limit_names_count_and_limit() {
        let mut bucketer = Bucketer::fixed(10).unwrap();
        let message = fill(
            sparse_input(),
            FillMode::Null,
            &mut bucketer,
            0,
            1000,
            2,
            50,
        )
        .unwrap_err();
        assert!(message.contains("101 buckets"), "{message}");
        assert!(message.contains("limit of 50"), "{message}");
    }

    #[test]
    fn fill_limit_applies_to_mode_none() {
        let mut bucketer = Bucketer::fixed(10).unwrap();
        let message = fill(sparse_input(), FillMode::None, &mut bucketer, 0, 50, 2, 1).unwrap_err();
        assert!(message.contains("2 buckets"), "{message}");
    }

    #[test]
    fn fill_huge_range_fails_fast() {
        let mut bucketer = Bucketer::fixed(1).unwrap();
        let message = fill(
            Vec::new(),
            FillMode::Zero,
            &mut bucketer,
            i64::MIN,
            i64::MAX,
            1,
            10_000,
        )
        .unwrap_err();
        assert!(message.contains(&u64::MAX.to_string()), "{message}");
    }

    #[test]
    fn fill_exact_limit_succeeds() {
        let mut bucketer = Bucketer::fixed(10).unwrap();
        let filled = fill(sparse_input(), FillMode::Null, &mut bucketer, 0, 50, 2, 6).unwrap();
        assert_eq!(filled.len(), 6);
    }

    #[test]
    fn fill_keeps_buckets_outside_range() {
        let mut bucketer = Bucketer::fixed(10).unwrap();
        let input = vec![
            bucket(-20, 10, 1, vec![number(-2.0)]),
            bucket(15, 10, 1, vec![number(1.5)]),
            bucket(90, 10, 1, vec![number(9.0)]),
        ];
        let filled = fill(input, FillMode::Null, &mut bucketer, 0, 20, 1, 100).unwrap();
        let starts: Vec<i64> = filled.iter().map(|bucket| bucket.start_ns).collect();
        assert_eq!(starts, vec![-20, 0, 10, 15, 20, 90]);
    }

    #[test]
    fn fill_empty_input_with_previous_stays_none() {
        let mut bucketer = Bucketer::fixed(10).unwrap();
        let filled = fill(Vec::new(), FillMode::Previous, &mut bucketer, 0, 20, 1, 100).unwrap();
        assert_eq!(filled.len(), 3);
        for bucket in &filled {
            assert_eq!(
                bucket.values,
                vec![AggValue::None],
                "bucket at {}",
                bucket.start_ns
            );
        }
    }

    #[test]
    fn fill_reversed_range_returns_input() {
        let mut bucketer = Bucketer::fixed(10).unwrap();
        let filled = fill(sparse_input(), FillMode::Null, &mut bucketer, 50, 0, 2, 100).unwrap();
        assert_eq!(filled, sparse_input());
    }

    #[test]
    fn fill_linear_between_infinities() {
        let mut bucketer = Bucketer::fixed(10).unwrap();
        let input = vec![
            bucket(0, 10, 1, vec![number(f64::INFINITY), number(5.0)]),
            bucket(
                20,
                10,
                1,
                vec![number(f64::INFINITY), number(f64::INFINITY)],
            ),
        ];
        let filled = fill(input, FillMode::Linear, &mut bucketer, 0, 20, 2, 100).unwrap();
        assert_eq!(
            filled[1].values,
            vec![number(f64::INFINITY), number(f64::INFINITY)]
        );
    }

    #[test]
    fn fill_calendar_days_across_dst() {
        let tz = America::New_York;
        let mut bucketer = Bucketer::calendar(Granularity::Day, tz);
        let midnight = |day: u32| {
            tz.with_ymd_and_hms(2024, 3, day, 0, 0, 0)
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap()
        };
        let input = vec![FilledBucket {
            start_ns: midnight(9),
            end_ns: midnight(10),
            count: 1,
            values: vec![number(1.0)],
        }];
        let filled = fill(
            input,
            FillMode::Zero,
            &mut bucketer,
            midnight(9),
            midnight(11),
            1,
            100,
        )
        .unwrap();

        let ranges: Vec<(i64, i64)> = filled
            .iter()
            .map(|bucket| (bucket.start_ns, bucket.end_ns))
            .collect();
        assert_eq!(
            ranges,
            vec![
                (midnight(9), midnight(10)),
                (midnight(10), midnight(11)),
                (midnight(11), midnight(12))
            ]
        );
        assert_eq!(midnight(11) - midnight(10), 23 * 3_600_000_000_000);
        assert_eq!(filled[1].values, vec![number(0.0)]);
    }
}
