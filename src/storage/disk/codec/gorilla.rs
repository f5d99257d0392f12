//! XOR float codec from the Gorilla paper (Pelkonen et al., "Gorilla: A
//! Fast, Scalable, In-Memory Time Series Database", VLDB 2015).
//!
//! The first value is stored as 64 raw bits. Each later value is XORed
//! with its predecessor: a zero XOR costs one `0` bit. Otherwise a `1`
//! follows, then either `0` and the meaningful bits inside the previous
//! leading/trailing-zero window when they fit it, or `1`, five bits of
//! leading-zero count (capped at 31), six bits of meaningful-bit count
//! minus one, and the meaningful bits. Values round-trip bit for bit,
//! including infinities, NaN payloads and negative zero.

use super::CodecError;
use super::bits::{BitReader, BitWriter};

/// Largest leading-zero count the 5-bit field can store.
const MAX_LEADING_ZEROS: u32 = 31;

/// Appends the encoding of `values` to `out`.
pub fn encode(values: &[f64], out: &mut Vec<u8>) {
    let Some(&first) = values.first() else {
        return;
    };
    let mut writer = BitWriter::with_capacity(8 + values.len());
    let mut previous = first.to_bits();
    writer.write_bits(previous, 64);
    // An impossible window, so the first non-zero XOR writes its own.
    let mut window_leading = u32::MAX;
    let mut window_trailing = 0u32;

    for &value in &values[1..] {
        let bits = value.to_bits();
        let xor = bits ^ previous;
        previous = bits;
        if xor == 0 {
            writer.write_bit(false);
            continue;
        }
        writer.write_bit(true);
        let leading = xor.leading_zeros().min(MAX_LEADING_ZEROS);
        let trailing = xor.trailing_zeros();
        if window_leading != u32::MAX && leading >= window_leading && trailing >= window_trailing {
            writer.write_bit(false);
            let meaningful = 64 - window_leading - window_trailing;
            writer.write_bits(xor >> window_trailing, meaningful);
        } else {
            writer.write_bit(true);
            let meaningful = 64 - leading - trailing;
            writer.write_bits(u64::from(leading), 5);
            writer.write_bits(u64::from(meaningful - 1), 6);
            writer.write_bits(xor >> trailing, meaningful);
            window_leading = leading;
            window_trailing = trailing;
        }
    }
    out.extend_from_slice(&writer.finish());
}

/// Decodes `count` values from `data`.
pub fn decode(data: &[u8], count: usize) -> Result<Vec<f64>, CodecError> {
    let mut values = Vec::with_capacity(count);
    if count == 0 {
        return Ok(values);
    }
    let mut reader = BitReader::new(data);
    let mut previous = reader.read_bits(64)?;
    values.push(f64::from_bits(previous));
    let mut window_leading = 0u32;
    let mut window_trailing = 0u32;
    let mut have_window = false;

    for _ in 1..count {
        if reader.read_bit()? {
            if reader.read_bit()? {
                window_leading = reader.read_bits(5)? as u32;
                let meaningful = reader.read_bits(6)? as u32 + 1;
                if window_leading + meaningful > 64 {
                    return Err(CodecError::Invalid {
                        what: "float column",
                        detail: format!(
                            "{window_leading} leading zeros plus {meaningful} meaningful bits exceed 64"
                        ),
                    });
                }
                window_trailing = 64 - window_leading - meaningful;
                have_window = true;
            } else if !have_window {
                return Err(CodecError::Invalid {
                    what: "float column",
                    detail: "a value reuses a bit window before any was set".to_owned(),
                });
            }
            let meaningful = 64 - window_leading - window_trailing;
            let xor = reader.read_bits(meaningful)? << window_trailing;
            previous ^= xor;
        }
        values.push(f64::from_bits(previous));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip_bits(values: &[f64]) {
        let mut out = Vec::new();
        encode(values, &mut out);
        let decoded = decode(&out, values.len()).unwrap();
        let expected: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
        let actual: Vec<u64> = decoded.iter().map(|v| v.to_bits()).collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn special_values_round_trip() {
        round_trip_bits(&[]);
        round_trip_bits(&[1.5]);
        round_trip_bits(&[
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            1e-300,
            f64::from_bits(1),
            f64::from_bits(u64::MAX),
        ]);
    }

    #[test]
    fn constant_series_costs_one_bit_per_value() {
        let values = vec![42.5; 8001];
        let mut out = Vec::new();
        encode(&values, &mut out);
        assert_eq!(out.len(), 8 + 1000);
        round_trip_bits(&values);
    }

    #[test]
    fn truncated_input_fails() {
        let values: Vec<f64> = (0..100).map(|i| (i as f64).sqrt()).collect();
        let mut out = Vec::new();
        encode(&values, &mut out);
        assert!(decode(&out[..out.len() - 10], values.len()).is_err());
    }
}
