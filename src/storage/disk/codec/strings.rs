//! Dictionary codec for strings.
//!
//! Layout: the number of distinct strings as a varint, each distinct
//! string length-prefixed in order of first use, then one index per value
//! bit-packed with the width needed for the largest index. Decoding
//! shares one `Arc<str>` per distinct string.

use std::collections::HashMap;
use std::sync::Arc;

use super::CodecError;
use super::bits::{BitReader, BitWriter};
use super::varint::{ByteReader, put_bytes, put_u64};

pub fn encode(values: &[Arc<str>], out: &mut Vec<u8>) {
    let mut positions: HashMap<&str, u64> = HashMap::new();
    let mut dictionary: Vec<&str> = Vec::new();
    let indexes: Vec<u64> = values
        .iter()
        .map(|value| {
            *positions.entry(value).or_insert_with(|| {
                dictionary.push(value);
                dictionary.len() as u64 - 1
            })
        })
        .collect();

    put_u64(out, dictionary.len() as u64);
    for entry in &dictionary {
        put_bytes(out, entry.as_bytes());
    }
    let width = index_width(dictionary.len());
    let mut writer = BitWriter::with_capacity(values.len() * width as usize / 8 + 1);
    for index in indexes {
        writer.write_bits(index, width);
    }
    out.extend_from_slice(&writer.finish());
}

pub fn decode(data: &[u8], count: usize) -> Result<Vec<Arc<str>>, CodecError> {
    let mut reader = ByteReader::new(data);
    let entries = reader.varint("string dictionary size")?;
    if entries > reader.remaining() as u64 {
        return Err(CodecError::Invalid {
            what: "string dictionary",
            detail: format!(
                "{entries} entries cannot fit in {} bytes",
                reader.remaining()
            ),
        });
    }
    let dictionary: Vec<Arc<str>> = (0..entries)
        .map(|_| reader.str("string dictionary entry").map(Arc::from))
        .collect::<Result<_, _>>()?;
    let width = index_width(dictionary.len());
    let rest = reader.bytes(reader.remaining(), "string indexes")?;
    let mut bits = BitReader::new(rest);
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        let index = bits.read_bits(width)? as usize;
        let value = dictionary.get(index).ok_or_else(|| CodecError::Invalid {
            what: "string column",
            detail: format!(
                "index {index} is outside a dictionary of {}",
                dictionary.len()
            ),
        })?;
        values.push(value.clone());
    }
    Ok(values)
}

/// Bits needed to store indexes below `entries`.
fn index_width(entries: usize) -> u32 {
    if entries <= 1 {
        0
    } else {
        usize::BITS - (entries - 1).leading_zeros()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_with_shared_entries() {
        let values: Vec<Arc<str>> = ["ok", "fail", "ok", "", "ok", "fail", "ünïcode"]
            .iter()
            .map(|s| Arc::from(*s))
            .collect();
        let mut out = Vec::new();
        encode(&values, &mut out);
        let decoded = decode(&out, values.len()).unwrap();
        assert_eq!(decoded, values);
        assert!(Arc::ptr_eq(&decoded[0], &decoded[2]));
    }

    #[test]
    fn index_widths() {
        assert_eq!(index_width(0), 0);
        assert_eq!(index_width(1), 0);
        assert_eq!(index_width(2), 1);
        assert_eq!(index_width(3), 2);
        assert_eq!(index_width(256), 8);
        assert_eq!(index_width(257), 9);
    }
}
