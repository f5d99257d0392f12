//! Byte-plane codec for doubles that neither the decimal nor the Gorilla
//! encoding shrinks, such as random measurements with every mantissa bit
//! used. `super::encode_floats` tries it after those two.
//!
//! The values' 8 bytes are transposed into 8 planes, most significant
//! byte first, so the sign and exponent bytes of all values sit together.
//! Each plane is stored on its own, introduced by one [`PlaneMode`] byte:
//! a single byte when the plane is constant, a varint length and a zstd
//! frame when zstd makes it smaller, or else the plane's raw bytes. The
//! count of values is known to the caller, so raw planes need no length.
//!
//! zstd codes literals with Huffman tables, so a plane of a few distinct
//! bytes (sign and exponent of values within a few binary orders of
//! magnitude) shrinks to near its entropy, while a plane of mantissa
//! noise stays raw.

use super::CodecError;
use super::varint::{ByteReader, put_u64};

/// zstd level of plane compression: zstd's fastest standard level, to
/// keep head flushes cheap.
// NOTE: higher levels were not measured on these planes; they may shrink
// planes with repeating patterns further.
const ZSTD_LEVEL: i32 = 1;

/// Bytes per double, and so planes per column.
const PLANES: usize = 8;

/// Storage of one plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum PlaneMode {
    /// One byte per value follows.
    Raw = 0,
    /// A varint length and a zstd frame that decompresses to one byte
    /// per value follow.
    Zstd = 1,
    /// One byte follows, the value of every byte of the plane.
    Constant = 2,
}

/// Appends the byte planes of `values` to `out`. Empty input appends
/// nothing.
pub fn encode(values: &[f64], out: &mut Vec<u8>) {
    if values.is_empty() {
        return;
    }
    let mut plane = Vec::with_capacity(values.len());
    for index in 0..PLANES {
        let shift = 56 - 8 * index;
        plane.clear();
        plane.extend(values.iter().map(|v| (v.to_bits() >> shift) as u8));
        encode_plane(&plane, out);
    }
}

fn encode_plane(plane: &[u8], out: &mut Vec<u8>) {
    let first = plane[0];
    if plane.iter().all(|&byte| byte == first) {
        out.push(PlaneMode::Constant as u8);
        out.push(first);
        return;
    }
    // Compression errors only on invalid parameters; the raw plane is
    // then stored, which is always valid.
    if let Ok(compressed) = zstd::bulk::compress(plane, ZSTD_LEVEL)
        && compressed.len() + 10 < plane.len()
    {
        out.push(PlaneMode::Zstd as u8);
        put_u64(out, compressed.len() as u64);
        out.extend_from_slice(&compressed);
        return;
    }
    out.push(PlaneMode::Raw as u8);
    out.extend_from_slice(plane);
}

/// Decodes `count` values from `data`, which contains exactly one
/// encoding.
pub fn decode(data: &[u8], count: usize) -> Result<Vec<f64>, CodecError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let mut bits = vec![0u64; count];
    let mut reader = ByteReader::new(data);
    let mut decompressor = None;
    let mut plane = Vec::with_capacity(count);
    for index in 0..PLANES {
        let shift = 56 - 8 * index;
        match reader.u8("byte plane mode")? {
            mode if mode == PlaneMode::Constant as u8 => {
                let byte = u64::from(reader.u8("constant byte plane")?) << shift;
                bits.iter_mut().for_each(|word| *word |= byte);
                continue;
            }
            mode if mode == PlaneMode::Raw as u8 => {
                plane.clear();
                plane.extend_from_slice(reader.bytes(count, "raw byte plane")?);
            }
            mode if mode == PlaneMode::Zstd as u8 => {
                let compressed = reader.len_prefixed("compressed byte plane")?;
                let decompressor = match &mut decompressor {
                    Some(decompressor) => decompressor,
                    None => {
                        decompressor.insert(zstd::bulk::Decompressor::new().map_err(|err| {
                            CodecError::Invalid {
                                what: "byte plane",
                                detail: format!("zstd context failed: {err}"),
                            }
                        })?)
                    }
                };
                plane.clear();
                let len = decompressor
                    .decompress_to_buffer(compressed, &mut plane)
                    .map_err(|err| CodecError::Invalid {
                        what: "byte plane",
                        detail: format!("plane {index} failed to decompress: {err}"),
                    })?;
                if len != count {
                    return Err(CodecError::Invalid {
                        what: "byte plane",
                        detail: format!("plane {index} has {len} bytes for {count} values"),
                    });
                }
            }
            other => {
                return Err(CodecError::Invalid {
                    what: "byte plane",
                    detail: format!("unknown plane mode {other} in plane {index}"),
                });
            }
        }
        for (word, &byte) in bits.iter_mut().zip(&plane) {
            *word |= u64::from(byte) << shift;
        }
    }
    if !reader.is_empty() {
        return Err(CodecError::Invalid {
            what: "byte plane column",
            detail: format!("{} bytes follow the last plane", reader.remaining()),
        });
    }
    Ok(bits.into_iter().map(f64::from_bits).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(values: &[f64]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(values, &mut out);
        let decoded = decode(&out, values.len()).unwrap();
        let expected: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
        let actual: Vec<u64> = decoded.iter().map(|v| v.to_bits()).collect();
        assert_eq!(actual, expected);
        out
    }

    /// SplitMix64 output for `i`, as a deterministic stand-in for noise.
    fn noise(i: u64) -> u64 {
        let mut z = i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    #[test]
    fn special_values_round_trip() {
        assert!(round_trip(&[]).is_empty());
        round_trip(&[-0.0]);
        round_trip(&[
            0.0,
            -0.0,
            f64::from_bits(1),
            f64::from_bits(0x000F_FFFF_FFFF_FFFF),
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ]);
    }

    #[test]
    fn random_doubles_shrink_sign_and_exponent() {
        let values: Vec<f64> = (0..4096)
            .map(|i| (noise(i) >> 11) as f64 / (1u64 << 53) as f64 * 2e6 - 1e6)
            .collect();
        let out = round_trip(&values);
        assert!(
            out.len() < values.len() * 7,
            "{} bytes for {} values",
            out.len(),
            values.len()
        );
    }

    #[test]
    fn constant_planes_take_two_bytes() {
        let out = round_trip(&[1.5; 100]);
        assert_eq!(out.len(), 2 * PLANES);
    }

    #[test]
    fn damaged_planes_fail() {
        let values: Vec<f64> = (0..1000).map(|i| f64::from_bits(noise(i) >> 4)).collect();
        let mut out = Vec::new();
        encode(&values, &mut out);
        assert_eq!(out[0], PlaneMode::Zstd as u8, "the top plane compresses");
        for cut in [0, 1, out.len() / 2, out.len() - 1] {
            assert!(decode(&out[..cut], values.len()).is_err(), "cut at {cut}");
        }
        assert!(
            decode(&out, values.len() + 1).is_err(),
            "one value too many"
        );
        let mut trailing = out.clone();
        trailing.push(0);
        assert!(decode(&trailing, values.len()).is_err());
        let mut unknown = out;
        unknown[0] = 9;
        assert!(decode(&unknown, values.len()).is_err());
    }
}
