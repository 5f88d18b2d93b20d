//! Numbers and addresses as text, written by hand rather than through `core::fmt`: the text
//! the node itself produces (query ids, the props' port, a service's address for the
//! resolver) then links none of the formatting machinery, which is about 3 KiB of a
//! microcontroller's flash. The tests compare every writer with `core::fmt`'s output.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use heapless::string::StringView;

/// Room for any address [`push_ip`] writes (at most 39 bytes: eight hex groups).
pub(crate) const IP_TEXT_LEN: usize = 45;

/// The capacity error of the writers: `out` had no room (what was written stays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// Appends `n` in decimal, as `{n}` formats it.
pub(crate) fn push_decimal<const N: usize>(
    out: &mut heapless::String<N>,
    n: u64,
) -> Result<(), Full> {
    decimal(out.as_mut_view(), n)
}

/// [`push_decimal`] into any capacity: one copy of the code for every `N`.
fn decimal(out: &mut StringView, n: u64) -> Result<(), Full> {
    // u64::MAX has 20 digits.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        // `rest % 10` is below 10: the cast cannot truncate.
        if let Some(d) = digits.get_mut(at) {
            *d = b'0' + (rest % 10) as u8;
        }
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    push_ascii(out, digits.get(at..).unwrap_or_default())
}

/// `s` as a `u16`, exactly as `str::parse::<u16>` reads it (an optional `+`, then one or more
/// ASCII digits, at most 65535), without `core`'s generic integer parser.
pub(crate) fn parse_u16(s: &[u8]) -> Option<u16> {
    let digits = s.strip_prefix(b"+").unwrap_or(s);
    if digits.is_empty() {
        return None;
    }
    let mut n: u16 = 0;
    for &b in digits {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u16::from(digit))?;
    }
    Some(n)
}

/// Appends `n` in lowercase hexadecimal without leading zeros, as `{n:x}` formats it.
fn push_hex(out: &mut StringView, n: u16) -> Result<(), Full> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut started = false;
    for shift in [12u16, 8, 4, 0] {
        let nibble = usize::from((n >> shift) & 0xf);
        if nibble != 0 || started || shift == 0 {
            started = true;
            let c = DIGITS.get(nibble).copied().unwrap_or(b'0');
            out.push(char::from(c)).map_err(|_| Full)?;
        }
    }
    Ok(())
}

/// Appends each byte as the char of the same value (`char::from`: ASCII as itself, the bytes
/// from 0x80 as U+0080..U+00FF, two bytes of UTF-8 each), through the writers' one copy of the
/// code.
pub(crate) fn push_byte_chars<const N: usize>(
    out: &mut heapless::String<N>,
    bytes: &[u8],
) -> Result<(), Full> {
    push_ascii(out.as_mut_view(), bytes)
}

/// Appends bytes, each as the char of the same value (ASCII: as itself).
fn push_ascii(out: &mut StringView, ascii: &[u8]) -> Result<(), Full> {
    if out.len().saturating_add(ascii.len()) > out.capacity() {
        return Err(Full);
    }
    for &b in ascii {
        out.push(char::from(b)).map_err(|_| Full)?;
    }
    Ok(())
}

/// Appends `ip` as `{ip}` formats it: the dotted quad for IPv4; for IPv6 the hex groups with
/// the first longest run of two or more zero groups written `::`, and `::ffff:a.b.c.d` for an
/// IPv4-mapped address.
pub(crate) fn push_ip<const N: usize>(
    out: &mut heapless::String<N>,
    ip: IpAddr,
) -> Result<(), Full> {
    let out = out.as_mut_view();
    match ip {
        IpAddr::V4(v4) => push_ipv4(out, v4),
        IpAddr::V6(v6) => push_ipv6(out, v6),
    }
}

fn push_ipv4(out: &mut StringView, ip: Ipv4Addr) -> Result<(), Full> {
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.').map_err(|_| Full)?;
        }
        decimal(out, u64::from(octet))?;
    }
    Ok(())
}

fn push_ipv6(out: &mut StringView, ip: Ipv6Addr) -> Result<(), Full> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        push_ascii(out, b"::ffff:")?;
        return push_ipv4(out, v4);
    }
    let segments = ip.segments();
    // The first longest run of zero groups.
    let (mut best_start, mut best_len) = (0, 0);
    let (mut start, mut len) = (0, 0);
    for (i, &segment) in segments.iter().enumerate() {
        if segment == 0 {
            if len == 0 {
                start = i;
            }
            len += 1;
            if len > best_len {
                (best_start, best_len) = (start, len);
            }
        } else {
            len = 0;
        }
    }
    let groups = |out: &mut StringView, part: &[u16]| -> Result<(), Full> {
        for (i, &segment) in part.iter().enumerate() {
            if i > 0 {
                out.push(':').map_err(|_| Full)?;
            }
            push_hex(out, segment)?;
        }
        Ok(())
    };
    if best_len > 1 {
        let (head, tail) = segments.split_at(best_start);
        groups(out, head)?;
        push_ascii(out, b"::")?;
        groups(out, tail.get(best_len..).unwrap_or_default())
    } else {
        groups(out, &segments)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse_u16_reads_what_str_parse_reads() {
        let samples = [
            "", "+", "-", "-0", "0", "+0", "00065535", "65535", "65536", "+1", "++1", " 1", "1 ",
            "123456", "4a", "a4", "99999", "6553", "+65535", "0x10", "\u{661}",
        ];
        for s in samples {
            assert_eq!(parse_u16(s.as_bytes()), s.parse::<u16>().ok(), "{s:?}");
        }
        for n in 0..=70_000_u32 {
            let s = std::format!("{n}");
            assert_eq!(parse_u16(s.as_bytes()), s.parse::<u16>().ok(), "{s:?}");
        }
    }

    use std::string::ToString;

    use proptest::prelude::*;

    use super::*;

    fn decimal(n: u64) -> heapless::String<20> {
        let mut out = heapless::String::new();
        push_decimal(&mut out, n).unwrap();
        out
    }

    fn ip_text(ip: IpAddr) -> heapless::String<IP_TEXT_LEN> {
        let mut out = heapless::String::new();
        push_ip(&mut out, ip).unwrap();
        out
    }

    #[test]
    fn decimals_are_written_as_fmt_writes_them() {
        for n in [0, 1, 9, 10, 99, 100, 65_535, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(decimal(n), n.to_string().as_str());
        }
    }

    #[test]
    fn every_byte_is_written_as_the_char_of_its_value() {
        for b in 0..=u8::MAX {
            let mut out = heapless::String::<8>::new();
            push_byte_chars(&mut out, &[b'q', b, b'.']).unwrap();
            let mut expected = std::string::String::from("q");
            expected.push(char::from(b));
            expected.push('.');
            assert_eq!(out.as_str(), expected, "{b:#x}");
        }
    }

    #[test]
    fn a_full_buffer_is_refused() {
        let mut out = heapless::String::<3>::new();
        assert_eq!(push_decimal(&mut out, 1234), Err(Full));
        let mut out = heapless::String::<7>::new();
        assert_eq!(push_ip(&mut out, IpAddr::from([10, 0, 0, 1])), Err(Full));
        let mut out = heapless::String::<8>::new();
        assert_eq!(push_ip(&mut out, IpAddr::from([10, 0, 0, 1])), Ok(()));
    }

    #[test]
    fn addresses_are_written_as_fmt_writes_them() {
        let cases: [IpAddr; 12] = [
            IpAddr::from([0, 0, 0, 0]),
            IpAddr::from([192, 168, 1, 20]),
            IpAddr::from([255, 255, 255, 255]),
            "::".parse().unwrap(),
            "::1".parse().unwrap(),
            "fe80::1".parse().unwrap(),
            "1::".parse().unwrap(),
            "1:0:0:1:0:0:0:1".parse().unwrap(),
            "1:0:0:1:0:0:1:1".parse().unwrap(),
            "1:0:1:1:1:1:1:1".parse().unwrap(),
            "::ffff:10.0.0.1".parse().unwrap(),
            "::10.0.0.1".parse().unwrap(),
        ];
        for ip in cases {
            assert_eq!(ip_text(ip), ip.to_string().as_str(), "{ip:?}");
        }
    }

    fn sparse_segment() -> impl Strategy<Value = u16> {
        prop_oneof![Just(0u16), Just(0xffff), any::<u16>(), 0u16..16]
    }

    proptest! {
        #[test]
        fn any_decimal_matches_fmt(n in any::<u64>()) {
            let (ours, fmt) = (decimal(n), n.to_string());
            prop_assert_eq!(ours.as_str(), fmt.as_str());
        }

        #[test]
        fn any_address_matches_fmt(
            v4 in any::<[u8; 4]>(),
            v6 in proptest::array::uniform8(sparse_segment()),
        ) {
            for ip in [IpAddr::from(v4), IpAddr::from(v6)] {
                let (ours, fmt) = (ip_text(ip), ip.to_string());
                prop_assert_eq!(ours.as_str(), fmt.as_str());
            }
        }
    }
}
