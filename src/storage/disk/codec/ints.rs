//! Integer codecs: delta + zigzag varints for integer columns, and
//! frame-of-reference bit packing of zigzag deltas, which the decimal
//! float codec uses for its scaled values.
//!
//! Packed layout: the first value as a zigzag varint, then the deltas in
//! frames of [`FRAME_LEN`] (the last frame may be shorter). Each frame
//! starts with one byte, the bit width of its largest zigzag delta, and
//! then holds every delta in that many bits. All arithmetic wraps.

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
    if count == 0 {
        return Ok(values);
    }
    let mut reader = ByteReader::new(data);
    let mut previous = reader.varint_i64("packed integer column")?;
    values.push(previous);
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
        let mut bits = BitReader::new(reader.bytes(frame_bytes, "packed integer frame")?);
        for _ in 0..frame_len {
            previous = previous.wrapping_add(unzigzag(bits.read_bits(width)?));
            values.push(previous);
        }
        left -= frame_len;
    }
    Ok(values)
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

    #[test]
    fn constant_values_pack_to_zero_width() {
        let values = vec![7i64; 129];
        let mut out = Vec::new();
        encode_packed_deltas(&values, &mut out);
        assert_eq!(out, vec![14, 0]);
    }
}
