//! Integer codecs for integer columns, the scaled values of the decimal
//! float codec and timestamp deltas: delta + zigzag varints, bit-packed
//! zigzag deltas, and frame-of-reference packing.
//!
//! Packed layout (written by blocks before frame-of-reference packing
//! existed, still read): the first value as a zigzag varint, then the
//! deltas in frames of [`FRAME_LEN`] (the last frame may be shorter). Each
//! frame starts with one byte, the bit width of its largest zigzag delta,
//! and then contains every delta in that many bits.
//!
//! Frame-of-reference layout: the first value as a zigzag varint, then
//! the later values in frames of [`FRAME_LEN`]. Each frame starts with a
//! header byte whose low 7 bits are the bit width `w` (at most 64) and
//! whose top bit marks the frame's content: set for the values
//! themselves, clear for their deltas from the previous value. A zigzag
//! varint `reference` follows, the smallest number of the frame, then
//! every number minus `reference` in `w` bits. The encoder picks per
//! frame whichever of the two takes fewer bytes, so a counter (steady
//! deltas) and a noisy gauge (values in a narrow band) both pack to the
//! bits of their spread. All arithmetic wraps.

use super::CodecError;
use super::bits::{BitReader, BitWriter};
use super::varint::{ByteReader, put_i64, unzigzag, zigzag};

/// Deltas per bit-packed frame.
pub const FRAME_LEN: usize = 128;

/// Appends `values` as a zigzag varint of the first value and of each
/// delta.
pub fn encode_varint_deltas(values: &[i64], out: &mut Vec<u8>) {
    let mut previous = 0i64;
    for &value in values {
        put_i64(out, value.wrapping_sub(previous));
        previous = value;
    }
}

pub fn decode_varint_deltas(data: &[u8], count: usize) -> Result<Vec<i64>, CodecError> {
    let mut reader = ByteReader::new(data);
    let mut values = Vec::with_capacity(count);
    let mut previous = 0i64;
    for _ in 0..count {
        previous = previous.wrapping_add(reader.varint_i64("integer column")?);
        values.push(previous);
    }
    Ok(values)
}

/// Appends `values` in the packed layout described in the module docs.
pub fn encode_packed_deltas(values: &[i64], out: &mut Vec<u8>) {
    let Some(&first) = values.first() else {
        return;
    };
    put_i64(out, first);
    let deltas: Vec<u64> = values
        .windows(2)
        .map(|pair| zigzag(pair[1].wrapping_sub(pair[0])))
        .collect();
    for frame in deltas.chunks(FRAME_LEN) {
        let widest = frame.iter().fold(0u64, |acc, &d| acc | d);
        let width = 64 - widest.leading_zeros();
        out.push(width as u8);
        let mut writer = BitWriter::with_capacity(frame.len() * width as usize / 8 + 1);
        for &delta in frame {
            writer.write_bits(delta, width);
        }
        out.extend_from_slice(&writer.finish());
    }
}

pub fn decode_packed_deltas(data: &[u8], count: usize) -> Result<Vec<i64>, CodecError> {
    let mut values = Vec::with_capacity(count);
    decode_packed_deltas_with(data, count, &mut values, |value| value)?;
    Ok(values)
}

/// Decodes `count` values written by [`encode_packed_deltas`] and appends
/// `convert(value)` for each to `out`, so a caller that wants another
/// type needs no intermediate vector. On error `out` may hold some of the
/// values.
pub fn decode_packed_deltas_with<T: Copy>(
    data: &[u8],
    count: usize,
    out: &mut Vec<T>,
    convert: impl Fn(i64) -> T,
) -> Result<(), CodecError> {
    if count == 0 {
        return Ok(());
    }
    out.reserve(count);
    let mut reader = ByteReader::new(data);
    let mut previous = reader.varint_i64("packed integer column")?;
    out.push(convert(previous));
    let mut left = count - 1;
    while left > 0 {
        let frame_len = left.min(FRAME_LEN);
        let width = u32::from(reader.u8("packed integer frame width")?);
        if width > 64 {
            return Err(CodecError::Invalid {
                what: "packed integer frame",
                detail: format!("bit width {width} is over 64"),
            });
        }
        let frame_bytes = (frame_len * width as usize).div_ceil(8);
        let frame = reader.bytes(frame_bytes, "packed integer frame")?;
        unpack_frame(frame, width, frame_len, &mut previous, out, &convert)?;
        left -= frame_len;
    }
    Ok(())
}

/// Widest field that [`unpack_frame`] reads with one 8-byte load, because
/// a field may start at any of the 8 bit positions of its first byte.
const MAX_WORD_FIELD_BITS: u32 = 56;

/// Adds the `len` deltas of one frame to `previous` and appends each
/// running value. `frame` contains exactly the frame's bytes.
fn unpack_frame<T: Copy>(
    frame: &[u8],
    width: u32,
    len: usize,
    previous: &mut i64,
    out: &mut Vec<T>,
    convert: &impl Fn(i64) -> T,
) -> Result<(), CodecError> {
    if width == 0 {
        let value = convert(*previous);
        out.extend((0..len).map(|_| value));
        return Ok(());
    }
    if width > MAX_WORD_FIELD_BITS {
        let mut bits = BitReader::new(frame);
        for _ in 0..len {
            *previous = previous.wrapping_add(unzigzag(bits.read_bits(width)?));
            out.push(convert(*previous));
        }
        return Ok(());
    }
    // Each field is read from the big-endian 8-byte word that starts at
    // its first byte, which avoids the bit-by-bit buffer of `BitReader`.
    // A range's `map` has an exact length, so `extend` reserves once and
    // stores without a capacity check per value.
    let mask = (1u64 << width) - 1;
    out.extend((0..len).map(|index| {
        let bit = index * width as usize;
        let word = load_be_word(frame, bit / 8);
        let shift = 64 - (bit % 8) as u32 - width;
        *previous = previous.wrapping_add(unzigzag((word >> shift) & mask));
        convert(*previous)
    }));
    Ok(())
}

/// Reads 8 bytes big-endian from `offset`, taking bytes past the end of
/// `bytes` as zero.
#[inline(always)]
fn load_be_word(bytes: &[u8], offset: usize) -> u64 {
    match bytes.get(offset..offset + 8) {
        Some(word) => u64::from_be_bytes(word.try_into().expect("8 bytes")),
        None => {
            let mut word = [0u8; 8];
            let tail = &bytes[offset.min(bytes.len())..];
            word[..tail.len()].copy_from_slice(tail);
            u64::from_be_bytes(word)
        }
    }
}

/// Header bit of a frame-of-reference frame that holds values, not
/// deltas.
const VALUES_FRAME_FLAG: u8 = 0x80;

/// Appends `values` in the frame-of-reference layout of the module docs.
pub fn encode_reference_frames(values: &[i64], out: &mut Vec<u8>) {
    let Some(&first) = values.first() else {
        return;
    };
    put_i64(out, first);
    let mut numbers = Vec::with_capacity(FRAME_LEN);
    for start in (1..values.len()).step_by(FRAME_LEN) {
        let end = (start + FRAME_LEN).min(values.len());
        let frame = &values[start..end];
        let deltas = values[start - 1..end]
            .windows(2)
            .map(|pair| pair[1].wrapping_sub(pair[0]));
        let (delta_min, delta_width) = reference_and_width(deltas.clone());
        let (value_min, value_width) = reference_and_width(frame.iter().copied());
        let delta_cost = frame_bytes(frame.len(), delta_min, delta_width);
        let value_cost = frame_bytes(frame.len(), value_min, value_width);

        numbers.clear();
        let (header, reference, width) = if value_cost < delta_cost {
            numbers.extend_from_slice(frame);
            (
                VALUES_FRAME_FLAG | value_width as u8,
                value_min,
                value_width,
            )
        } else {
            numbers.extend(deltas);
            (delta_width as u8, delta_min, delta_width)
        };
        out.push(header);
        put_i64(out, reference);
        let mut writer = BitWriter::with_capacity(frame.len() * width as usize / 8 + 1);
        for &number in &numbers {
            writer.write_bits(number.wrapping_sub(reference) as u64, width);
        }
        out.extend_from_slice(&writer.finish());
    }
}

/// Returns the minimum of `numbers` and the bit width of their spread,
/// the largest offset from that minimum.
fn reference_and_width(numbers: impl Iterator<Item = i64> + Clone) -> (i64, u32) {
    let min = numbers.clone().min().unwrap_or(0);
    let spread = numbers
        .map(|n| n.wrapping_sub(min) as u64)
        .max()
        .unwrap_or(0);
    (min, 64 - spread.leading_zeros())
}

fn frame_bytes(len: usize, reference: i64, width: u32) -> usize {
    let mut varint = Vec::with_capacity(10);
    put_i64(&mut varint, reference);
    1 + varint.len() + (len * width as usize).div_ceil(8)
}

/// Decodes `count` values in the frame-of-reference layout.
pub fn decode_reference_frames(data: &[u8], count: usize) -> Result<Vec<i64>, CodecError> {
    let mut reader = ByteReader::new(data);
    decode_reference_frames_from(&mut reader, count)
}

/// Decodes `count` values in the frame-of-reference layout from `reader`
/// and leaves it after the last frame.
pub fn decode_reference_frames_from(
    reader: &mut ByteReader<'_>,
    count: usize,
) -> Result<Vec<i64>, CodecError> {
    let mut values = Vec::with_capacity(count);
    decode_reference_frames_with(reader, count, &mut values, |value| value)?;
    Ok(values)
}

/// Decodes `count` values in the frame-of-reference layout from `reader`
/// and appends `convert(value)` for each to `out`. On error `out` may
/// hold some of the values.
pub fn decode_reference_frames_with<T: Copy>(
    reader: &mut ByteReader<'_>,
    count: usize,
    out: &mut Vec<T>,
    convert: impl Fn(i64) -> T,
) -> Result<(), CodecError> {
    if count == 0 {
        return Ok(());
    }
    out.reserve(count);
    let mut previous = reader.varint_i64("reference-frame integer column")?;
    out.push(convert(previous));

    let mut left = count - 1;
    while left > 0 {
        let frame_len = left.min(FRAME_LEN);
        let header = reader.u8("reference frame header")?;
        let width = u32::from(header & !VALUES_FRAME_FLAG);
        if width > 64 {
            return Err(CodecError::Invalid {
                what: "reference frame",
                detail: format!("bit width {width} is over 64"),
            });
        }
        let reference = reader.varint_i64("reference frame minimum")?;
        let frame_bytes = (frame_len * width as usize).div_ceil(8);
        let frame = reader.bytes(frame_bytes, "reference frame")?;
        let holds_values = header & VALUES_FRAME_FLAG != 0;

        if width == 0 {
            if holds_values {
                previous = reference;
                let value = convert(previous);
                out.extend((0..frame_len).map(|_| value));
            } else {
                out.extend((0..frame_len).map(|_| {
                    previous = previous.wrapping_add(reference);
                    convert(previous)
                }));
            }
        } else if width > MAX_WORD_FIELD_BITS {
            let mut bits = BitReader::new(frame);
            for _ in 0..frame_len {
                let number = reference.wrapping_add(bits.read_bits(width)? as i64);
                previous = if holds_values {
                    number
                } else {
                    previous.wrapping_add(number)
                };
                out.push(convert(previous));
            }
        } else {
            // One 8-byte load per field, as in `unpack_frame`.
            let mask = (1u64 << width) - 1;
            let field = |index: usize| {
                let bit = index * width as usize;
                let word = load_be_word(frame, bit / 8);
                let shift = 64 - (bit % 8) as u32 - width;
                reference.wrapping_add(((word >> shift) & mask) as i64)
            };
            if holds_values {
                out.extend((0..frame_len).map(|index| convert(field(index))));
                previous = field(frame_len - 1);
            } else {
                out.extend((0..frame_len).map(|index| {
                    previous = previous.wrapping_add(field(index));
                    convert(previous)
                }));
            }
        }
        left -= frame_len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_deltas_round_trip_extremes() {
        let values = vec![0, i64::MAX, i64::MIN, -1, 1, i64::MIN, i64::MAX];
        let mut out = Vec::new();
        encode_varint_deltas(&values, &mut out);
        assert_eq!(decode_varint_deltas(&out, values.len()).unwrap(), values);
    }

    #[test]
    fn packed_deltas_round_trip_across_frames() {
        let values: Vec<i64> = (0..1000).map(|i| (i * 37 % 101) - 50).collect();
        let mut out = Vec::new();
        encode_packed_deltas(&values, &mut out);
        assert_eq!(decode_packed_deltas(&out, values.len()).unwrap(), values);

        let extremes = vec![i64::MIN, i64::MAX, 0, i64::MIN];
        let mut out = Vec::new();
        encode_packed_deltas(&extremes, &mut out);
        assert_eq!(
            decode_packed_deltas(&out, extremes.len()).unwrap(),
            extremes
        );
    }

    /// Decodes with `BitReader` alone, the way the packed layout was read
    /// before the word-load fast path.
    fn decode_bit_by_bit(data: &[u8], count: usize) -> Result<Vec<i64>, CodecError> {
        let mut values = Vec::new();
        if count == 0 {
            return Ok(values);
        }
        let mut reader = ByteReader::new(data);
        let mut previous = reader.varint_i64("first")?;
        values.push(previous);
        let mut left = count - 1;
        while left > 0 {
            let frame_len = left.min(FRAME_LEN);
            let width = u32::from(reader.u8("width")?);
            let frame_bytes = (frame_len * width as usize).div_ceil(8);
            let mut bits = BitReader::new(reader.bytes(frame_bytes, "frame")?);
            for _ in 0..frame_len {
                previous = previous.wrapping_add(unzigzag(bits.read_bits(width)?));
                values.push(previous);
            }
            left -= frame_len;
        }
        Ok(values)
    }

    #[test]
    fn word_loads_match_bit_reader_for_every_width() {
        // Deltas up to 2^k - 1 in magnitude give frames of about k + 1
        // bits, so k from 0 to 63 covers every width and both paths of
        // `unpack_frame`.
        for k in 0..64u32 {
            let limit = if k == 0 { 0 } else { (1u64 << k) - 1 };
            let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(k);
            let values: Vec<i64> = (0..300)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    if limit == 0 {
                        0
                    } else {
                        (state % limit) as i64 - (limit / 2) as i64
                    }
                })
                .collect();
            let mut out = Vec::new();
            encode_packed_deltas(&values, &mut out);
            let fast = decode_packed_deltas(&out, values.len()).unwrap();
            assert_eq!(fast, values, "k = {k}");
            assert_eq!(
                fast,
                decode_bit_by_bit(&out, values.len()).unwrap(),
                "k = {k}"
            );
        }
    }

    #[test]
    fn truncated_packed_frames_fail() {
        let values: Vec<i64> = (0..500).map(|i| i * i).collect();
        let mut out = Vec::new();
        encode_packed_deltas(&values, &mut out);
        for cut in [0, 1, out.len() / 2, out.len() - 1] {
            assert!(
                decode_packed_deltas(&out[..cut], values.len()).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn converted_decode_matches_integers() {
        let values: Vec<i64> = (0..700).map(|i| (i * 7919 % 2003) - 1000).collect();
        let mut out = Vec::new();
        encode_packed_deltas(&values, &mut out);
        let mut scaled = Vec::new();
        decode_packed_deltas_with(&out, values.len(), &mut scaled, |n| n as f64 / 100.0).unwrap();
        let expected: Vec<f64> = values.iter().map(|&n| n as f64 / 100.0).collect();
        assert_eq!(scaled, expected);
    }

    #[test]
    fn constant_values_pack_to_zero_width() {
        let values = vec![7i64; 129];
        let mut out = Vec::new();
        encode_packed_deltas(&values, &mut out);
        assert_eq!(out, vec![14, 0]);
    }

    fn reference_round_trip(values: &[i64]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_reference_frames(values, &mut out);
        assert_eq!(
            decode_reference_frames(&out, values.len()).unwrap(),
            values,
            "{} values",
            values.len()
        );
        out
    }

    #[test]
    fn reference_frames_round_trip_extremes() {
        reference_round_trip(&[]);
        reference_round_trip(&[i64::MIN]);
        reference_round_trip(&[i64::MAX, i64::MIN, 0, -1, i64::MIN, i64::MAX]);
        let alternating: Vec<i64> = (0..300)
            .map(|i| if i % 2 == 0 { i64::MIN } else { i64::MAX })
            .collect();
        reference_round_trip(&alternating);
        let wrapping: Vec<i64> = (0..300).map(|i| i64::MAX - 100 + i).collect();
        reference_round_trip(&wrapping);
    }

    #[test]
    fn counter_packs_its_delta_spread() {
        // Deltas from 10 to 41 need 5 bits after subtracting the minimum.
        let values: Vec<i64> = (0..1025i64)
            .scan(1_000_000i64, |total, i| {
                *total += 10 + (i * 7) % 32;
                Some(*total)
            })
            .collect();
        let out = reference_round_trip(&values);
        let frames = 1024 / FRAME_LEN;
        assert!(
            out.len() <= 4 + frames * (2 + FRAME_LEN * 5 / 8),
            "{} bytes",
            out.len()
        );
        assert_eq!(
            out[3] & VALUES_FRAME_FLAG,
            0,
            "a counter frame holds deltas"
        );
    }

    #[test]
    fn noisy_level_packs_its_value_spread() {
        // Values in 1900..=2000 need 7 bits; their deltas would need 8.
        let values: Vec<i64> = (0..1025i64)
            .map(|i| 1900 + (i * i * 37 + i * 11) % 101)
            .collect();
        let out = reference_round_trip(&values);
        assert!(
            out.len() <= 2 + 8 * (3 + FRAME_LEN * 7 / 8),
            "{} bytes",
            out.len()
        );
        assert_eq!(out[2] & VALUES_FRAME_FLAG, VALUES_FRAME_FLAG);
    }

    #[test]
    fn constant_frames_take_two_bytes() {
        let out = reference_round_trip(&vec![7i64; 129]);
        assert_eq!(out, vec![14, 0, 0]);
        let steps: Vec<i64> = (0..257).map(|i| i * 10).collect();
        let out = reference_round_trip(&steps);
        assert_eq!(out, vec![0, 0, 20, 0, 20]);
    }

    #[test]
    fn damaged_reference_frames_fail() {
        let values: Vec<i64> = (0..300).map(|i| i * i).collect();
        let mut out = Vec::new();
        encode_reference_frames(&values, &mut out);
        assert!(decode_reference_frames(&out[..out.len() - 1], values.len()).is_err());
        assert!(decode_reference_frames(&[0, 65, 0], 2).is_err(), "width 65");
    }
}
