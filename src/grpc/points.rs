//! Decoding and validation of ingest messages into a [`WriteBatch`].
//!
//! Invalid points are dropped from the batch and reported by their
//! position in the stream; valid points of the same message are applied.
//! Columnar `SeriesPoints` move their arrays into the batch without a
//! per-point allocation (string values excepted).

use std::sync::Arc;

use crate::model::limits::{Limits, MAX_TIMESTAMP_NS, check_double_value, check_timestamp};
use crate::model::{Column, Rejection, SeriesWrite, TagSet, WriteBatch};
use crate::proto::v1::{Point, SeriesPoints, point};

/// The validated part of one ingest message and what was rejected.
#[derive(Debug, Default)]
pub struct DecodedMessage {
    pub batch: WriteBatch,
    pub rejections: Vec<Rejection>,
    /// Number of points the message carried, valid or not.
    pub point_count: u64,
}

/// Decodes one request message whose first point has stream position
/// `first_index`. `points` come first, then each entry of `series`.
pub fn decode_message(
    points: Vec<Point>,
    series: Vec<SeriesPoints>,
    first_index: u64,
    limits: &Limits,
) -> DecodedMessage {
    let mut decoded = DecodedMessage::default();
    let mut index = first_index;

    for point in points {
        decode_point(point, index, limits, &mut decoded);
        index += 1;
    }
    for entry in series {
        let count = series_point_count(&entry);
        decode_series(entry, index, limits, &mut decoded);
        index += count;
    }

    decoded.point_count = index - first_index;
    decoded
}

fn reject(decoded: &mut DecodedMessage, index: u64, reason: String) {
    decoded.rejections.push(Rejection { index, reason });
}

fn tag_set(tags: std::collections::HashMap<String, String>) -> TagSet {
    TagSet::from_pairs(tags.into_iter().collect())
}

fn decode_point(point: Point, index: u64, limits: &Limits, decoded: &mut DecodedMessage) {
    if let Err(reason) = limits.check_metric_name("metric", &point.metric) {
        return reject(decoded, index, reason);
    }
    if let Err(reason) = limits.check_tags("tags", point.tags.iter()) {
        return reject(decoded, index, reason);
    }
    if let Err(reason) = check_timestamp("time_unix_nano", point.time_unix_nano) {
        return reject(decoded, index, reason);
    }

    let values = match point.value {
        None => {
            return reject(
                decoded,
                index,
                "value is not set; set one of double_value, int_value, bool_value or string_value"
                    .to_owned(),
            );
        }
        Some(point::Value::DoubleValue(v)) => {
            if let Err(reason) = check_double_value("double_value", v) {
                return reject(decoded, index, reason);
            }
            Column::F64(vec![v])
        }
        Some(point::Value::IntValue(v)) => Column::I64(vec![v]),
        Some(point::Value::BoolValue(v)) => Column::Bool(vec![v]),
        Some(point::Value::StringValue(v)) => {
            if let Err(reason) = limits.check_string_value("string_value", &v) {
                return reject(decoded, index, reason);
            }
            Column::Str(vec![Arc::from(v)])
        }
    };

    let tags = tag_set(point.tags);

    // Consecutive points of one series share an entry, so a client that
    // sends point-per-point batches still gets runs in storage.
    if let Some(last) = decoded.batch.series.last_mut()
        && last.first_index + last.len() as u64 == index
        && last.metric == point.metric
        && last.tags == tags
        && last.values.kind() == values.kind()
    {
        last.times_ns.push(point.time_unix_nano);
        last.values.push(values.get(0));
        return;
    }

    decoded.batch.series.push(SeriesWrite {
        metric: point.metric,
        tags,
        first_index: index,
        times_ns: vec![point.time_unix_nano],
        values,
    });
}

/// Number of points a `SeriesPoints` entry claims: its longest array.
fn series_point_count(entry: &SeriesPoints) -> u64 {
    [
        entry.times_unix_nano.len(),
        entry.double_values.len(),
        entry.int_values.len(),
        entry.bool_values.len(),
        entry.string_values.len(),
    ]
    .into_iter()
    .max()
    .unwrap_or(0) as u64
}

fn reject_all(decoded: &mut DecodedMessage, first_index: u64, count: u64, reason: &str) {
    for i in 0..count {
        reject(decoded, first_index + i, reason.to_owned());
    }
}

fn decode_series(
    entry: SeriesPoints,
    first_index: u64,
    limits: &Limits,
    decoded: &mut DecodedMessage,
) {
    let count = series_point_count(&entry);
    if count == 0 {
        return;
    }
    if let Err(reason) = limits.check_metric_name("series.metric", &entry.metric) {
        return reject_all(decoded, first_index, count, &reason);
    }
    if let Err(reason) = limits.check_tags("series.tags", entry.tags.iter()) {
        return reject_all(decoded, first_index, count, &reason);
    }

    let arrays = [
        ("double_values", entry.double_values.len()),
        ("int_values", entry.int_values.len()),
        ("bool_values", entry.bool_values.len()),
        ("string_values", entry.string_values.len()),
    ];
    let set: Vec<&(&str, usize)> = arrays.iter().filter(|(_, len)| *len > 0).collect();
    if set.len() != 1 {
        let names: Vec<&str> = set.iter().map(|(name, _)| *name).collect();
        let reason = if names.is_empty() {
            format!(
                "series has {} times_unix_nano but no values; set exactly one value array",
                entry.times_unix_nano.len()
            )
        } else {
            format!(
                "series sets {} value arrays ({}); set exactly one",
                names.len(),
                names.join(", ")
            )
        };
        return reject_all(decoded, first_index, count, &reason);
    }
    let (array_name, values_len) = *set[0];
    if values_len != entry.times_unix_nano.len() {
        let reason = format!(
            "series.{array_name} has {values_len} values but times_unix_nano has {} times; the lengths must be equal",
            entry.times_unix_nano.len()
        );
        return reject_all(decoded, first_index, count, &reason);
    }

    let metric = entry.metric;
    let tags = tag_set(entry.tags);
    let times_ns = entry.times_unix_nano;

    // Per-point checks (NaN, string length) split the entry into runs of
    // valid points, so each run keeps exact stream positions.
    let (values, invalid): (Column, Vec<(usize, String)>) = if !entry.double_values.is_empty() {
        let invalid = entry
            .double_values
            .iter()
            .enumerate()
            // The field name is formatted only for an invalid value.
            .filter(|(_, v)| v.is_nan())
            .filter_map(|(i, &v)| {
                check_double_value(&format!("series.double_values[{i}]"), v)
                    .err()
                    .map(|r| (i, r))
            })
            .collect();
        (Column::F64(entry.double_values), invalid)
    } else if !entry.int_values.is_empty() {
        (Column::I64(entry.int_values), Vec::new())
    } else if !entry.bool_values.is_empty() {
        (Column::Bool(entry.bool_values), Vec::new())
    } else {
        let invalid = entry
            .string_values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.len() > limits.max_string_value_bytes)
            .filter_map(|(i, v)| {
                limits
                    .check_string_value(&format!("series.string_values[{i}]"), v)
                    .err()
                    .map(|r| (i, r))
            })
            .collect();
        let strings = entry.string_values.into_iter().map(Arc::from).collect();
        (Column::Str(strings), invalid)
    };

    let mut invalid = invalid;
    for (i, &time_ns) in times_ns.iter().enumerate() {
        if time_ns <= MAX_TIMESTAMP_NS {
            continue;
        }
        if let Err(reason) = check_timestamp(&format!("series.times_unix_nano[{i}]"), time_ns) {
            invalid.push((i, reason));
        }
    }
    invalid.sort_by_key(|(i, _)| *i);
    invalid.dedup_by_key(|(i, _)| *i);

    if invalid.is_empty() {
        decoded.batch.series.push(SeriesWrite {
            metric,
            tags,
            first_index,
            times_ns,
            values,
        });
        return;
    }

    let mut run_start = 0;
    let mut boundaries: Vec<usize> = invalid.iter().map(|(i, _)| *i).collect();
    boundaries.push(times_ns.len());
    for (i, reason) in invalid {
        reject(decoded, first_index + i as u64, reason);
    }
    for end in boundaries {
        if end > run_start {
            let slice = values.as_slice().slice(run_start, end);
            let mut run_values = Column::empty(values.kind());
            for k in 0..slice.len() {
                run_values.push(slice.get(k));
            }
            decoded.batch.series.push(SeriesWrite {
                metric: metric.clone(),
                tags: tags.clone(),
                first_index: first_index + run_start as u64,
                times_ns: times_ns[run_start..end].to_vec(),
                values: run_values,
            });
        }
        run_start = end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(metric: &str, time: i64, value: point::Value) -> Point {
        Point {
            metric: metric.into(),
            time_unix_nano: time,
            value: Some(value),
            tags: [("host".to_string(), "a".to_string())].into(),
        }
    }

    #[test]
    fn consecutive_points_share_an_entry() {
        let points = vec![
            point("m", 1, point::Value::DoubleValue(1.0)),
            point("m", 2, point::Value::DoubleValue(2.0)),
            point("other", 3, point::Value::DoubleValue(3.0)),
        ];
        let decoded = decode_message(points, vec![], 10, &Limits::default());
        assert_eq!(decoded.point_count, 3);
        assert_eq!(decoded.batch.series.len(), 2);
        assert_eq!(decoded.batch.series[0].len(), 2);
        assert_eq!(decoded.batch.series[1].first_index, 12);
    }

    #[test]
    fn nan_in_series_splits_runs_and_keeps_positions() {
        let series = SeriesPoints {
            metric: "m".into(),
            times_unix_nano: vec![1, 2, 3, 4],
            double_values: vec![1.0, f64::NAN, 3.0, 4.0],
            ..Default::default()
        };
        let decoded = decode_message(
            vec![point("m", 0, point::Value::DoubleValue(0.0))],
            vec![series],
            0,
            &Limits::default(),
        );
        assert_eq!(decoded.point_count, 5);
        assert_eq!(decoded.rejections.len(), 1);
        assert_eq!(decoded.rejections[0].index, 2);
        assert!(decoded.rejections[0].reason.contains("NaN"));
        let firsts: Vec<u64> = decoded.batch.series.iter().map(|s| s.first_index).collect();
        assert_eq!(firsts, vec![0, 1, 3]);
        assert_eq!(decoded.batch.point_count(), 4);
    }

    #[test]
    fn series_with_mismatched_lengths_rejected() {
        let series = SeriesPoints {
            metric: "m".into(),
            times_unix_nano: vec![1, 2, 3],
            int_values: vec![1, 2],
            ..Default::default()
        };
        let decoded = decode_message(vec![], vec![series], 0, &Limits::default());
        assert_eq!(decoded.rejections.len(), 3);
        assert!(
            decoded.rejections[0]
                .reason
                .contains("int_values has 2 values")
        );
        assert!(decoded.batch.series.is_empty());
    }

    #[test]
    fn series_with_two_value_arrays_rejected() {
        let series = SeriesPoints {
            metric: "m".into(),
            times_unix_nano: vec![1],
            int_values: vec![1],
            bool_values: vec![true],
            ..Default::default()
        };
        let decoded = decode_message(vec![], vec![series], 0, &Limits::default());
        assert_eq!(decoded.rejections.len(), 1);
        assert!(decoded.rejections[0].reason.contains("exactly one"));
    }

    #[test]
    fn point_without_value_rejected() {
        let mut p = point("m", 1, point::Value::IntValue(1));
        p.value = None;
        let decoded = decode_message(vec![p], vec![], 7, &Limits::default());
        assert_eq!(decoded.rejections[0].index, 7);
        assert!(decoded.rejections[0].reason.contains("value is not set"));
    }
}
