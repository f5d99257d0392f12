//! Delta-of-delta timestamp codec.
//!
//! Layout: one byte `scale_exponent`, then a bit stream with the first
//! timestamp as 64 raw bits and, for every later point, the difference
//! between its delta and the previous delta (the first delta counts as a
//! difference from zero). Deltas are divided by `10^scale_exponent`, the
//! largest power of ten up to 10^9 that divides them all, so timestamps
//! taken at whole milliseconds or seconds cost as little as ones taken at
//! whole nanoseconds would in a seconds-based encoding. Each difference is
//! stored in the first bucket that fits it:
//!
//! | prefix  | payload                      |
//! |---------|------------------------------|
//! | `0`     | none, the difference is zero |
//! | `10`    | 7-bit two's complement       |
//! | `110`   | 12-bit two's complement      |
//! | `1110`  | 20-bit two's complement      |
//! | `11110` | 32-bit two's complement      |
//! | `11111` | 64-bit two's complement      |
//!
//! A first byte of [`REFERENCE_FRAMES_FLAG`] plus the scale exponent
//! selects the other layout: the first timestamp as a zigzag varint, then
//! the scaled deltas in the frame-of-reference layout of
//! [`super::ints`]. Regular timestamps cost about 2 bytes per 128 points
//! there instead of one bit per point, and millisecond jitter costs the
//! bits of its spread. The encoder writes whichever layout is smaller.
//!
//! All arithmetic wraps, so any sequence of `i64` values round-trips,
//! including unsorted ones and deltas wider than `i64`.

use super::CodecError;
use super::bits::{BitReader, BitWriter};
use super::ints;
use super::varint::{ByteReader, put_i64};

/// Bit of the first byte that selects the frame-of-reference layout.
pub const REFERENCE_FRAMES_FLAG: u8 = 0x80;

/// Payload widths of the non-zero buckets, in prefix order.
const BUCKET_BITS: [u32; 5] = [7, 12, 20, 32, 64];

/// Largest scale exponent tried; 10^9 is one second in nanoseconds.
const MAX_SCALE_EXPONENT: u32 = 9;

/// Appends the smaller of the two encodings of `times_ns` to `out`.
pub fn encode(times_ns: &[i64], out: &mut Vec<u8>) {
    let scale_exponent = scale_exponent(times_ns);
    let start = out.len();
    encode_delta_of_delta(times_ns, scale_exponent, out);
    if times_ns.len() < 2 {
        return;
    }
    let mut frames = Vec::new();
    encode_reference_frames(times_ns, scale_exponent, &mut frames);
    if frames.len() < out.len() - start {
        out.truncate(start);
        out.extend_from_slice(&frames);
    }
}

fn encode_reference_frames(times_ns: &[i64], scale_exponent: u32, out: &mut Vec<u8>) {
    out.push(REFERENCE_FRAMES_FLAG | scale_exponent as u8);
    let Some(&first) = times_ns.first() else {
        return;
    };
    let scale = 10i64.pow(scale_exponent);
    put_i64(out, first);
    let deltas: Vec<i64> = times_ns
        .windows(2)
        .map(|pair| pair[1].wrapping_sub(pair[0]) / scale)
        .collect();
    ints::encode_reference_frames(&deltas, out);
}

fn encode_delta_of_delta(times_ns: &[i64], scale_exponent: u32, out: &mut Vec<u8>) {
    out.push(scale_exponent as u8);
    let Some(&first) = times_ns.first() else {
        return;
    };
    let scale = 10i64.pow(scale_exponent);

    let mut writer = BitWriter::with_capacity(8 + times_ns.len() / 4);
    writer.write_bits(first as u64, 64);
    let mut previous_time = first;
    let mut previous_delta = 0i64;
    for &time in &times_ns[1..] {
        let delta = time.wrapping_sub(previous_time) / scale;
        write_difference(&mut writer, delta.wrapping_sub(previous_delta));
        previous_time = time;
        previous_delta = delta;
    }
    out.extend_from_slice(&writer.finish());
}

/// Decodes `count` timestamps from `data`, which contains exactly one
/// encoding.
pub fn decode(data: &[u8], count: usize) -> Result<Vec<i64>, CodecError> {
    let Some((&first_byte, stream)) = data.split_first() else {
        return Err(CodecError::Truncated {
            what: "timestamp column",
            len: 0,
        });
    };
    let scale_exponent = first_byte & !REFERENCE_FRAMES_FLAG;
    if u32::from(scale_exponent) > MAX_SCALE_EXPONENT {
        return Err(CodecError::Invalid {
            what: "timestamp column",
            detail: format!("scale exponent {scale_exponent} is over {MAX_SCALE_EXPONENT}"),
        });
    }
    let mut times = Vec::with_capacity(count);
    if count == 0 {
        return Ok(times);
    }
    let scale = 10i64.pow(u32::from(scale_exponent));
    if first_byte & REFERENCE_FRAMES_FLAG != 0 {
        let mut reader = ByteReader::new(stream);
        let mut time = reader.varint_i64("first timestamp")?;
        times.push(time);
        for delta in ints::decode_reference_frames_from(&mut reader, count - 1)? {
            time = time.wrapping_add(delta.wrapping_mul(scale));
            times.push(time);
        }
        return Ok(times);
    }

    let mut reader = BitReader::new(stream);
    let mut time = reader.read_bits(64)? as i64;
    times.push(time);
    let mut delta = 0i64;
    let mut decoded = 1;
    while decoded < count {
        // A zero bit repeats the previous delta; regular series are long
        // runs of them, taken here a buffered word at a time.
        let repeats = reader.skip_zeros(count - decoded);
        let step = delta.wrapping_mul(scale);
        let base = time;
        times.extend((1..=repeats as i64).map(|k| base.wrapping_add(step.wrapping_mul(k))));
        time = base.wrapping_add(step.wrapping_mul(repeats as i64));
        decoded += repeats;
        if decoded < count {
            delta = delta.wrapping_add(read_difference(&mut reader)?);
            time = time.wrapping_add(delta.wrapping_mul(scale));
            times.push(time);
            decoded += 1;
        }
    }
    Ok(times)
}

/// Returns the largest exponent `k <= 9` such that `10^k` divides every
/// delta.
fn scale_exponent(times_ns: &[i64]) -> u32 {
    if times_ns.len() < 2 {
        return 0;
    }
    let mut exponent = MAX_SCALE_EXPONENT;
    for pair in times_ns.windows(2) {
        let delta = pair[1].wrapping_sub(pair[0]);
        while exponent > 0 && delta % 10i64.pow(exponent) != 0 {
            exponent -= 1;
        }
        if exponent == 0 {
            break;
        }
    }
    exponent
}

fn fits(value: i64, bits: u32) -> bool {
    if bits >= 64 {
        return true;
    }
    let limit = 1i64 << (bits - 1);
    (-limit..limit).contains(&value)
}

fn write_difference(writer: &mut BitWriter, difference: i64) {
    if difference == 0 {
        writer.write_bit(false);
        return;
    }
    for (bucket, &bits) in BUCKET_BITS.iter().enumerate() {
        if fits(difference, bits) {
            // `bucket + 1` one bits, then a terminating zero except for
            // the last bucket, whose prefix is five ones.
            let ones = bucket as u32 + 1;
            if bucket + 1 < BUCKET_BITS.len() {
                writer.write_bits(((1u64 << ones) - 1) << 1, ones + 1);
            } else {
                writer.write_bits((1u64 << ones) - 1, ones);
            }
            writer.write_bits(difference as u64, bits);
            return;
        }
    }
    unreachable!("the 64-bit bucket fits every value");
}

fn read_difference(reader: &mut BitReader<'_>) -> Result<i64, CodecError> {
    let mut bucket = 0;
    while bucket < BUCKET_BITS.len() {
        if !reader.read_bit()? {
            break;
        }
        bucket += 1;
    }
    if bucket == 0 {
        return Ok(0);
    }
    let bits = BUCKET_BITS[bucket - 1];
    let raw = reader.read_bits(bits)?;
    Ok(sign_extend(raw, bits))
}

fn sign_extend(raw: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((raw << shift) as i64) >> shift
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(times: &[i64]) -> Vec<i64> {
        let mut out = Vec::new();
        encode(times, &mut out);
        decode(&out, times.len()).unwrap()
    }

    /// Encodes in the delta-of-delta layout only, as blocks written
    /// before the frame-of-reference layout have it.
    fn encode_legacy(times: &[i64]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_delta_of_delta(times, scale_exponent(times), &mut out);
        out
    }

    #[test]
    fn regular_series_costs_under_one_bit_per_point() {
        let times: Vec<i64> = (0..10_000)
            .map(|i| 1_700_000_000_000_000_000 + i * 10_000_000_000)
            .collect();
        let mut out = Vec::new();
        encode(&times, &mut out);
        assert_eq!(out[0], REFERENCE_FRAMES_FLAG | 9);
        assert_eq!(decode(&out, times.len()).unwrap(), times);
        assert!(out.len() < 10_000 / 32, "{} bytes", out.len());

        let legacy = encode_legacy(&times);
        assert_eq!(legacy[0], 9);
        assert_eq!(decode(&legacy, times.len()).unwrap(), times);
    }

    #[test]
    fn both_layouts_round_trip_the_same_times() {
        let cases: Vec<Vec<i64>> = vec![
            vec![],
            vec![i64::MIN],
            vec![i64::MIN, i64::MAX, i64::MIN, 0, -1, 1],
            (0..1000).map(|i| i * i * 1_000).collect(),
            (0..1000).map(|i| i64::MAX - i * 3).collect(),
        ];
        for times in cases {
            let mut frames = Vec::new();
            encode_reference_frames(&times, scale_exponent(&times), &mut frames);
            assert_eq!(decode(&frames, times.len()).unwrap(), times);
            assert_eq!(decode(&encode_legacy(&times), times.len()).unwrap(), times);
        }
    }

    #[test]
    fn millisecond_jitter_uses_small_buckets() {
        let times: Vec<i64> = (0..1000)
            .map(|i| 1_700_000_000_000_000_000 + i * 10_000_000_000 + (i % 7 - 3) * 1_000_000)
            .collect();
        let mut out = Vec::new();
        encode(&times, &mut out);
        assert_eq!(
            out[0] & !REFERENCE_FRAMES_FLAG,
            6,
            "deltas are whole milliseconds"
        );
        assert_eq!(decode(&out, times.len()).unwrap(), times);
        // The deltas take two values 7 ms apart, 3 bits after the frame
        // minimum.
        assert!(out.len() < 1000 * 4 / 8 + 40, "{} bytes", out.len());
    }

    #[test]
    fn extremes_and_disorder_round_trip() {
        let cases: Vec<Vec<i64>> = vec![
            vec![],
            vec![42],
            vec![i64::MIN, i64::MAX, i64::MIN, 0, -1, 1],
            vec![-5_000_000_000, -4_000_000_000, -10, 7, 7, 3],
            vec![i64::MAX - 1, i64::MAX],
        ];
        for times in cases {
            assert_eq!(round_trip(&times), times);
        }
    }

    #[test]
    fn bucket_boundaries_round_trip() {
        let mut times = vec![0i64];
        let mut delta = 0i64;
        for &bits in &BUCKET_BITS[..4] {
            for difference in [
                (1i64 << (bits - 1)) - 1,
                -(1i64 << (bits - 1)),
                1i64 << (bits - 1),
            ] {
                delta += difference;
                let last = *times.last().unwrap();
                times.push(last.wrapping_add(delta));
            }
        }
        assert_eq!(round_trip(&times), times);
    }

    #[test]
    fn truncated_input_fails() {
        let times: Vec<i64> = (0..100).map(|i| i * i * 1_000).collect();
        let mut out = Vec::new();
        encode(&times, &mut out);
        assert!(decode(&out[..out.len() / 2], times.len()).is_err());
        let legacy = encode_legacy(&times);
        assert!(decode(&legacy[..legacy.len() / 2], times.len()).is_err());
        assert!(decode(&[], 1).is_err());
        assert!(decode(&[REFERENCE_FRAMES_FLAG | 10, 0], 1).is_err());
    }
}
