//! The hid of a node that has no host name to give: its interface's MAC address, as the
//! reference writes it (firmware nodes: `cluster-embedded`, `cluster-embassy`).

use core::fmt;

/// A MAC address written as a hid: 17 lowercase characters such as `02:fc:00:00:00:01`
/// (spec 5.2). Pass [`as_str`](Self::as_str) to [`Node::start`](crate::Node::start) or
/// [`Node::new`](crate::Node::new).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacHid([u8; 17]);

impl MacHid {
    /// The hid of the interface with this MAC address.
    #[must_use]
    pub const fn new(mac: [u8; 6]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        // Every byte written in the loop, colons included: an array filled with `:` first
        // would link a `memset` of its own on a Cortex-M (`__aeabi_memset4`, 184 bytes).
        let mut out = [0; 17];
        let mut i = 0;
        while i < 6 {
            out[3 * i] = HEX[(mac[i] >> 4) as usize];
            out[3 * i + 1] = HEX[(mac[i] & 0x0f) as usize];
            if i < 5 {
                out[3 * i + 2] = b':';
            }
            i += 1;
        }
        Self(out)
    }

    /// The hid text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Always ASCII: hex digits and colons.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for MacHid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for MacHid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_written_as_the_reference_writes_hids() {
        let hid = MacHid::new([0x02, 0xfc, 0x00, 0x0a, 0xbc, 0xff]);
        assert_eq!(hid.as_str(), "02:fc:00:0a:bc:ff");
        assert!(crate::is_mac_hid(hid.as_str()));
    }
}
