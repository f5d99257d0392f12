//! Bit-level writer and reader shared by the timestamp, float, bool and
//! dictionary codecs. Bits are packed most significant first.

use super::CodecError;

/// Appends bit fields to a byte vector.
#[derive(Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Pending bits in the low `pending_bits` bits; fewer than 8 between
    /// calls.
    pending: u64,
    pending_bits: u32,
}

impl BitWriter {
    pub fn with_capacity(bytes: usize) -> BitWriter {
        BitWriter {
            bytes: Vec::with_capacity(bytes),
            pending: 0,
            pending_bits: 0,
        }
    }

    /// Appends the low `bit_count` bits of `value`; `bit_count` is at most 64.
    pub fn write_bits(&mut self, value: u64, bit_count: u32) {
        debug_assert!(bit_count <= 64);
        if bit_count == 0 {
            return;
        }
        if bit_count > 56 {
            // Keeps `pending` from overflowing: at most 7 pending bits plus 56.
            self.write_bits(value >> 32, bit_count - 32);
            self.write_bits(value & 0xFFFF_FFFF, 32);
            return;
        }
        let field = value & ((1u64 << bit_count) - 1);
        self.pending = (self.pending << bit_count) | field;
        self.pending_bits += bit_count;
        while self.pending_bits >= 8 {
            self.pending_bits -= 8;
            self.bytes.push((self.pending >> self.pending_bits) as u8);
        }
        self.pending &= (1u64 << self.pending_bits) - 1;
    }

    pub fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Pads the last byte with zero bits and returns the bytes.
    pub fn finish(mut self) -> Vec<u8> {
        if self.pending_bits > 0 {
            self.bytes
                .push((self.pending << (8 - self.pending_bits)) as u8);
        }
        self.bytes
    }
}

/// Reads bit fields written by [`BitWriter`].
#[derive(Debug)]
pub struct BitReader<'a> {
    data: &'a [u8],
    next_byte: usize,
    /// Buffered bits in the low `buffered_bits` bits.
    buffer: u64,
    buffered_bits: u32,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader {
            data,
            next_byte: 0,
            buffer: 0,
            buffered_bits: 0,
        }
    }

    fn refill(&mut self) {
        while self.buffered_bits <= 56 && self.next_byte < self.data.len() {
            self.buffer = (self.buffer << 8) | u64::from(self.data[self.next_byte]);
            self.next_byte += 1;
            self.buffered_bits += 8;
        }
    }

    /// Reads `bit_count` bits (at most 64) as the low bits of the result.
    pub fn read_bits(&mut self, bit_count: u32) -> Result<u64, CodecError> {
        debug_assert!(bit_count <= 64);
        if bit_count == 0 {
            return Ok(0);
        }
        if bit_count > 56 {
            let high = self.read_bits(bit_count - 32)?;
            let low = self.read_bits(32)?;
            return Ok((high << 32) | low);
        }
        if self.buffered_bits < bit_count {
            self.refill();
            if self.buffered_bits < bit_count {
                return Err(CodecError::Truncated {
                    what: "bit stream",
                    len: self.data.len(),
                });
            }
        }
        self.buffered_bits -= bit_count;
        Ok((self.buffer >> self.buffered_bits) & ((1u64 << bit_count) - 1))
    }

    pub fn read_bit(&mut self) -> Result<bool, CodecError> {
        Ok(self.read_bits(1)? == 1)
    }

    /// Consumes zero bits, at most `max`, and returns how many it
    /// consumed. Stops before a one bit and at the end of the input, so a
    /// long run of zeros costs one step per buffered word instead of one
    /// per bit.
    pub fn skip_zeros(&mut self, max: usize) -> usize {
        let mut skipped = 0;
        while skipped < max {
            if self.buffered_bits == 0 {
                self.refill();
                if self.buffered_bits == 0 {
                    break;
                }
            }
            // The buffered bits moved to the top; bits above them are
            // stale and shifted out.
            let window = self.buffer << (64 - self.buffered_bits);
            let available = self.buffered_bits;
            let wanted = u32::try_from(max - skipped).unwrap_or(u32::MAX);
            let zeros = window.leading_zeros().min(available).min(wanted);
            self.buffered_bits -= zeros;
            skipped += zeros as usize;
            if zeros < available {
                break;
            }
        }
        skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_fields_round_trip() {
        let fields: Vec<(u64, u32)> = vec![
            (1, 1),
            (0, 1),
            (0x7F, 7),
            (u64::MAX, 64),
            (0, 64),
            (0x1234_5678_9ABC, 57),
            (5, 3),
            (0xABCDEF, 24),
        ];
        let mut writer = BitWriter::default();
        for &(value, bits) in &fields {
            writer.write_bits(value, bits);
        }
        let bytes = writer.finish();
        let mut reader = BitReader::new(&bytes);
        for &(value, bits) in &fields {
            assert_eq!(reader.read_bits(bits).unwrap(), value, "{bits}-bit field");
        }
    }

    #[test]
    fn skip_zeros_stops_at_one_bits_limit_and_end() {
        let mut writer = BitWriter::default();
        writer.write_bits(0, 70);
        writer.write_bit(true);
        writer.write_bits(0, 3);
        writer.write_bit(true);
        let bytes = writer.finish();

        let mut reader = BitReader::new(&bytes);
        assert_eq!(reader.skip_zeros(1000), 70);
        assert!(reader.read_bit().unwrap());
        assert_eq!(reader.skip_zeros(2), 2);
        assert_eq!(reader.skip_zeros(1000), 1);
        assert!(reader.read_bit().unwrap());
        // Only the padding of the last byte is left.
        assert_eq!(reader.skip_zeros(1000), 5);
        assert_eq!(reader.skip_zeros(1000), 0);
        assert!(reader.read_bit().is_err());
    }

    #[test]
    fn reading_past_end_fails() {
        let mut writer = BitWriter::default();
        writer.write_bits(3, 2);
        let bytes = writer.finish();
        let mut reader = BitReader::new(&bytes);
        assert_eq!(reader.read_bits(8).unwrap(), 0b1100_0000);
        assert!(reader.read_bits(1).is_err());
    }
}
