//! The command-line values of the host examples that run a firmware stack on a TAP device
//! (`cluster-embedded`'s `tap_node`, `cluster-embassy`'s `tuntap`): the stack's address and its
//! MAC, which is also the node's hid. Plain values, so that each example converts them to its
//! own smoltcp version's types.

use std::net::Ipv4Addr;

/// Reads `A.B.C.D/NN`.
///
/// # Errors
///
/// A message naming the text and what is wrong with it.
pub fn parse_ipv4_cidr(text: &str) -> Result<(Ipv4Addr, u8), String> {
    let (addr, prefix) = text
        .split_once('/')
        .ok_or_else(|| format!("bad address {text}: A.B.C.D/NN expected"))?;
    let addr: Ipv4Addr = addr
        .parse()
        .map_err(|e| format!("bad address {text}: {e}"))?;
    let prefix: u8 = prefix
        .parse()
        .map_err(|e| format!("bad prefix {text}: {e}"))?;
    if prefix > 32 {
        return Err(format!("bad prefix {text}: at most 32"));
    }
    Ok((addr, prefix))
}

/// Reads a unicast MAC address, six hex bytes separated by colons.
///
/// # Errors
///
/// A message naming the text and what is wrong with it.
pub fn parse_unicast_mac(text: &str) -> Result<[u8; 6], String> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad MAC {text}: {e}"))?;
    let mac: [u8; 6] = bytes
        .try_into()
        .map_err(|_| format!("bad MAC {text}: six bytes expected"))?;
    if mac[0] & 1 != 0 {
        return Err(format!("bad MAC {text}: not unicast"));
    }
    Ok(mac)
}

/// The default MAC of a stack at `addr`: the two bytes `prefix` (a locally administered
/// unicast pair, such as `02:c1`) followed by the four bytes of the address.
#[must_use]
pub fn mac_of(prefix: [u8; 2], addr: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = addr.octets();
    [prefix[0], prefix[1], a, b, c, d]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_macs_are_read_or_refused_with_a_reason() {
        assert_eq!(
            parse_ipv4_cidr("10.251.0.2/24"),
            Ok((Ipv4Addr::new(10, 251, 0, 2), 24))
        );
        assert!(parse_ipv4_cidr("10.251.0.2").is_err());
        assert!(parse_ipv4_cidr("10.251.0.2/33").is_err());
        assert_eq!(
            parse_unicast_mac("02:c1:0a:fb:00:02"),
            Ok([0x02, 0xc1, 0x0a, 0xfb, 0x00, 0x02])
        );
        assert!(parse_unicast_mac("03:c1:0a:fb:00:02").is_err(), "multicast");
        assert!(parse_unicast_mac("02:c1:0a").is_err());
        assert_eq!(
            mac_of([0x02, 0xc1], Ipv4Addr::new(10, 251, 0, 2)),
            [0x02, 0xc1, 10, 251, 0, 2]
        );
    }
}
