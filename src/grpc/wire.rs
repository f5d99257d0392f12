//! A reader of the protobuf wire format over a byte slice, for the ingest
//! messages that `super::points` decodes by hand.
//!
//! Prost decodes into owned structs: a `String` per metric name and a
//! `HashMap` with two more per tag, for every point. The ingest path reads
//! the same bytes in place instead, so a point of the same series as the
//! one before it costs a byte comparison. This reader knows the wire
//! types, not the messages; field numbers are matched by the caller.

use std::fmt;

/// Largest field number protobuf allows, 2^29 - 1.
const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;

/// Deepest nesting of unknown groups that [`Reader::skip`] follows.
const MAX_GROUP_DEPTH: usize = 64;

/// Wire type of a field, the low three bits of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireType {
    Varint,
    Fixed64,
    LengthDelimited,
    StartGroup,
    EndGroup,
    Fixed32,
}

impl fmt::Display for WireType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            WireType::Varint => "varint",
            WireType::Fixed64 => "64-bit",
            WireType::LengthDelimited => "length-delimited",
            WireType::StartGroup => "start-group",
            WireType::EndGroup => "end-group",
            WireType::Fixed32 => "32-bit",
        };
        f.write_str(name)
    }
}

/// An error in a message that is not valid protobuf. The caller adds the
/// field it was reading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message ends inside a field ({needed} bytes needed, {left} left)")]
    Truncated { needed: usize, left: usize },
    #[error("message ends inside a varint")]
    TruncatedVarint,
    #[error("varint is longer than 10 bytes or overflows 64 bits")]
    VarintOverflow,
    #[error("field number 0 is not allowed")]
    FieldZero,
    #[error("field number {0} is over the protobuf maximum of 536870911")]
    FieldNumberTooLarge(u64),
    #[error("wire type {0} is invalid; protobuf defines wire types 0 to 5")]
    InvalidWireType(u64),
    #[error("group of field {field} has no end (or ends with field {found})")]
    UnterminatedGroup { field: u64, found: u64 },
    #[error("groups nest deeper than {MAX_GROUP_DEPTH} levels")]
    GroupTooDeep,
    #[error("field {field} has wire type {found}, expected {expected}")]
    WrongWireType {
        field: u32,
        found: WireType,
        expected: &'static str,
    },
    #[error("packed doubles take {len} bytes, which is not a multiple of 8")]
    PackedDoubleLength { len: usize },
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
}

/// A cursor over one message's bytes.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Reads a varint of at most 10 bytes.
    #[inline]
    pub fn varint(&mut self) -> Result<u64, WireError> {
        // The common case: one byte.
        if let Some(&first) = self.bytes.first()
            && first < 0x80
        {
            self.bytes = &self.bytes[1..];
            return Ok(u64::from(first));
        }
        if let Some(prefix) = self.bytes.first_chunk::<10>() {
            let (value, len) = varint_from_ten(prefix)?;
            self.bytes = &self.bytes[len..];
            return Ok(value);
        }
        self.varint_near_end()
    }

    /// Reads a varint byte by byte, when fewer than 10 bytes are left.
    fn varint_near_end(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for (i, &byte) in self.bytes.iter().take(10).enumerate() {
            // The tenth byte carries only the 64th bit.
            if i == 9 && byte > 1 {
                return Err(WireError::VarintOverflow);
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                self.bytes = &self.bytes[i + 1..];
                return Ok(value);
            }
        }
        if self.bytes.len() >= 10 {
            Err(WireError::VarintOverflow)
        } else {
            Err(WireError::TruncatedVarint)
        }
    }

    /// Reads a field key: the field number and its wire type.
    #[inline(always)]
    pub fn key(&mut self) -> Result<(u32, WireType), WireError> {
        // Fields 1 to 15 have one-byte keys.
        let key = match self.bytes.split_first() {
            Some((&first, rest)) if first < 0x80 => {
                self.bytes = rest;
                u64::from(first)
            }
            _ => self.varint()?,
        };
        let field = key >> 3;
        if field == 0 {
            return Err(WireError::FieldZero);
        }
        if field > MAX_FIELD_NUMBER {
            return Err(WireError::FieldNumberTooLarge(field));
        }
        let wire_type = match key & 7 {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::LengthDelimited,
            3 => WireType::StartGroup,
            4 => WireType::EndGroup,
            5 => WireType::Fixed32,
            other => return Err(WireError::InvalidWireType(other)),
        };
        Ok((field as u32, wire_type))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], WireError> {
        if len > self.bytes.len() {
            return Err(WireError::Truncated {
                needed: len,
                left: self.bytes.len(),
            });
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(taken)
    }

    /// Reads the 8 bytes of a 64-bit field.
    #[inline]
    pub fn fixed64(&mut self) -> Result<u64, WireError> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    /// Reads the body of a length-delimited field.
    #[inline]
    pub fn length_delimited(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.varint()?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        self.take(len)
    }

    /// Skips the value of a field this reader's caller does not know. A
    /// group (a proto2 feature) is skipped up to its end, as prost's
    /// `skip_field` does.
    pub fn skip(&mut self, field: u32, wire_type: WireType) -> Result<(), WireError> {
        self.skip_nested(u64::from(field), wire_type, 0)
    }

    fn skip_nested(
        &mut self,
        field: u64,
        wire_type: WireType,
        depth: usize,
    ) -> Result<(), WireError> {
        match wire_type {
            WireType::Varint => self.varint().map(drop),
            WireType::Fixed64 => self.take(8).map(drop),
            WireType::LengthDelimited => self.length_delimited().map(drop),
            WireType::Fixed32 => self.take(4).map(drop),
            WireType::EndGroup => Err(WireError::UnterminatedGroup {
                field: 0,
                found: field,
            }),
            WireType::StartGroup => {
                if depth >= MAX_GROUP_DEPTH {
                    return Err(WireError::GroupTooDeep);
                }
                loop {
                    if self.is_empty() {
                        return Err(WireError::UnterminatedGroup { field, found: 0 });
                    }
                    let (inner, inner_type) = self.key()?;
                    if inner_type == WireType::EndGroup {
                        if u64::from(inner) != field {
                            return Err(WireError::UnterminatedGroup {
                                field,
                                found: u64::from(inner),
                            });
                        }
                        return Ok(());
                    }
                    self.skip_nested(u64::from(inner), inner_type, depth + 1)?;
                }
            }
        }
    }
}

/// Decodes the varint at the start of `bytes` without a loop: the first
/// eight bytes are read as one word, and their 7-bit groups are packed
/// together with three shift-and-mask steps. Nanosecond timestamps of
/// today take 9 bytes, so a byte loop would take 9 rounds per time.
#[inline]
fn varint_from_ten(bytes: &[u8; 10]) -> Result<(u64, usize), WireError> {
    let word = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let ends = !word & 0x8080_8080_8080_8080;

    let (groups, len) = if ends != 0 {
        // The varint ends in this word; keep its bytes only.
        let len = (ends.trailing_zeros() as usize + 1) / 8;
        let in_varint = if len == 8 {
            word
        } else {
            word & ((1u64 << (8 * len)) - 1)
        };
        (in_varint, len)
    } else {
        (word, 8)
    };

    let mut packed = groups & 0x7f7f_7f7f_7f7f_7f7f;
    packed = ((packed & 0x7f00_7f00_7f00_7f00) >> 1) | (packed & 0x007f_007f_007f_007f);
    packed = ((packed & 0x3fff_0000_3fff_0000) >> 2) | (packed & 0x0000_3fff_0000_3fff);
    packed = ((packed & 0x0fff_ffff_0000_0000) >> 4) | (packed & 0x0000_0000_0fff_ffff);
    if len < 8 || ends != 0 {
        return Ok((packed, len));
    }

    let ninth = bytes[8];
    packed |= u64::from(ninth & 0x7f) << 56;
    if ninth < 0x80 {
        return Ok((packed, 9));
    }
    let tenth = bytes[9];
    if tenth > 1 {
        return Err(WireError::VarintOverflow);
    }
    Ok((packed | (u64::from(tenth) << 63), 10))
}

/// Number of varints in a packed field: each ends with the one byte
/// whose top bit is clear. Counts eight bytes at a time.
fn varint_count(packed: &[u8]) -> usize {
    let (words, rest) = packed.as_chunks::<8>();
    let in_words: u32 = words
        .iter()
        .map(|w| (!u64::from_le_bytes(*w) & 0x8080_8080_8080_8080).count_ones())
        .sum();
    in_words as usize + rest.iter().filter(|&&b| b < 0x80).count()
}

/// Checks a field's wire type against the one its type needs.
#[inline]
pub fn expect(
    field: u32,
    found: WireType,
    required: WireType,
    expected: &'static str,
) -> Result<(), WireError> {
    if found == required {
        Ok(())
    } else {
        Err(WireError::WrongWireType {
            field,
            found,
            expected,
        })
    }
}

/// Reads a string field's bytes as UTF-8.
pub fn utf8(bytes: &[u8]) -> Result<&str, WireError> {
    std::str::from_utf8(bytes).map_err(|_| WireError::InvalidUtf8)
}

/// Appends a repeated `int64` field, packed or not, to `out`.
pub fn extend_int64(
    reader: &mut Reader<'_>,
    field: u32,
    wire_type: WireType,
    out: &mut Vec<i64>,
) -> Result<(), WireError> {
    match wire_type {
        WireType::Varint => out.push(reader.varint()? as i64),
        WireType::LengthDelimited => {
            let packed = reader.length_delimited()?;
            out.reserve(varint_count(packed));
            let mut inner = Reader::new(packed);
            while !inner.is_empty() {
                out.push(inner.varint()? as i64);
            }
        }
        other => {
            return Err(WireError::WrongWireType {
                field,
                found: other,
                expected: "varint or packed",
            });
        }
    }
    Ok(())
}

/// Appends a repeated `double` field, packed or not, to `out`.
pub fn extend_double(
    reader: &mut Reader<'_>,
    field: u32,
    wire_type: WireType,
    out: &mut Vec<f64>,
) -> Result<(), WireError> {
    match wire_type {
        WireType::Fixed64 => out.push(f64::from_bits(reader.fixed64()?)),
        WireType::LengthDelimited => {
            let packed = reader.length_delimited()?;
            if packed.len() % 8 != 0 {
                return Err(WireError::PackedDoubleLength { len: packed.len() });
            }
            out.extend(
                packed
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))),
            );
        }
        other => {
            return Err(WireError::WrongWireType {
                field,
                found: other,
                expected: "64-bit or packed",
            });
        }
    }
    Ok(())
}

/// Appends a repeated `bool` field, packed or not, to `out`.
pub fn extend_bool(
    reader: &mut Reader<'_>,
    field: u32,
    wire_type: WireType,
    out: &mut Vec<bool>,
) -> Result<(), WireError> {
    match wire_type {
        WireType::Varint => out.push(reader.varint()? != 0),
        WireType::LengthDelimited => {
            let mut inner = Reader::new(reader.length_delimited()?);
            while !inner.is_empty() {
                out.push(inner.varint()? != 0);
            }
        }
        other => {
            return Err(WireError::WrongWireType {
                field,
                found: other,
                expected: "varint or packed",
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_varint(mut value: u64, out: &mut Vec<u8>) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }

    #[test]
    fn varints_round_trip_at_every_length() {
        let values = [
            0u64,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            1 << 56,
            i64::MAX as u64,
            (-1i64) as u64,
            u64::MAX,
        ];
        for value in values {
            let mut bytes = Vec::new();
            encode_varint(value, &mut bytes);
            let mut reader = Reader::new(&bytes);
            assert_eq!(reader.varint(), Ok(value), "{value}");
            assert!(reader.is_empty());
        }
    }

    #[test]
    fn word_decoding_agrees_with_the_byte_loop() {
        // Every length from 1 to 10 bytes, followed by enough bytes for
        // the word path, and near the end of the buffer for the byte loop.
        let mut value = 1u64;
        for _ in 0..64 {
            for candidate in [value, value - 1, value | (value >> 1)] {
                let mut bytes = Vec::new();
                encode_varint(candidate, &mut bytes);
                let len = bytes.len();
                bytes.extend_from_slice(&[0xff; 12]);
                let mut reader = Reader::new(&bytes);
                assert_eq!(reader.varint(), Ok(candidate), "{candidate}");
                assert_eq!(reader.bytes.len(), 12, "{candidate}");
                let mut near_end = Reader::new(&bytes[..len]);
                assert_eq!(near_end.varint_near_end(), Ok(candidate), "{candidate}");
            }
            value = value.wrapping_shl(1);
            if value == 0 {
                break;
            }
        }
    }

    #[test]
    fn varint_count_counts_ends() {
        let mut bytes = Vec::new();
        for value in [0u64, 300, u64::MAX, 1 << 40, 5, 7, 1 << 62] {
            encode_varint(value, &mut bytes);
        }
        assert_eq!(varint_count(&bytes), 7);
        assert_eq!(varint_count(&[]), 0);
    }

    #[test]
    fn overlong_and_truncated_varints_fail() {
        let eleven = [0xffu8; 11];
        assert_eq!(
            Reader::new(&eleven).varint(),
            Err(WireError::VarintOverflow)
        );
        let mut ten = vec![0x80u8; 9];
        ten.push(0x01);
        assert_eq!(Reader::new(&ten).varint(), Ok(1 << 63));
        let mut tenth_too_big = vec![0xffu8; 9];
        tenth_too_big.push(0x02);
        assert_eq!(
            Reader::new(&tenth_too_big).varint(),
            Err(WireError::VarintOverflow)
        );
        assert_eq!(
            Reader::new(&[0x80, 0x80]).varint(),
            Err(WireError::TruncatedVarint)
        );
        assert_eq!(Reader::new(&[]).varint(), Err(WireError::TruncatedVarint));
    }

    #[test]
    fn length_beyond_the_message_fails() {
        let bytes = [0x05, b'a', b'b'];
        assert_eq!(
            Reader::new(&bytes).length_delimited(),
            Err(WireError::Truncated { needed: 5, left: 2 })
        );
    }

    #[test]
    fn unknown_groups_are_skipped_to_their_end() {
        // Field 9 group holding field 1 = 5, then field 2 = 7.
        let bytes = [0x4b, 0x08, 0x05, 0x4c, 0x10, 0x07];
        let mut reader = Reader::new(&bytes);
        let (field, wire_type) = reader.key().unwrap();
        assert_eq!(wire_type, WireType::StartGroup);
        reader.skip(field, wire_type).unwrap();
        assert_eq!(reader.key(), Ok((2, WireType::Varint)));

        let unterminated = [0x4b, 0x08, 0x05];
        let mut reader = Reader::new(&unterminated);
        let (field, wire_type) = reader.key().unwrap();
        assert!(matches!(
            reader.skip(field, wire_type),
            Err(WireError::UnterminatedGroup { .. })
        ));

        let deep = vec![0x4b; 100];
        let mut reader = Reader::new(&deep);
        let (field, wire_type) = reader.key().unwrap();
        assert_eq!(reader.skip(field, wire_type), Err(WireError::GroupTooDeep));
    }

    #[test]
    fn keys_reject_field_zero_and_bad_numbers() {
        assert_eq!(Reader::new(&[0x02]).key(), Err(WireError::FieldZero));
        assert_eq!(
            Reader::new(&[0x0e]).key(),
            Err(WireError::InvalidWireType(6))
        );
        assert_eq!(
            Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x20]).key(),
            Err(WireError::FieldNumberTooLarge(1 << 30))
        );
        assert_eq!(
            Reader::new(&[0x0a]).key(),
            Ok((1, WireType::LengthDelimited))
        );
    }

    #[test]
    fn packed_and_unpacked_int64_both_read() {
        let mut packed = vec![0x03];
        encode_varint(1, &mut packed);
        encode_varint(300, &mut packed);
        let mut out = Vec::new();
        extend_int64(
            &mut Reader::new(&packed),
            3,
            WireType::LengthDelimited,
            &mut out,
        )
        .unwrap();
        extend_int64(&mut Reader::new(&[0x07]), 3, WireType::Varint, &mut out).unwrap();
        assert_eq!(out, vec![1, 300, 7]);
    }

    #[test]
    fn packed_doubles_need_whole_values() {
        let mut bytes = vec![12u8];
        bytes.extend_from_slice(&[0; 12]);
        let mut out = Vec::new();
        assert_eq!(
            extend_double(
                &mut Reader::new(&bytes),
                4,
                WireType::LengthDelimited,
                &mut out
            ),
            Err(WireError::PackedDoubleLength { len: 12 })
        );
    }
}
