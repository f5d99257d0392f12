//! LEB128 variable-length integers, zigzag mapping of signed integers and
//! a checked byte reader for the hand-written binary formats (WAL records,
//! chunks, block indexes).

use super::CodecError;

/// Maps signed integers to unsigned so that small magnitudes stay small.
pub fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

pub fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

pub fn put_u64(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub fn put_i64(out: &mut Vec<u8>, value: i64) {
    put_u64(out, zigzag(value));
}

/// Writes a byte string prefixed by its length.
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Reads values from a byte slice, failing instead of panicking on short
/// or malformed input.
#[derive(Debug, Clone)]
pub struct ByteReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    pub fn new(data: &'a [u8]) -> ByteReader<'a> {
        ByteReader { data, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos == self.data.len()
    }

    pub fn bytes(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        if self.remaining() < len {
            return Err(CodecError::Truncated {
                what,
                len: self.data.len(),
            });
        }
        let bytes = &self.data[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        Ok(self.bytes(1, what)?[0])
    }

    pub fn u32_le(&mut self, what: &'static str) -> Result<u32, CodecError> {
        let bytes = self.bytes(4, what)?;
        Ok(u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
    }

    pub fn u64_le(&mut self, what: &'static str) -> Result<u64, CodecError> {
        let bytes = self.bytes(8, what)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    pub fn f64_le(&mut self, what: &'static str) -> Result<f64, CodecError> {
        Ok(f64::from_bits(self.u64_le(what)?))
    }

    pub fn varint(&mut self, what: &'static str) -> Result<u64, CodecError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8(what)?;
            let bits = u64::from(byte & 0x7F);
            if shift == 63 && bits > 1 {
                return Err(CodecError::Invalid {
                    what,
                    detail: "varint overflows 64 bits".to_owned(),
                });
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(CodecError::Invalid {
            what,
            detail: "varint is longer than 10 bytes".to_owned(),
        })
    }

    pub fn varint_i64(&mut self, what: &'static str) -> Result<i64, CodecError> {
        Ok(unzigzag(self.varint(what)?))
    }

    /// Reads a length that must not exceed the remaining input, so a
    /// corrupt length cannot trigger a huge allocation.
    pub fn length(&mut self, what: &'static str) -> Result<usize, CodecError> {
        let len = self.varint(what)?;
        if len > self.remaining() as u64 {
            return Err(CodecError::Truncated {
                what,
                len: self.data.len(),
            });
        }
        Ok(len as usize)
    }

    pub fn len_prefixed(&mut self, what: &'static str) -> Result<&'a [u8], CodecError> {
        let len = self.length(what)?;
        self.bytes(len, what)
    }

    pub fn str(&mut self, what: &'static str) -> Result<&'a str, CodecError> {
        let bytes = self.len_prefixed(what)?;
        std::str::from_utf8(bytes).map_err(|err| CodecError::Invalid {
            what,
            detail: err.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_round_trips_extremes() {
        for value in [0, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(value)), value);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn varints_round_trip() {
        let values = [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX];
        let mut out = Vec::new();
        for &value in &values {
            put_u64(&mut out, value);
        }
        let mut reader = ByteReader::new(&out);
        for &value in &values {
            assert_eq!(reader.varint("test").unwrap(), value);
        }
        assert!(reader.is_empty());
    }

    #[test]
    fn overlong_varint_rejected() {
        let bytes = [0xFFu8; 11];
        assert!(ByteReader::new(&bytes).varint("test").is_err());
        let overflow = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02];
        assert!(ByteReader::new(&overflow).varint("test").is_err());
    }

    #[test]
    fn length_beyond_input_rejected() {
        let mut out = Vec::new();
        put_u64(&mut out, 1000);
        out.push(1);
        assert!(ByteReader::new(&out).len_prefixed("test").is_err());
    }
}
