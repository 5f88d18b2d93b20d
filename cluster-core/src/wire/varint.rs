//! Unsigned LEB128 varints, as protobuf writes them (spec 2.2).

use super::DecodeError;

/// The longest encoding of a `u64`: ten bytes of seven bits.
pub(crate) const MAX_LEN: usize = 10;

/// Decodes one varint from the start of `input`.
///
/// Returns the value and the number of bytes it took.
///
/// # Errors
///
/// [`DecodeError::TruncatedVarint`] when `input` ends before a byte without the continuation
/// bit, and [`DecodeError::VarintOverflow`] when the value does not fit in 64 bits.
#[inline]
pub fn decode(input: &[u8]) -> Result<(u64, usize), DecodeError> {
    // Most varints of a frame (ids, types, short lengths) take one byte.
    if let Some(&byte) = input.first()
        && byte < 0x80
    {
        return Ok((u64::from(byte), 1));
    }
    decode_long(input)
}

fn decode_long(input: &[u8]) -> Result<(u64, usize), DecodeError> {
    let mut value: u64 = 0;
    for (index, &byte) in input.iter().enumerate().take(MAX_LEN) {
        let bits = u64::from(byte & 0x7F);
        // The tenth byte may only carry the top bit of a u64.
        if index == MAX_LEN - 1 && bits > 1 {
            return Err(DecodeError::VarintOverflow);
        }
        // `index` is below 10, so the shift is below 64.
        value |= bits.wrapping_shl(7u32.wrapping_mul(index as u32));
        if byte & 0x80 == 0 {
            return Ok((value, index.wrapping_add(1)));
        }
    }
    if input.len() >= MAX_LEN {
        Err(DecodeError::VarintOverflow)
    } else {
        Err(DecodeError::TruncatedVarint)
    }
}

/// The number of bytes `value` takes as a varint (1 to 10).
#[must_use]
pub const fn encoded_len(value: u64) -> usize {
    // At least one bit, at most 64.
    let bits = 64usize.wrapping_sub((value | 1).leading_zeros() as usize);
    bits.div_ceil(7)
}

/// Writes `value` at the start of `out` and returns the number of bytes written, or `None`
/// when `out` is shorter than [`encoded_len`]`(value)`.
pub fn encode(value: u64, out: &mut [u8]) -> Option<usize> {
    let len = encoded_len(value);
    let out = out.get_mut(..len)?;
    let mut rest = value;
    for byte in out.iter_mut() {
        *byte = (rest & 0x7F) as u8 | 0x80;
        rest >>= 7;
    }
    if let Some(last) = out.last_mut() {
        *last &= 0x7F;
    }
    Some(len)
}

/// Writes `value` at the start of `out`, seven bits a byte, and returns the number of bytes
/// written, or `None` when `out` ends first (having written the bytes that fitted).
///
/// The same bytes as [`encode`], without computing the length first: the encoder's lengths
/// and values of more than one byte take a few instructions a byte this way, where
/// [`encode`]'s length arithmetic and loop set-up cost more than the two or three bytes
/// most of them take (a 1 KiB event's encode: 30 instructions fewer on x86_64).
/// Microcontrollers use [`encode`] itself, which their images link anyway (flash).
#[cfg(not(target_os = "none"))]
#[inline]
pub(crate) fn put(value: u64, out: &mut [u8]) -> Option<usize> {
    let mut rest = value;
    for (index, slot) in out.iter_mut().enumerate() {
        if rest < 0x80 {
            *slot = rest as u8;
            return Some(index.wrapping_add(1));
        }
        *slot = (rest as u8) | 0x80;
        rest >>= 7;
    }
    None
}

/// [`encode`] on microcontrollers (see the hosts' `put`).
#[cfg(target_os = "none")]
#[inline]
pub(crate) fn put(value: u64, out: &mut [u8]) -> Option<usize> {
    encode(value, out)
}

/// True when the encoding of `value` starts with the frame header `C0 8D`.
///
/// The reference decoder skips a `C0 8D` wherever it reads a varint (the header-skip quirk,
/// spec 2.4), so such values are refused by the encoder in compat mode. They are the values
/// `v >= 16384` with `v % 16384 == 1728`: 18112, 34496, 50880, ...
#[must_use]
pub const fn is_reserved_prefix(value: u64) -> bool {
    value >= 1 << 14 && value % (1 << 14) == 1728
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(value: u64) -> ([u8; MAX_LEN], usize) {
        let mut buf = [0; MAX_LEN];
        let len = encode(value, &mut buf).unwrap();
        (buf, len)
    }

    #[test]
    fn spec_table_values_encode_as_listed() {
        for (value, bytes) in [
            (0u64, &[0x00][..]),
            (127, &[0x7F]),
            (150, &[0x96, 0x01]),
            (192, &[0xC0, 0x01]),
            (300, &[0xAC, 0x02]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (18112, &[0xC0, 0x8D, 0x01]),
        ] {
            let (buf, len) = enc(value);
            assert_eq!(&buf[..len], bytes, "{value}");
            assert_eq!(decode(bytes), Ok((value, bytes.len())));
        }
    }

    #[test]
    fn max_u64_round_trips_in_ten_bytes() {
        let (buf, len) = enc(u64::MAX);
        assert_eq!(len, 10);
        assert_eq!(decode(&buf[..len]), Ok((u64::MAX, 10)));
    }

    #[test]
    fn eleven_byte_varint_overflows() {
        let bytes = [
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
        ];
        assert_eq!(decode(&bytes), Err(DecodeError::VarintOverflow));
        let ten = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02];
        assert_eq!(decode(&ten), Err(DecodeError::VarintOverflow));
    }

    #[test]
    fn cut_varint_is_truncated() {
        assert_eq!(decode(&[]), Err(DecodeError::TruncatedVarint));
        assert_eq!(decode(&[0x80]), Err(DecodeError::TruncatedVarint));
        assert_eq!(decode(&[0x80, 0x80]), Err(DecodeError::TruncatedVarint));
    }

    #[test]
    fn reserved_prefix_matches_exactly_the_c08d_encodings() {
        for value in 0..200_000u64 {
            let (buf, len) = enc(value);
            let starts = len >= 2 && buf[0] == 0xC0 && buf[1] == 0x8D;
            assert_eq!(is_reserved_prefix(value), starts, "{value}");
        }
    }

    proptest::proptest! {
        #[test]
        fn put_writes_what_encode_writes(value: u64, room in 0..=MAX_LEN) {
            let mut put_buf = [0; MAX_LEN];
            let put_len = put(value, &mut put_buf[..room]);
            if room >= encoded_len(value) {
                let (buf, len) = enc(value);
                proptest::prop_assert_eq!(put_len, Some(len));
                proptest::prop_assert_eq!(&put_buf[..len], &buf[..len]);
            } else {
                proptest::prop_assert_eq!(put_len, None);
            }
        }

        #[test]
        fn any_u64_round_trips(value: u64) {
            let (buf, len) = enc(value);
            proptest::prop_assert_eq!(len, encoded_len(value));
            proptest::prop_assert_eq!(decode(&buf[..len]), Ok((value, len)));
        }

        #[test]
        fn decode_never_panics(bytes: std::vec::Vec<u8>) {
            let _ = decode(&bytes);
        }
    }
}
