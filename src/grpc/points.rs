//! Decoding and validation of ingest messages into a [`WriteBatch`].
//!
//! The ingest service receives each request message as raw bytes
//! ([`RawRequestCodec`]) and decodes it here with the wire reader in
//! `super::wire`, without the per-point strings and hash maps of a prost
//! `Point`. A point whose metric name and tag bytes equal those of the
//! last valid point reuses that point's parsed series, so point-per-point
//! clients pay a byte comparison per point, not a parse. Columnar
//! `SeriesPoints` decode straight into the batch's arrays.
//!
//! Invalid points are dropped from the batch and reported by their
//! position in the stream; valid points of the same message are applied.
//! A message that is not valid protobuf (or has a string that is not
//! UTF-8) fails as a whole, and nothing of it is applied.

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use super::status::DECODE_ERROR_PREFIX;
use super::wire::{self, Reader, WireError, WireType};
use crate::model::limits::{Limits, MAX_TIMESTAMP_NS, check_double_value, check_timestamp};
use crate::model::{
    Column, MAX_LISTED_REJECTIONS, Rejection, SeriesWrite, TagSet, Value, WriteBatch,
};
use crate::proto::v1::SeriesPoints;

/// A tonic codec that passes request messages on as their raw bytes and
/// encodes responses of type `E` with prost.
#[derive(Debug)]
pub struct RawRequestCodec<E>(PhantomData<fn() -> E>);

impl<E> Default for RawRequestCodec<E> {
    fn default() -> Self {
        RawRequestCodec(PhantomData)
    }
}

impl<E: prost::Message + Send + 'static> Codec for RawRequestCodec<E> {
    type Encode = E;
    type Decode = Bytes;
    type Encoder = ResponseEncoder<E>;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

#[derive(Debug)]
pub struct ResponseEncoder<E>(PhantomData<fn() -> E>);

impl<E: prost::Message> Encoder for ResponseEncoder<E> {
    type Item = E;
    type Error = Status;

    fn encode(&mut self, item: E, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buf)
            .map_err(|e| Status::internal(format!("failed to encode a response: {e}")))
    }
}

/// Hands out the message's bytes; tonic has already checked its size
/// against the decoding limit.
#[derive(Debug)]
pub struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let len = buf.remaining();
        Ok(Some(buf.copy_to_bytes(len)))
    }
}

/// A request message that is not valid protobuf.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{DECODE_ERROR_PREFIX}: {field}: {source}")]
pub struct MalformedMessage {
    /// The field being read, such as `points[3].tags`.
    pub field: String,
    pub source: WireError,
}

/// Builds the error of a malformed field of `points[position]`. It is
/// called only when the error happens, so the field name costs nothing
/// on valid input.
fn point_error(position: u64, index: u64, field: &str, source: WireError) -> MalformedMessage {
    // A stream's later messages start past position 0; the stream position
    // is what rejections and resend hints count in.
    let field = if index == position {
        format!("points[{position}]{field}")
    } else {
        format!("points[{position}]{field} (stream position {index})")
    };
    MalformedMessage { field, source }
}

/// Builds the error of a malformed field of the request itself.
fn request_error(source: WireError) -> MalformedMessage {
    MalformedMessage {
        field: "request".to_owned(),
        source,
    }
}

/// The validated part of one ingest message and what was rejected.
#[derive(Debug, Default)]
pub struct DecodedMessage {
    pub batch: WriteBatch,
    pub rejections: Vec<Rejection>,
    /// Rejected points beyond the first `MAX_LISTED_REJECTIONS`.
    pub unlisted_rejections: u64,
    /// Number of points the message carried, valid or not.
    pub point_count: u64,
}

// Field numbers of the ingest messages in `proto/tidemark/v1/`.
const REQUEST_POINTS: u32 = 1;
const REQUEST_SERIES: u32 = 2;

const POINT_METRIC: u32 = 1;
const POINT_TIME: u32 = 2;
const POINT_DOUBLE: u32 = 3;
const POINT_INT: u32 = 4;
const POINT_BOOL: u32 = 5;
const POINT_STRING: u32 = 6;
const POINT_TAGS: u32 = 7;

const SERIES_METRIC: u32 = 1;
const SERIES_TAGS: u32 = 2;
const SERIES_TIMES: u32 = 3;
const SERIES_DOUBLES: u32 = 4;
const SERIES_INTS: u32 = 5;
const SERIES_BOOLS: u32 = 6;
const SERIES_STRINGS: u32 = 7;

const ENTRY_KEY: u32 = 1;
const ENTRY_VALUE: u32 = 2;

/// Decodes one `StreamPointsRequest` or `WritePointsRequest` (they share
/// a layout) whose first point has stream position `first_index`.
/// `points` come first, then each entry of `series`, whatever their order
/// on the wire.
pub fn decode_message(
    message: &[u8],
    first_index: u64,
    limits: &Limits,
) -> Result<DecodedMessage, MalformedMessage> {
    let mut decoded = DecodedMessage::default();
    let mut points = PointDecoder::new(limits);
    let mut series_bodies: Vec<&[u8]> = Vec::new();
    let mut index = first_index;

    let mut reader = Reader::new(message);
    while !reader.is_empty() {
        let (field, wire_type) = reader.key().map_err(request_error)?;
        match field {
            REQUEST_POINTS => {
                let position = index - first_index;
                wire::expect(field, wire_type, WireType::LengthDelimited, "a message")
                    .map_err(|e| point_error(position, index, "", e))?;
                let body = reader
                    .length_delimited()
                    .map_err(|e| point_error(position, index, "", e))?;
                points.decode(body, index, position, &mut decoded)?;
                index += 1;
            }
            REQUEST_SERIES => {
                let series_error = |source| MalformedMessage {
                    field: format!("series[{}]", series_bodies.len()),
                    source,
                };
                wire::expect(field, wire_type, WireType::LengthDelimited, "a message")
                    .map_err(series_error)?;
                let body = reader.length_delimited().map_err(series_error)?;
                series_bodies.push(body);
            }
            _ => reader.skip(field, wire_type).map_err(request_error)?,
        }
    }

    for (position, body) in series_bodies.into_iter().enumerate() {
        let entry = read_series(body).map_err(|(field, source)| MalformedMessage {
            field: format!("series[{position}]{field}"),
            source,
        })?;
        let count = series_point_count(&entry);
        decode_series(entry, index, limits, &mut decoded);
        index += count;
    }

    decoded.point_count = index - first_index;
    Ok(decoded)
}

/// Records a rejected point; past `MAX_LISTED_REJECTIONS` it is only
/// counted.
fn reject(decoded: &mut DecodedMessage, index: u64, reason: String) {
    if decoded.rejections.len() < MAX_LISTED_REJECTIONS {
        decoded.rejections.push(Rejection { index, reason });
    } else {
        decoded.unlisted_rejections += 1;
    }
}

/// The value field of a point as it was on the wire.
enum RawValue<'a> {
    Double(f64),
    Int(i64),
    Bool(bool),
    Str(&'a [u8]),
}

/// The series of the last point whose metric name and tags were valid:
/// its bytes on the wire and their parsed form.
struct KnownSeries<'a> {
    metric_bytes: &'a [u8],
    tag_entries: Vec<&'a [u8]>,
    /// True when no tag key repeats, so the entries give the same tag
    /// set in any order. Maps have no order on the wire: prost and Go
    /// write a hash map's entries in its iteration order, which differs
    /// between two maps with equal contents.
    any_order: bool,
    metric: String,
    tags: TagSet,
}

impl KnownSeries<'_> {
    /// Returns whether a point with these metric and tag bytes belongs to
    /// this series. A false result only costs a parse.
    fn matches(&self, metric_bytes: &[u8], tag_entries: &[&[u8]]) -> bool {
        if self.metric_bytes != metric_bytes || self.tag_entries.len() != tag_entries.len() {
            return false;
        }
        if self.tag_entries == tag_entries {
            return true;
        }
        if !self.any_order || tag_entries.len() > 64 {
            return false;
        }
        // Each entry must pair with a distinct known entry.
        let mut used = 0u64;
        tag_entries.iter().all(|entry| {
            let found = self
                .tag_entries
                .iter()
                .enumerate()
                .find(|(i, known)| used & (1 << i) == 0 && *known == entry);
            match found {
                Some((i, _)) => {
                    used |= 1 << i;
                    true
                }
                None => false,
            }
        })
    }
}

/// Decodes the `points` of one message, remembering the last valid
/// series so that runs of one series skip parsing and validation.
struct PointDecoder<'a, 'l> {
    limits: &'l Limits,
    known: Option<KnownSeries<'a>>,
    /// True while the batch's last entry was started from `known`.
    last_entry_is_known: bool,
    /// Tag entries of the point being decoded; reused between points.
    tag_entries: Vec<&'a [u8]>,
}

impl<'a, 'l> PointDecoder<'a, 'l> {
    fn new(limits: &'l Limits) -> Self {
        PointDecoder {
            limits,
            known: None,
            last_entry_is_known: false,
            tag_entries: Vec::new(),
        }
    }

    fn decode(
        &mut self,
        body: &'a [u8],
        index: u64,
        position: u64,
        decoded: &mut DecodedMessage,
    ) -> Result<(), MalformedMessage> {
        let mut fields = PointFields::default();
        self.tag_entries.clear();
        read_point(body, &mut fields, &mut self.tag_entries)
            .map_err(|(field, e)| point_error(position, index, field, e))?;

        // Strings must be UTF-8 even in a point that is rejected later,
        // as every protobuf decoder requires.
        let known = self
            .known
            .as_ref()
            .is_some_and(|known| known.matches(fields.metric, &self.tag_entries));
        let parsed = if known {
            None
        } else {
            let metric = wire::utf8(fields.metric)
                .map_err(|e| point_error(position, index, ".metric", e))?;
            let tags = parse_tag_entries(&self.tag_entries)
                .map_err(|e| point_error(position, index, ".tags", e))?;
            Some((metric, tags))
        };
        let string_value = match fields.value {
            Some(RawValue::Str(bytes)) => Some(
                wire::utf8(bytes).map_err(|e| point_error(position, index, ".string_value", e))?,
            ),
            _ => None,
        };

        if let Some((metric, pairs)) = parsed {
            if let Err(reason) = self.limits.check_metric_name("metric", metric) {
                reject(decoded, index, reason);
                return Ok(());
            }
            let tags = TagSet::from_pairs(pairs);
            if let Err(reason) = self.limits.check_tags("tags", tags.iter()) {
                reject(decoded, index, reason);
                return Ok(());
            }
            self.known = Some(KnownSeries {
                metric_bytes: fields.metric,
                any_order: tags.len() == self.tag_entries.len(),
                tag_entries: self.tag_entries.clone(),
                metric: metric.to_owned(),
                tags,
            });
            self.last_entry_is_known = false;
        }
        let series = self.known.as_ref().expect("set above or matched");

        if let Err(reason) = check_timestamp("time_unix_nano", fields.time_ns) {
            reject(decoded, index, reason);
            return Ok(());
        }
        let value = match (fields.value, string_value) {
            (None, _) => {
                reject(
                    decoded,
                    index,
                    "value is not set; set one of double_value, int_value, bool_value or string_value"
                        .to_owned(),
                );
                return Ok(());
            }
            (Some(RawValue::Double(v)), _) => {
                if let Err(reason) = check_double_value("double_value", v) {
                    reject(decoded, index, reason);
                    return Ok(());
                }
                Value::F64(v)
            }
            (Some(RawValue::Int(v)), _) => Value::I64(v),
            (Some(RawValue::Bool(v)), _) => Value::Bool(v),
            (Some(RawValue::Str(_)), text) => {
                let text = text.expect("checked as UTF-8 above");
                if let Err(reason) = self.limits.check_string_value("string_value", text) {
                    reject(decoded, index, reason);
                    return Ok(());
                }
                Value::Str(Arc::from(text))
            }
        };

        // Consecutive points of one series share an entry, so a client that
        // sends point-per-point batches still gets runs in storage.
        if self.last_entry_is_known
            && let Some(last) = decoded.batch.series.last_mut()
            && last.first_index + last.len() as u64 == index
            && last.values.kind() == value.kind()
        {
            last.times_ns.push(fields.time_ns);
            last.values.push(value.as_ref());
            return Ok(());
        }

        let mut values = Column::empty(value.kind());
        values.push(value.as_ref());
        decoded.batch.series.push(SeriesWrite {
            metric: series.metric.clone(),
            tags: series.tags.clone(),
            first_index: index,
            times_ns: vec![fields.time_ns],
            values,
        });
        self.last_entry_is_known = true;
        Ok(())
    }
}

/// The fields of one `Point` as they were on the wire.
#[derive(Default)]
struct PointFields<'a> {
    metric: &'a [u8],
    time_ns: i64,
    value: Option<RawValue<'a>>,
}

/// Reads a `Point`'s fields; its tag map entries go to `tag_entries`. On
/// failure, returns the field that failed (such as `.metric`) and why.
fn read_point<'a>(
    body: &'a [u8],
    fields: &mut PointFields<'a>,
    tag_entries: &mut Vec<&'a [u8]>,
) -> Result<(), (&'static str, WireError)> {
    let mut reader = Reader::new(body);
    while !reader.is_empty() {
        let (field, wire_type) = reader.key().map_err(|e| ("", e))?;
        read_point_field(&mut reader, field, wire_type, fields, tag_entries).map_err(|e| {
            let name = match field {
                POINT_METRIC => ".metric",
                POINT_TIME => ".time_unix_nano",
                POINT_DOUBLE => ".double_value",
                POINT_INT => ".int_value",
                POINT_BOOL => ".bool_value",
                POINT_STRING => ".string_value",
                POINT_TAGS => ".tags",
                _ => "",
            };
            (name, e)
        })?;
    }
    Ok(())
}

fn read_point_field<'a>(
    reader: &mut Reader<'a>,
    field: u32,
    wire_type: WireType,
    fields: &mut PointFields<'a>,
    tag_entries: &mut Vec<&'a [u8]>,
) -> Result<(), WireError> {
    match field {
        POINT_METRIC => {
            wire::expect(field, wire_type, WireType::LengthDelimited, "a string")?;
            fields.metric = reader.length_delimited()?;
        }
        POINT_TIME => {
            wire::expect(field, wire_type, WireType::Varint, "an int64")?;
            fields.time_ns = reader.varint()? as i64;
        }
        POINT_DOUBLE => {
            wire::expect(field, wire_type, WireType::Fixed64, "a double")?;
            fields.value = Some(RawValue::Double(f64::from_bits(reader.fixed64()?)));
        }
        POINT_INT => {
            wire::expect(field, wire_type, WireType::Varint, "an int64")?;
            fields.value = Some(RawValue::Int(reader.varint()? as i64));
        }
        POINT_BOOL => {
            wire::expect(field, wire_type, WireType::Varint, "a bool")?;
            fields.value = Some(RawValue::Bool(reader.varint()? != 0));
        }
        POINT_STRING => {
            wire::expect(field, wire_type, WireType::LengthDelimited, "a string")?;
            fields.value = Some(RawValue::Str(reader.length_delimited()?));
        }
        POINT_TAGS => {
            wire::expect(field, wire_type, WireType::LengthDelimited, "a map entry")?;
            tag_entries.push(reader.length_delimited()?);
        }
        _ => reader.skip(field, wire_type)?,
    }
    Ok(())
}

/// Reads one entry of a `map<string, string>`; a missing key or value is
/// the empty string.
fn read_map_entry(entry: &[u8]) -> Result<(&str, &str), WireError> {
    let mut key: &[u8] = b"";
    let mut value: &[u8] = b"";
    let mut reader = Reader::new(entry);
    while !reader.is_empty() {
        let (field, wire_type) = reader.key()?;
        match field {
            ENTRY_KEY => {
                wire::expect(field, wire_type, WireType::LengthDelimited, "a string")?;
                key = reader.length_delimited()?;
            }
            ENTRY_VALUE => {
                wire::expect(field, wire_type, WireType::LengthDelimited, "a string")?;
                value = reader.length_delimited()?;
            }
            _ => reader.skip(field, wire_type)?,
        }
    }
    Ok((wire::utf8(key)?, wire::utf8(value)?))
}

fn parse_tag_entries(entries: &[&[u8]]) -> Result<Vec<(String, String)>, WireError> {
    entries
        .iter()
        .map(|entry| {
            let (key, value) = read_map_entry(entry)?;
            Ok((key.to_owned(), value.to_owned()))
        })
        .collect()
}

fn read_string(
    reader: &mut Reader<'_>,
    field: u32,
    wire_type: WireType,
) -> Result<String, WireError> {
    wire::expect(field, wire_type, WireType::LengthDelimited, "a string")?;
    Ok(wire::utf8(reader.length_delimited()?)?.to_owned())
}

/// Reads a `SeriesPoints` message. On failure, returns the field that
/// failed (such as `.tags`) and why.
fn read_series(body: &[u8]) -> Result<SeriesPoints, (&'static str, WireError)> {
    let mut entry = SeriesPoints::default();
    let mut reader = Reader::new(body);
    while !reader.is_empty() {
        let (field, wire_type) = reader.key().map_err(|e| ("", e))?;
        match field {
            SERIES_METRIC => {
                entry.metric =
                    read_string(&mut reader, field, wire_type).map_err(|e| (".metric", e))?;
            }
            SERIES_TAGS => {
                let mut read = || -> Result<(), WireError> {
                    wire::expect(field, wire_type, WireType::LengthDelimited, "a map entry")?;
                    let (key, value) = read_map_entry(reader.length_delimited()?)?;
                    entry.tags.insert(key.to_owned(), value.to_owned());
                    Ok(())
                };
                read().map_err(|e| (".tags", e))?;
            }
            SERIES_TIMES => {
                wire::extend_int64(&mut reader, field, wire_type, &mut entry.times_unix_nano)
                    .map_err(|e| (".times_unix_nano", e))?;
            }
            SERIES_DOUBLES => {
                wire::extend_double(&mut reader, field, wire_type, &mut entry.double_values)
                    .map_err(|e| (".double_values", e))?;
            }
            SERIES_INTS => {
                wire::extend_int64(&mut reader, field, wire_type, &mut entry.int_values)
                    .map_err(|e| (".int_values", e))?;
            }
            SERIES_BOOLS => {
                wire::extend_bool(&mut reader, field, wire_type, &mut entry.bool_values)
                    .map_err(|e| (".bool_values", e))?;
            }
            SERIES_STRINGS => {
                let text = read_string(&mut reader, field, wire_type)
                    .map_err(|e| (".string_values", e))?;
                entry.string_values.push(text);
            }
            _ => reader.skip(field, wire_type).map_err(|e| ("", e))?,
        }
    }
    Ok(entry)
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
    let room = MAX_LISTED_REJECTIONS.saturating_sub(decoded.rejections.len()) as u64;
    let listed = count.min(room);
    for i in 0..listed {
        reject(decoded, first_index + i, reason.to_owned());
    }
    decoded.unlisted_rejections += count - listed;
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
    if let Err(reason) = limits.check_tags(
        "series.tags",
        entry.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ) {
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
    let tags = TagSet::from_pairs(entry.tags.into_iter().collect());
    let times_ns = entry.times_unix_nano;

    // Per-point checks (NaN, string length, time) split the entry into
    // runs of valid points, so each run keeps exact stream positions.
    let values = if !entry.double_values.is_empty() {
        Column::F64(entry.double_values)
    } else if !entry.int_values.is_empty() {
        Column::I64(entry.int_values)
    } else if !entry.bool_values.is_empty() {
        Column::Bool(entry.bool_values)
    } else {
        Column::Str(entry.string_values.into_iter().map(Arc::from).collect())
    };
    let value_invalid = |i: usize| match &values {
        Column::F64(v) => v[i].is_nan(),
        Column::Str(v) => v[i].len() > limits.max_string_value_bytes,
        Column::I64(_) | Column::Bool(_) => false,
    };
    let invalid: Vec<usize> = (0..times_ns.len())
        .filter(|&i| value_invalid(i) || times_ns[i] > MAX_TIMESTAMP_NS)
        .collect();

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

    // Reasons are formatted only for the rejections a response lists.
    let reason = |i: usize| -> String {
        let value_error = match &values {
            Column::F64(v) => check_double_value(&format!("series.double_values[{i}]"), v[i]).err(),
            Column::Str(v) => limits
                .check_string_value(&format!("series.string_values[{i}]"), &v[i])
                .err(),
            Column::I64(_) | Column::Bool(_) => None,
        };
        value_error
            .or_else(|| check_timestamp(&format!("series.times_unix_nano[{i}]"), times_ns[i]).err())
            .unwrap_or_default()
    };
    for &i in &invalid {
        let index = first_index + i as u64;
        if decoded.rejections.len() < MAX_LISTED_REJECTIONS {
            reject(decoded, index, reason(i));
        } else {
            decoded.unlisted_rejections += 1;
        }
    }

    let mut run_start = 0;
    let mut boundaries = invalid;
    boundaries.push(times_ns.len());
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
    use crate::proto::v1::{Point, StreamPointsRequest, point};
    use proptest::prelude::*;
    use prost::Message;

    fn decode_structs(
        points: Vec<Point>,
        series: Vec<SeriesPoints>,
        first_index: u64,
        limits: &Limits,
    ) -> DecodedMessage {
        let bytes = StreamPointsRequest { points, series }.encode_to_vec();
        decode_message(&bytes, first_index, limits).expect("valid protobuf")
    }

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
        let decoded = decode_structs(points, vec![], 10, &Limits::default());
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
        let decoded = decode_structs(
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
        let decoded = decode_structs(vec![], vec![series], 0, &Limits::default());
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
        let decoded = decode_structs(vec![], vec![series], 0, &Limits::default());
        assert_eq!(decoded.rejections.len(), 1);
        assert!(decoded.rejections[0].reason.contains("exactly one"));
    }

    #[test]
    fn point_without_value_rejected() {
        let mut p = point("m", 1, point::Value::IntValue(1));
        p.value = None;
        let decoded = decode_structs(vec![p], vec![], 7, &Limits::default());
        assert_eq!(decoded.rejections[0].index, 7);
        assert!(decoded.rejections[0].reason.contains("value is not set"));
    }

    /// A stored point: position, metric, tags, time and value.
    type Row = (u64, String, Vec<(String, String)>, i64, String);

    /// Lists the stored point of each accepted stream position.
    fn flatten(decoded: &DecodedMessage) -> Vec<Row> {
        let mut rows = Vec::new();
        for entry in &decoded.batch.series {
            let tags: Vec<(String, String)> = entry
                .tags
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            for (i, &time_ns) in entry.times_ns.iter().enumerate() {
                rows.push((
                    entry.first_index + i as u64,
                    entry.metric.clone(),
                    tags.clone(),
                    time_ns,
                    format!("{:?}", entry.values.get(i)),
                ));
            }
        }
        rows.sort_by_key(|row| row.0);
        rows
    }

    fn value_strategy() -> impl Strategy<Value = point::Value> {
        prop_oneof![
            any::<f64>().prop_map(point::Value::DoubleValue),
            any::<i64>().prop_map(point::Value::IntValue),
            any::<bool>().prop_map(point::Value::BoolValue),
            "[a-z]{0,4}".prop_map(point::Value::StringValue),
        ]
    }

    fn point_strategy() -> impl Strategy<Value = Point> {
        (
            prop_oneof![
                Just("m".to_owned()),
                Just("n".to_owned()),
                Just("9bad".to_owned())
            ],
            prop::collection::btree_map("[ab]{0,1}", "[xy]{0,2}", 0..3),
            any::<i64>(),
            prop::option::weighted(0.9, value_strategy()),
        )
            .prop_map(|(metric, tags, time_unix_nano, value)| Point {
                metric,
                time_unix_nano,
                value,
                tags: tags.into_iter().collect(),
            })
    }

    proptest! {
        /// Every point ends up at its own position, accepted with its
        /// fields or rejected, whatever runs the decoder forms.
        #[test]
        fn points_decode_to_their_positions(
            points in prop::collection::vec(point_strategy(), 0..40),
            first_index in 0u64..1000,
        ) {
            let limits = Limits::default();
            let decoded = decode_structs(points.clone(), vec![], first_index, &limits);
            prop_assert_eq!(decoded.point_count, points.len() as u64);

            let rows = flatten(&decoded);
            let rejected: Vec<u64> = decoded.rejections.iter().map(|r| r.index).collect();
            let mut rows = rows.into_iter().peekable();
            for (i, point) in points.iter().enumerate() {
                let index = first_index + i as u64;
                let valid = limits.check_metric_name("metric", &point.metric).is_ok()
                    && !point.tags.keys().any(String::is_empty)
                    && point.time_unix_nano <= MAX_TIMESTAMP_NS
                    && match &point.value {
                        None => false,
                        Some(point::Value::DoubleValue(v)) => !v.is_nan(),
                        Some(_) => true,
                    };
                if !valid {
                    prop_assert!(rejected.contains(&index), "point {} should be rejected", index);
                    continue;
                }
                let row = rows.next().expect("an accepted point has a row");
                prop_assert_eq!(row.0, index);
                prop_assert_eq!(&row.1, &point.metric);
                let mut tags: Vec<(String, String)> =
                    point.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                tags.sort();
                prop_assert_eq!(&row.2, &tags);
                prop_assert_eq!(row.3, point.time_unix_nano);
                let expected = match point.value.clone().expect("valid") {
                    point::Value::DoubleValue(v) => format!("{:?}", crate::model::ValueRef::F64(v)),
                    point::Value::IntValue(v) => format!("{:?}", crate::model::ValueRef::I64(v)),
                    point::Value::BoolValue(v) => format!("{:?}", crate::model::ValueRef::Bool(v)),
                    point::Value::StringValue(v) => format!("{:?}", crate::model::ValueRef::Str(&v)),
                };
                prop_assert_eq!(row.4, expected);
            }
            prop_assert!(rows.next().is_none());
        }

        /// A cut or corrupted message fails with an error or decodes, and
        /// must not panic.
        #[test]
        fn damaged_messages_never_panic(
            points in prop::collection::vec(point_strategy(), 1..8),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            mask in 1u8..=255,
        ) {
            let series = SeriesPoints {
                metric: "s".into(),
                tags: [("k".to_owned(), "v".to_owned())].into(),
                times_unix_nano: vec![1, 2, 3],
                double_values: vec![1.0, 2.0, 3.0],
                ..Default::default()
            };
            let bytes = StreamPointsRequest { points, series: vec![series] }.encode_to_vec();
            let limits = Limits::default();
            let _ = decode_message(&bytes[..cut.index(bytes.len())], 0, &limits);
            let mut flipped = bytes.clone();
            let at = flip.index(flipped.len());
            flipped[at] ^= mask;
            let _ = decode_message(&flipped, 0, &limits);
        }
    }

    #[test]
    fn decode_rejects_invalid_utf8_tag() {
        let mut bytes = StreamPointsRequest {
            points: vec![
                point("m", 1, point::Value::DoubleValue(1.0)),
                point("m", 2, point::Value::DoubleValue(2.0)),
            ],
            series: vec![],
        }
        .encode_to_vec();
        // The last byte of the message is the tag value "a" of points[1].
        let last = bytes.len() - 1;
        assert_eq!(bytes[last], b'a');
        bytes[last] = 0xff;
        let error = decode_message(&bytes, 0, &Limits::default()).unwrap_err();
        assert_eq!(error.field, "points[1].tags");
        assert_eq!(error.source, WireError::InvalidUtf8);
        assert!(
            error.to_string().starts_with(DECODE_ERROR_PREFIX),
            "{error}"
        );
    }

    #[test]
    fn unknown_fields_are_skipped_and_later_fields_win() {
        let mut body = Point {
            metric: "first".into(),
            time_unix_nano: 5,
            value: Some(point::Value::IntValue(1)),
            tags: Default::default(),
        }
        .encode_to_vec();
        // Field 15 (varint 9), then metric "m" and a double value again.
        body.extend_from_slice(&[15 << 3, 9, 0x0a, 1, b'm', 3 << 3 | 1]);
        body.extend_from_slice(&2.5f64.to_le_bytes());
        let mut message = vec![0x0a, body.len() as u8];
        message.extend_from_slice(&body);

        let decoded = decode_message(&message, 0, &Limits::default()).unwrap();
        assert!(decoded.rejections.is_empty(), "{:?}", decoded.rejections);
        let entry = &decoded.batch.series[0];
        assert_eq!(entry.metric, "m");
        assert_eq!(entry.times_ns, vec![5]);
        assert_eq!(entry.values, Column::F64(vec![2.5]));
    }

    #[test]
    fn run_breaks_at_rejected_point() {
        let mut points: Vec<Point> = (0..4)
            .map(|i| point("m", i, point::Value::DoubleValue(i as f64)))
            .collect();
        points[2].value = Some(point::Value::DoubleValue(f64::NAN));
        let decoded = decode_structs(points, vec![], 0, &Limits::default());
        let firsts: Vec<u64> = decoded.batch.series.iter().map(|s| s.first_index).collect();
        assert_eq!(firsts, vec![0, 3]);
        assert_eq!(decoded.rejections[0].index, 2);
        assert_eq!(decoded.batch.series[1].tags, decoded.batch.series[0].tags);
    }

    #[test]
    fn known_series_matches_reordered_tags() {
        let entries: [&[u8]; 3] = [b"a", b"b", b"c"];
        let known = KnownSeries {
            metric_bytes: b"m",
            tag_entries: entries.to_vec(),
            any_order: true,
            metric: "m".into(),
            tags: TagSet::default(),
        };
        assert!(known.matches(b"m", &[b"c", b"a", b"b"]));
        assert!(!known.matches(b"m", &[b"a", b"a", b"b"]));
        assert!(!known.matches(b"m", &[b"a", b"b"]));
        assert!(!known.matches(b"n", &[b"a", b"b", b"c"]));

        let repeated_keys = KnownSeries {
            any_order: false,
            ..known
        };
        assert!(repeated_keys.matches(b"m", &[b"a", b"b", b"c"]));
        assert!(!repeated_keys.matches(b"m", &[b"c", b"a", b"b"]));
    }

    #[test]
    fn rejections_past_the_listed_ones_are_counted() {
        let no_values = SeriesPoints {
            metric: "m".into(),
            times_unix_nano: (0..1000).collect(),
            ..Default::default()
        };
        let decoded = decode_structs(vec![], vec![no_values], 0, &Limits::default());
        assert_eq!(decoded.rejections.len(), MAX_LISTED_REJECTIONS);
        assert_eq!(decoded.unlisted_rejections, 900);
        assert_eq!(decoded.rejections[99].index, 99);

        let mut values: Vec<f64> = (0..1000).map(f64::from).collect();
        for value in values.iter_mut().step_by(2) {
            *value = f64::NAN;
        }
        let every_other_nan = SeriesPoints {
            metric: "m".into(),
            times_unix_nano: (0..1000).collect(),
            double_values: values,
            ..Default::default()
        };
        let decoded = decode_structs(vec![], vec![every_other_nan], 0, &Limits::default());
        assert_eq!(decoded.rejections.len(), MAX_LISTED_REJECTIONS);
        assert_eq!(decoded.unlisted_rejections, 400);
        assert!(decoded.rejections[0].reason.contains("double_values[0]"));
        assert_eq!(decoded.batch.point_count(), 500);
    }
}
