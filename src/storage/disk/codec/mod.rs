//! Column codecs for block chunks: delta-of-delta or frame-of-reference
//! timestamps, scaled-decimal, Gorilla XOR or byte-plane floats, delta or
//! frame-of-reference integers, bit-packed bools and dictionary strings. The block writer in `super::block` calls
//! [`encode_chunk`] once per series and the scan path calls
//! [`decode_chunk`]; nothing here does I/O.
//!
//! Chunk layout: the timestamp section's length as a varint, the
//! timestamp section (see [`timestamps`]), one [`ValueEncoding`] byte and
//! the value section. The point count is stored by the caller.
//!
//! The format has no version number: the first byte of each section
//! names its encoding, and new encodings get new byte values, so chunks
//! written by older releases still decode. The writer no longer produces
//! [`ValueEncoding::Decimal`] and [`ValueEncoding::PackedDeltas`], and
//! picks the delta-of-delta timestamp layout only where it is smaller.

pub mod bits;
pub mod bools;
pub mod gorilla;
pub mod ints;
pub mod planes;
pub mod strings;
pub mod timestamps;
pub mod varint;

use crate::model::{Column, ColumnSlice, TimestampNs, ValueKind};

use varint::{ByteReader, put_u64};

/// Errors of decoding stored bytes. Encoding cannot fail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodecError {
    #[error("{what} is truncated: input ends after {len} bytes")]
    Truncated { what: &'static str, len: usize },

    #[error("{what} is invalid: {detail}")]
    Invalid { what: &'static str, detail: String },
}

/// Encoding of a chunk's value section, stored as its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ValueEncoding {
    /// Doubles in the Gorilla XOR codec.
    Gorilla = 1,
    /// Doubles that are exact decimals with at most
    /// [`MAX_DECIMAL_DIGITS`] fraction digits: one byte of digit count,
    /// then the values times `10^digits` as packed integer deltas.
    Decimal = 2,
    /// Integers as zigzag varint deltas.
    VarintDeltas = 3,
    /// Integers as bit-packed zigzag deltas.
    PackedDeltas = 4,
    /// Bools, one bit each.
    BitPacked = 5,
    /// Strings through a dictionary.
    Dictionary = 6,
    /// Doubles as 8 little-endian bytes each, for data that the Gorilla
    /// encoding would enlarge.
    RawF64 = 7,
    /// Integers in frame-of-reference frames, see [`ints`].
    ReferenceFrames = 8,
    /// Doubles that are exact decimals: one byte of digit count, then the
    /// values times `10^digits` in frame-of-reference frames.
    DecimalFrames = 9,
    /// Doubles as byte planes, see [`planes`].
    BytePlanes = 10,
}

impl ValueEncoding {
    fn from_byte(byte: u8) -> Result<ValueEncoding, CodecError> {
        Ok(match byte {
            1 => ValueEncoding::Gorilla,
            2 => ValueEncoding::Decimal,
            3 => ValueEncoding::VarintDeltas,
            4 => ValueEncoding::PackedDeltas,
            5 => ValueEncoding::BitPacked,
            6 => ValueEncoding::Dictionary,
            7 => ValueEncoding::RawF64,
            8 => ValueEncoding::ReferenceFrames,
            9 => ValueEncoding::DecimalFrames,
            10 => ValueEncoding::BytePlanes,
            other => {
                return Err(CodecError::Invalid {
                    what: "value encoding",
                    detail: format!("unknown encoding byte {other}"),
                });
            }
        })
    }

    fn kind(self) -> ValueKind {
        match self {
            ValueEncoding::Gorilla
            | ValueEncoding::Decimal
            | ValueEncoding::RawF64
            | ValueEncoding::DecimalFrames
            | ValueEncoding::BytePlanes => ValueKind::F64,
            ValueEncoding::VarintDeltas
            | ValueEncoding::PackedDeltas
            | ValueEncoding::ReferenceFrames => ValueKind::I64,
            ValueEncoding::BitPacked => ValueKind::Bool,
            ValueEncoding::Dictionary => ValueKind::Str,
        }
    }
}

/// Most fraction digits the decimal float encoding tries.
pub const MAX_DECIMAL_DIGITS: usize = 9;

/// Powers of ten up to 10^MAX_DECIMAL_DIGITS; each is an exact double.
const POWERS_OF_TEN: [f64; MAX_DECIMAL_DIGITS + 1] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// Largest magnitude a scaled decimal may have: integers up to 2^53 are
/// exact doubles.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// Appends one chunk with the given points to `out`.
pub fn encode_chunk(times_ns: &[TimestampNs], values: ColumnSlice<'_>, out: &mut Vec<u8>) {
    debug_assert_eq!(times_ns.len(), values.len());
    let mut times = Vec::with_capacity(times_ns.len() / 8 + 16);
    timestamps::encode(times_ns, &mut times);
    put_u64(out, times.len() as u64);
    out.extend_from_slice(&times);
    encode_values(values, out);
}

/// Decodes a chunk of `count` points whose values have `kind`.
pub fn decode_chunk(
    data: &[u8],
    count: usize,
    kind: ValueKind,
) -> Result<(Vec<TimestampNs>, Column), CodecError> {
    let mut reader = ByteReader::new(data);
    let times = reader.len_prefixed("timestamp section")?;
    let times = timestamps::decode(times, count)?;
    let encoding = ValueEncoding::from_byte(reader.u8("value encoding")?)?;
    if encoding.kind() != kind {
        return Err(CodecError::Invalid {
            what: "value encoding",
            detail: format!(
                "encoding {encoding:?} holds {} values, expected {}",
                encoding.kind().name(),
                kind.name()
            ),
        });
    }
    let rest = reader.bytes(reader.remaining(), "value section")?;
    let values = decode_values(encoding, rest, count)?;
    Ok((times, values))
}

fn encode_values(values: ColumnSlice<'_>, out: &mut Vec<u8>) {
    match values {
        ColumnSlice::F64(values) => encode_floats(values, out),
        ColumnSlice::I64(values) => {
            let mut varints = Vec::new();
            ints::encode_varint_deltas(values, &mut varints);
            let mut frames = Vec::new();
            ints::encode_reference_frames(values, &mut frames);
            if frames.len() < varints.len() {
                out.push(ValueEncoding::ReferenceFrames as u8);
                out.extend_from_slice(&frames);
            } else {
                out.push(ValueEncoding::VarintDeltas as u8);
                out.extend_from_slice(&varints);
            }
        }
        ColumnSlice::Bool(values) => {
            out.push(ValueEncoding::BitPacked as u8);
            bools::encode(values, out);
        }
        ColumnSlice::Str(values) => {
            out.push(ValueEncoding::Dictionary as u8);
            strings::encode(values, out);
        }
    }
}

/// Gorilla output per value above which [`encode_floats`] also tries
/// byte planes. Below it the values share most bits with their
/// predecessors, so byte planes are unlikely to be smaller and the zstd
/// pass is skipped to save encode time.
const TRY_PLANES_ABOVE_BYTES_PER_VALUE: usize = 2;

/// Writes doubles in the smallest of four encodings: decimal when every
/// value is an exact decimal, Gorilla, byte planes or raw bytes.
fn encode_floats(values: &[f64], out: &mut Vec<u8>) {
    let mut gorilla_bytes = Vec::new();
    gorilla::encode(values, &mut gorilla_bytes);
    if let Some((digits, scaled)) = scale_to_decimals(values) {
        let mut decimal_bytes = vec![digits as u8];
        ints::encode_reference_frames(&scaled, &mut decimal_bytes);
        if decimal_bytes.len() < gorilla_bytes.len() {
            out.push(ValueEncoding::DecimalFrames as u8);
            out.extend_from_slice(&decimal_bytes);
            return;
        }
    }

    let mut best = (ValueEncoding::Gorilla, gorilla_bytes);
    if best.1.len() > values.len() * TRY_PLANES_ABOVE_BYTES_PER_VALUE {
        let mut plane_bytes = Vec::new();
        planes::encode(values, &mut plane_bytes);
        if plane_bytes.len() < best.1.len() {
            best = (ValueEncoding::BytePlanes, plane_bytes);
        }
    }
    if best.1.len() > values.len() * 8 {
        out.push(ValueEncoding::RawF64 as u8);
        out.reserve(values.len() * 8);
        for value in values {
            out.extend_from_slice(&value.to_le_bytes());
        }
        return;
    }
    out.push(best.0 as u8);
    out.extend_from_slice(&best.1);
}

/// Finds the fewest fraction digits at which every value is `n / 10^d`
/// for an integer `n` and that division returns the same bits. Returns
/// the digits and the integers.
fn scale_to_decimals(values: &[f64]) -> Option<(usize, Vec<i64>)> {
    if values.is_empty() {
        return None;
    }
    let mut scaled = Vec::with_capacity(values.len());
    'digits: for (digits, &power) in POWERS_OF_TEN.iter().enumerate() {
        scaled.clear();
        for &value in values {
            let candidate = (value * power).round();
            // Also rejects NaN and the infinities.
            if candidate.abs().partial_cmp(&MAX_EXACT_INTEGER) != Some(std::cmp::Ordering::Less) {
                continue 'digits;
            }
            let integer = candidate as i64;
            if (integer as f64 / power).to_bits() != value.to_bits() {
                continue 'digits;
            }
            scaled.push(integer);
        }
        return Some((digits, scaled));
    }
    None
}

fn decode_values(encoding: ValueEncoding, data: &[u8], count: usize) -> Result<Column, CodecError> {
    Ok(match encoding {
        ValueEncoding::Gorilla => Column::F64(gorilla::decode(data, count)?),
        ValueEncoding::Decimal | ValueEncoding::DecimalFrames => {
            let mut reader = ByteReader::new(data);
            let digits = usize::from(reader.u8("decimal digits")?);
            let power = *POWERS_OF_TEN
                .get(digits)
                .ok_or_else(|| CodecError::Invalid {
                    what: "decimal float column",
                    detail: format!("{digits} fraction digits is over {MAX_DECIMAL_DIGITS}"),
                })?;
            let rest = reader.bytes(reader.remaining(), "decimal values")?;
            let mut values = Vec::with_capacity(count);
            if encoding == ValueEncoding::Decimal {
                ints::decode_packed_deltas_with(rest, count, &mut values, |n| n as f64 / power)?;
            } else {
                let mut reader = ByteReader::new(rest);
                ints::decode_reference_frames_with(&mut reader, count, &mut values, |n| {
                    n as f64 / power
                })?;
            }
            Column::F64(values)
        }
        ValueEncoding::BytePlanes => Column::F64(planes::decode(data, count)?),
        ValueEncoding::RawF64 => {
            if data.len() != count * 8 {
                return Err(CodecError::Invalid {
                    what: "raw float column",
                    detail: format!("{} bytes for {count} values", data.len()),
                });
            }
            Column::F64(
                data.chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                    .collect(),
            )
        }
        ValueEncoding::VarintDeltas => Column::I64(ints::decode_varint_deltas(data, count)?),
        ValueEncoding::PackedDeltas => Column::I64(ints::decode_packed_deltas(data, count)?),
        ValueEncoding::ReferenceFrames => Column::I64(ints::decode_reference_frames(data, count)?),
        ValueEncoding::BitPacked => Column::Bool(bools::decode(data, count)?),
        ValueEncoding::Dictionary => Column::Str(strings::decode(data, count)?),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;

    fn chunk_round_trip(times: &[i64], values: Column) -> (Vec<i64>, Column) {
        let mut out = Vec::new();
        encode_chunk(times, values.as_slice(), &mut out);
        decode_chunk(&out, times.len(), values.kind()).unwrap()
    }

    fn float_bits(column: &Column) -> Vec<u64> {
        match column {
            Column::F64(values) => values.iter().map(|v| v.to_bits()).collect(),
            other => panic!("expected a float column, got {:?}", other.kind()),
        }
    }

    /// Doubles of every class: finite, ±0, ±Inf, subnormals and short
    /// decimals.
    fn any_double() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE),
            (-1_000_000i64..1_000_000).prop_map(|n| n as f64 / 100.0),
        ]
    }

    /// Timestamps that are sorted with small jitter, arbitrary, or at the
    /// edges of `i64`.
    fn any_times(max_len: usize) -> impl Strategy<Value = Vec<i64>> {
        prop_oneof![
            prop::collection::vec(any::<i64>(), 0..max_len),
            (
                any::<i64>(),
                prop::collection::vec(-1_000i64..1_000, 0..max_len)
            )
                .prop_map(|(start, jitter)| {
                    jitter
                        .iter()
                        .enumerate()
                        .map(|(i, j)| {
                            start
                                .wrapping_add(i as i64 * 10_000_000_000)
                                .wrapping_add(*j)
                        })
                        .collect()
                }),
            prop::collection::vec(
                prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0i64), Just(-1i64)],
                0..max_len
            ),
        ]
    }

    proptest! {
        #[test]
        fn timestamps_round_trip(times in any_times(300)) {
            let mut out = Vec::new();
            timestamps::encode(&times, &mut out);
            prop_assert_eq!(timestamps::decode(&out, times.len()).unwrap(), times);
        }

        #[test]
        fn float_chunks_round_trip_bit_exact(
            values in prop::collection::vec(any_double(), 0..300),
            start in any::<i64>(),
        ) {
            let times: Vec<i64> = (0..values.len() as i64).map(|i| start.wrapping_add(i)).collect();
            let column = Column::F64(values);
            let (decoded_times, decoded) = chunk_round_trip(&times, column.clone());
            prop_assert_eq!(decoded_times, times);
            prop_assert_eq!(float_bits(&decoded), float_bits(&column));
        }

        #[test]
        fn int_chunks_round_trip(
            values in prop::collection::vec(prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), -3i64..3], 0..300),
            times in any_times(1),
        ) {
            let start = times.first().copied().unwrap_or(-7);
            let times: Vec<i64> = (0..values.len() as i64).map(|i| start.wrapping_sub(i * 1_000_000_007)).collect();
            let column = Column::I64(values);
            let (decoded_times, decoded) = chunk_round_trip(&times, column.clone());
            prop_assert_eq!(decoded_times, times);
            prop_assert_eq!(decoded, column);
        }

        #[test]
        fn bool_and_string_chunks_round_trip(
            flags in prop::collection::vec(any::<bool>(), 0..300),
            words in prop::collection::vec("[a-c]{0,3}|\\PC{0,12}", 0..300),
        ) {
            let times: Vec<i64> = (0..flags.len() as i64).map(|i| -i * 3).collect();
            let column = Column::Bool(flags);
            prop_assert_eq!(chunk_round_trip(&times, column.clone()).1, column);

            let times: Vec<i64> = (0..words.len() as i64).collect();
            let column = Column::Str(words.into_iter().map(Arc::from).collect());
            prop_assert_eq!(chunk_round_trip(&times, column.clone()).1, column);
        }

        #[test]
        fn truncated_chunks_fail_or_decode_without_panic(
            values in prop::collection::vec(any_double(), 1..100),
            cut in any::<prop::sample::Index>(),
        ) {
            let times: Vec<i64> = (0..values.len() as i64).collect();
            let mut out = Vec::new();
            encode_chunk(&times, ColumnSlice::F64(&values), &mut out);
            let cut = cut.index(out.len());
            let _ = decode_chunk(&out[..cut], times.len(), ValueKind::F64);
        }
    }

    #[test]
    fn decimals_pick_decimal_encoding() {
        let values: Vec<f64> = (0..1000)
            .map(|i| 20.0 + ((i * 7) % 11) as f64 / 10.0)
            .collect();
        let mut out = Vec::new();
        encode_values(ColumnSlice::F64(&values), &mut out);
        assert_eq!(out[0], ValueEncoding::DecimalFrames as u8);
        assert!(
            out.len() < 1000,
            "{} bytes for 1000 one-digit decimals",
            out.len()
        );
    }

    #[test]
    fn incompressible_doubles_are_stored_raw() {
        let values: Vec<f64> = (0..100u64)
            .map(|i| f64::from_bits(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 2))
            .collect();
        let mut out = Vec::new();
        encode_values(ColumnSlice::F64(&values), &mut out);
        assert_eq!(out[0], ValueEncoding::RawF64 as u8);
        assert_eq!(out.len(), 1 + 800);
        assert_eq!(
            decode_values(ValueEncoding::RawF64, &out[1..], 100).unwrap(),
            Column::F64(values)
        );
    }

    #[test]
    fn negative_zero_is_not_a_decimal() {
        assert!(scale_to_decimals(&[1.0, -0.0]).is_none());
        assert_eq!(
            scale_to_decimals(&[1.5, -2.25]).unwrap(),
            (2, vec![150, -225])
        );
    }

    /// Returns the value encoding byte of a chunk of `values`.
    fn chosen_encoding(values: ColumnSlice<'_>) -> u8 {
        let mut out = Vec::new();
        encode_values(values, &mut out);
        out[0]
    }

    #[test]
    fn each_new_encoding_round_trips_edge_cases() {
        let random: Vec<f64> = (0..600u64)
            .map(|i| f64::from_bits(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 12) * 1e300)
            .collect();
        let float_cases: Vec<Vec<f64>> = vec![
            vec![],
            vec![-0.0],
            vec![f64::from_bits(1)],
            vec![0.25],
            vec![
                -0.0,
                0.0,
                f64::from_bits(1),
                f64::from_bits(0x000F_FFFF_FFFF_FFFF),
            ],
            random.clone(),
            random.iter().map(|v| -v).collect(),
            (0..600).map(|i| i as f64 * 0.01 - 3.0).collect(),
        ];
        for values in float_cases {
            let times: Vec<i64> = (0..values.len() as i64).map(|i| i * 1_000).collect();
            let column = Column::F64(values.clone());
            let (decoded_times, decoded) = chunk_round_trip(&times, column.clone());
            assert_eq!(decoded_times, times);
            assert_eq!(float_bits(&decoded), float_bits(&column), "{values:?}");
        }

        let int_cases: Vec<Vec<i64>> = vec![
            vec![],
            vec![i64::MIN],
            vec![i64::MAX],
            vec![i64::MIN, i64::MAX, 0, i64::MIN, -1],
            (0..600).map(|i| i64::MAX - i * i).collect(),
            (0..600).map(|i| i * 97 % 89).collect(),
        ];
        for values in int_cases {
            let times: Vec<i64> = (0..values.len() as i64).map(|i| i64::MIN + i).collect();
            let column = Column::I64(values);
            assert_eq!(chunk_round_trip(&times, column.clone()), (times, column));
        }
    }

    #[test]
    fn encodings_are_chosen_by_shape() {
        let decimals: Vec<f64> = (0..600).map(|i| 20.0 + (i % 101) as f64 / 100.0).collect();
        assert_eq!(
            chosen_encoding(ColumnSlice::F64(&decimals)),
            ValueEncoding::DecimalFrames as u8
        );
        let random: Vec<f64> = (0..600u64)
            .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / 1e3)
            .collect();
        assert_eq!(
            chosen_encoding(ColumnSlice::F64(&random)),
            ValueEncoding::BytePlanes as u8
        );
        let steps: Vec<f64> = (0..600).map(|i| (i / 50) as f64 / 3.0).collect();
        assert_eq!(
            chosen_encoding(ColumnSlice::F64(&steps)),
            ValueEncoding::Gorilla as u8
        );
        let counter: Vec<i64> = (0..600).map(|i| i * 50 + i % 13).collect();
        assert_eq!(
            chosen_encoding(ColumnSlice::I64(&counter)),
            ValueEncoding::ReferenceFrames as u8
        );
        assert_eq!(
            chosen_encoding(ColumnSlice::I64(&[5])),
            ValueEncoding::VarintDeltas as u8
        );
    }

    #[test]
    fn old_value_encodings_still_decode() {
        let scaled: Vec<i64> = (0..300).map(|i| 2_000 + i % 101).collect();
        let mut decimal = vec![2u8];
        ints::encode_packed_deltas(&scaled, &mut decimal);
        let expected: Vec<f64> = scaled.iter().map(|&n| n as f64 / 100.0).collect();
        assert_eq!(
            decode_values(ValueEncoding::Decimal, &decimal, 300).unwrap(),
            Column::F64(expected)
        );
        let mut packed = Vec::new();
        ints::encode_packed_deltas(&scaled, &mut packed);
        assert_eq!(
            decode_values(ValueEncoding::PackedDeltas, &packed, 300).unwrap(),
            Column::I64(scaled)
        );
    }

    #[test]
    fn mismatched_kind_is_rejected() {
        let mut out = Vec::new();
        encode_chunk(&[1], ColumnSlice::I64(&[5]), &mut out);
        assert!(decode_chunk(&out, 1, ValueKind::F64).is_err());
    }
}
