//! Binary encoding of WAL record bodies: write batches and catalog
//! changes. The framing around each body (length, CRC32C, sequence
//! number) belongs to `super::wal`; replay in `super::recovery` turns the
//! decoded records back into engine calls.
//!
//! Body layout: one kind byte, the wall-clock time of the operation as
//! 8 little-endian bytes, then the kind's payload. Strings are
//! length-prefixed UTF-8. A write payload holds, per series entry, the
//! metric name, the tags, a value-kind byte, the point count, the times
//! as zigzag varints of their delta-of-delta (a regular series costs one
//! byte per point) and the values (doubles as 8 raw bytes,
//! integers as zigzag varints, bools bit-packed, strings length-prefixed).
//! Encoding writes straight into the caller's buffer and allocates
//! nothing per point.

use std::sync::Arc;
use std::time::Duration;

use super::codec::CodecError;
use super::codec::varint::{ByteReader, put_bytes, put_i64, put_u64};
use crate::model::{Column, DataType, SeriesWrite, TagSet, TimestampNs, ValueKind, WriteBatch};

const KIND_WRITE: u8 = 1;
const KIND_CREATE_METRIC: u8 = 2;
const KIND_DELETE_METRIC: u8 = 3;
const KIND_SET_RETENTION_POLICY: u8 = 4;
const KIND_SET_METRIC_POLICY: u8 = 5;
const KIND_DELETE_BEFORE: u8 = 6;

/// A metric's descriptive fields as logged by `create_metric`; the
/// retention policy is already resolved to a name.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDefinition {
    pub name: String,
    pub data_type: DataType,
    pub description: String,
    pub unit: String,
    pub retention_policy: String,
}

/// One decoded WAL record body.
#[derive(Debug, Clone)]
pub enum WalRecord {
    Write {
        time_ns: TimestampNs,
        batch: WriteBatch,
    },
    CreateMetric {
        time_ns: TimestampNs,
        definition: MetricDefinition,
    },
    DeleteMetric {
        time_ns: TimestampNs,
        name: String,
    },
    SetRetentionPolicy {
        time_ns: TimestampNs,
        name: String,
        max_age: Duration,
    },
    SetMetricPolicy {
        time_ns: TimestampNs,
        metric: String,
        policy: String,
    },
    DeleteBefore {
        time_ns: TimestampNs,
        metric: String,
        cutoff_ns: TimestampNs,
    },
}

pub fn data_type_code(data_type: DataType) -> u8 {
    match data_type {
        DataType::Integer => 1,
        DataType::Float => 2,
        DataType::Boolean => 3,
        DataType::String => 4,
        DataType::Duration => 5,
        DataType::Percentage => 6,
        DataType::Rate => 7,
    }
}

pub fn data_type_from_code(code: u8) -> Result<DataType, CodecError> {
    Ok(match code {
        1 => DataType::Integer,
        2 => DataType::Float,
        3 => DataType::Boolean,
        4 => DataType::String,
        5 => DataType::Duration,
        6 => DataType::Percentage,
        7 => DataType::Rate,
        other => {
            return Err(CodecError::Invalid {
                what: "data type",
                detail: format!("unknown data type code {other}"),
            });
        }
    })
}

pub fn value_kind_code(kind: ValueKind) -> u8 {
    match kind {
        ValueKind::F64 => 1,
        ValueKind::I64 => 2,
        ValueKind::Bool => 3,
        ValueKind::Str => 4,
    }
}

pub fn value_kind_from_code(code: u8) -> Result<ValueKind, CodecError> {
    Ok(match code {
        1 => ValueKind::F64,
        2 => ValueKind::I64,
        3 => ValueKind::Bool,
        4 => ValueKind::Str,
        other => {
            return Err(CodecError::Invalid {
                what: "value kind",
                detail: format!("unknown value kind code {other}"),
            });
        }
    })
}

fn put_header(out: &mut Vec<u8>, kind: u8, time_ns: TimestampNs) {
    out.push(kind);
    out.extend_from_slice(&time_ns.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_bytes(out, text.as_bytes());
}

/// Appends the body of a write record for `batch` to `out`.
pub fn encode_write(time_ns: TimestampNs, batch: &WriteBatch, out: &mut Vec<u8>) {
    put_header(out, KIND_WRITE, time_ns);
    put_u64(out, batch.series.len() as u64);
    for entry in &batch.series {
        encode_entry(entry, out);
    }
}

fn encode_entry(entry: &SeriesWrite, out: &mut Vec<u8>) {
    put_str(out, &entry.metric);
    put_u64(out, entry.tags.len() as u64);
    for (key, value) in entry.tags.iter() {
        put_str(out, key);
        put_str(out, value);
    }
    out.push(value_kind_code(entry.values.kind()));
    put_u64(out, entry.times_ns.len() as u64);
    let mut previous_time = 0i64;
    let mut previous_delta = 0i64;
    for &time in &entry.times_ns {
        let delta = time.wrapping_sub(previous_time);
        put_i64(out, delta.wrapping_sub(previous_delta));
        previous_time = time;
        previous_delta = delta;
    }
    match &entry.values {
        Column::F64(values) => {
            out.reserve(values.len() * 8);
            for value in values {
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        Column::I64(values) => {
            for &value in values {
                put_i64(out, value);
            }
        }
        Column::Bool(values) => {
            for group in values.chunks(8) {
                let byte = group
                    .iter()
                    .enumerate()
                    .fold(0u8, |acc, (bit, &set)| acc | (u8::from(set) << bit));
                out.push(byte);
            }
        }
        Column::Str(values) => {
            for value in values {
                put_str(out, value);
            }
        }
    }
}

/// Appends the body of a catalog-change record to `out`. Write records
/// go through [`encode_write`], which borrows the batch.
pub fn encode_change(record: &WalRecord, out: &mut Vec<u8>) {
    match record {
        WalRecord::Write { time_ns, batch } => encode_write(*time_ns, batch, out),
        WalRecord::CreateMetric {
            time_ns,
            definition,
        } => {
            put_header(out, KIND_CREATE_METRIC, *time_ns);
            put_str(out, &definition.name);
            out.push(data_type_code(definition.data_type));
            put_str(out, &definition.description);
            put_str(out, &definition.unit);
            put_str(out, &definition.retention_policy);
        }
        WalRecord::DeleteMetric { time_ns, name } => {
            put_header(out, KIND_DELETE_METRIC, *time_ns);
            put_str(out, name);
        }
        WalRecord::SetRetentionPolicy {
            time_ns,
            name,
            max_age,
        } => {
            put_header(out, KIND_SET_RETENTION_POLICY, *time_ns);
            put_str(out, name);
            put_u64(out, max_age.as_secs());
            put_u64(out, u64::from(max_age.subsec_nanos()));
        }
        WalRecord::SetMetricPolicy {
            time_ns,
            metric,
            policy,
        } => {
            put_header(out, KIND_SET_METRIC_POLICY, *time_ns);
            put_str(out, metric);
            put_str(out, policy);
        }
        WalRecord::DeleteBefore {
            time_ns,
            metric,
            cutoff_ns,
        } => {
            put_header(out, KIND_DELETE_BEFORE, *time_ns);
            put_str(out, metric);
            put_i64(out, *cutoff_ns);
        }
    }
}

/// Decodes one record body.
pub fn decode(body: &[u8]) -> Result<WalRecord, CodecError> {
    let mut reader = ByteReader::new(body);
    let kind = reader.u8("record kind")?;
    let time_ns = reader.u64_le("record time")? as i64;
    let record = match kind {
        KIND_WRITE => {
            let entries = reader.varint("entry count")?;
            let mut series = Vec::with_capacity(entries.min(4096) as usize);
            for _ in 0..entries {
                series.push(decode_entry(&mut reader)?);
            }
            WalRecord::Write {
                time_ns,
                batch: WriteBatch { series },
            }
        }
        KIND_CREATE_METRIC => {
            let name = reader.str("metric name")?.to_owned();
            let data_type = data_type_from_code(reader.u8("data type")?)?;
            WalRecord::CreateMetric {
                time_ns,
                definition: MetricDefinition {
                    name,
                    data_type,
                    description: reader.str("description")?.to_owned(),
                    unit: reader.str("unit")?.to_owned(),
                    retention_policy: reader.str("retention policy")?.to_owned(),
                },
            }
        }
        KIND_DELETE_METRIC => WalRecord::DeleteMetric {
            time_ns,
            name: reader.str("metric name")?.to_owned(),
        },
        KIND_SET_RETENTION_POLICY => {
            let name = reader.str("policy name")?.to_owned();
            let secs = reader.varint("policy max age seconds")?;
            let nanos = reader.varint("policy max age nanoseconds")?;
            if nanos >= 1_000_000_000 {
                return Err(CodecError::Invalid {
                    what: "policy max age",
                    detail: format!("{nanos} nanoseconds is not below one second"),
                });
            }
            WalRecord::SetRetentionPolicy {
                time_ns,
                name,
                max_age: Duration::new(secs, nanos as u32),
            }
        }
        KIND_SET_METRIC_POLICY => WalRecord::SetMetricPolicy {
            time_ns,
            metric: reader.str("metric name")?.to_owned(),
            policy: reader.str("policy name")?.to_owned(),
        },
        KIND_DELETE_BEFORE => WalRecord::DeleteBefore {
            time_ns,
            metric: reader.str("metric name")?.to_owned(),
            cutoff_ns: reader.varint_i64("cutoff")?,
        },
        other => {
            return Err(CodecError::Invalid {
                what: "record kind",
                detail: format!("unknown record kind {other}"),
            });
        }
    };
    if !reader.is_empty() {
        return Err(CodecError::Invalid {
            what: "record",
            detail: format!("{} bytes follow the payload", reader.remaining()),
        });
    }
    Ok(record)
}

fn decode_entry(reader: &mut ByteReader<'_>) -> Result<SeriesWrite, CodecError> {
    let metric = reader.str("metric name")?.to_owned();
    let tag_count = reader.varint("tag count")?;
    let mut pairs = Vec::with_capacity(tag_count.min(256) as usize);
    for _ in 0..tag_count {
        let key = reader.str("tag key")?.to_owned();
        let value = reader.str("tag value")?.to_owned();
        pairs.push((key, value));
    }
    let kind = value_kind_from_code(reader.u8("value kind")?)?;
    let count = reader.varint("point count")?;
    // Every point takes at least one byte, so a larger count is corrupt.
    if count > reader.remaining() as u64 {
        return Err(CodecError::Invalid {
            what: "point count",
            detail: format!("{count} points cannot fit in {} bytes", reader.remaining()),
        });
    }
    let count = count as usize;
    let mut times_ns = Vec::with_capacity(count);
    let mut time = 0i64;
    let mut delta = 0i64;
    for _ in 0..count {
        delta = delta.wrapping_add(reader.varint_i64("time delta of delta")?);
        time = time.wrapping_add(delta);
        times_ns.push(time);
    }
    let values = match kind {
        ValueKind::F64 => {
            let bytes = reader.bytes(count * 8, "double values")?;
            Column::F64(
                bytes
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                    .collect(),
            )
        }
        ValueKind::I64 => Column::I64(
            (0..count)
                .map(|_| reader.varint_i64("integer value"))
                .collect::<Result<_, _>>()?,
        ),
        ValueKind::Bool => {
            let bytes = reader.bytes(count.div_ceil(8), "bool values")?;
            Column::Bool(
                (0..count)
                    .map(|i| bytes[i / 8] & (1 << (i % 8)) != 0)
                    .collect(),
            )
        }
        ValueKind::Str => Column::Str(
            (0..count)
                .map(|_| reader.str("string value").map(Arc::from))
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(SeriesWrite {
        metric,
        tags: TagSet::from_pairs(pairs),
        first_index: 0,
        times_ns,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_batch() -> WriteBatch {
        let tags = TagSet::from_pairs(vec![("host".into(), "a".into()), ("dc".into(), "x".into())]);
        let entry = |metric: &str, times: Vec<i64>, values: Column| SeriesWrite {
            metric: metric.into(),
            tags: tags.clone(),
            first_index: 0,
            times_ns: times,
            values,
        };
        WriteBatch {
            series: vec![
                entry(
                    "f",
                    vec![i64::MIN, 0, i64::MAX],
                    Column::F64(vec![f64::INFINITY, -0.0, 1.5]),
                ),
                entry("i", vec![-5, -6], Column::I64(vec![i64::MIN, i64::MAX])),
                entry(
                    "b",
                    (0..11).collect(),
                    Column::Bool((0..11).map(|i| i % 2 == 0).collect()),
                ),
                entry(
                    "s",
                    vec![1, 1],
                    Column::Str(vec![Arc::from("x"), Arc::from("ÿ")]),
                ),
            ],
        }
    }

    #[test]
    fn write_record_round_trips() {
        let batch = sample_batch();
        let mut body = Vec::new();
        encode_write(123, &batch, &mut body);
        let WalRecord::Write {
            time_ns,
            batch: decoded,
        } = decode(&body).unwrap()
        else {
            panic!("expected a write record");
        };
        assert_eq!(time_ns, 123);
        assert_eq!(decoded.series.len(), batch.series.len());
        for (a, b) in decoded.series.iter().zip(&batch.series) {
            assert_eq!(a.metric, b.metric);
            assert_eq!(a.tags, b.tags);
            assert_eq!(a.times_ns, b.times_ns);
            match (&a.values, &b.values) {
                (Column::F64(x), Column::F64(y)) => {
                    let x: Vec<u64> = x.iter().map(|v| v.to_bits()).collect();
                    let y: Vec<u64> = y.iter().map(|v| v.to_bits()).collect();
                    assert_eq!(x, y);
                }
                (x, y) => assert_eq!(x, y),
            }
        }
    }

    #[test]
    fn change_records_round_trip() {
        let records = vec![
            WalRecord::CreateMetric {
                time_ns: 1,
                definition: MetricDefinition {
                    name: "m".into(),
                    data_type: DataType::Percentage,
                    description: "d".into(),
                    unit: "%".into(),
                    retention_policy: "archive".into(),
                },
            },
            WalRecord::DeleteMetric {
                time_ns: 2,
                name: "m".into(),
            },
            WalRecord::SetRetentionPolicy {
                time_ns: 3,
                name: "p".into(),
                max_age: Duration::new(86_400, 5),
            },
            WalRecord::SetMetricPolicy {
                time_ns: 4,
                metric: "m".into(),
                policy: "p".into(),
            },
            WalRecord::DeleteBefore {
                time_ns: 5,
                metric: "m".into(),
                cutoff_ns: -77,
            },
        ];
        for record in records {
            let mut body = Vec::new();
            encode_change(&record, &mut body);
            let decoded = decode(&body).unwrap();
            assert_eq!(format!("{decoded:?}"), format!("{record:?}"));
        }
    }

    #[test]
    fn truncated_bodies_fail() {
        let mut body = Vec::new();
        encode_write(9, &sample_batch(), &mut body);
        for len in 0..body.len() {
            assert!(
                decode(&body[..len]).is_err(),
                "prefix of {len} bytes decoded"
            );
        }
    }
}
