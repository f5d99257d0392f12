//! Bool codec: one bit per value.

use super::CodecError;
use super::bits::{BitReader, BitWriter};

pub fn encode(values: &[bool], out: &mut Vec<u8>) {
    let mut writer = BitWriter::with_capacity(values.len() / 8 + 1);
    for &value in values {
        writer.write_bit(value);
    }
    out.extend_from_slice(&writer.finish());
}

pub fn decode(data: &[u8], count: usize) -> Result<Vec<bool>, CodecError> {
    let mut reader = BitReader::new(data);
    (0..count).map(|_| reader.read_bit()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools_round_trip() {
        let values: Vec<bool> = (0..77).map(|i| i % 3 == 0).collect();
        let mut out = Vec::new();
        encode(&values, &mut out);
        assert_eq!(out.len(), 10);
        assert_eq!(decode(&out, values.len()).unwrap(), values);
    }
}
