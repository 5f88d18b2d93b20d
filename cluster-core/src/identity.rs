//! Identities: service ids ([`Sid`]), hardware ids ([`Hid`]) and tags ([`Tag`]).
//!
//! All three are inline, `Copy`-able byte strings: a node never allocates to store them.

use core::fmt;

use crate::rng::Rng;

/// A short inline byte string of at most `N` bytes, compared bytewise.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InlineStr<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> InlineStr<N> {
    /// The longest value, in bytes.
    pub const MAX_LEN: usize = N;

    /// The empty string (as [`Default`], in `const` contexts).
    pub const EMPTY: Self = Self {
        len: 0,
        bytes: [0; N],
    };

    /// Copies `bytes`, or `None` when they are longer than `N` (or than 255).
    #[must_use]
    pub fn new(bytes: &[u8]) -> Option<Self> {
        // Filled in an empty value rather than in a bare array put together after: each
        // capacity's copy (three in a firmware) is smaller (Cortex-M node image: -32 B).
        let mut out = Self::EMPTY;
        out.len = fill(&mut out.bytes, bytes)?;
        Some(out)
    }

    /// The bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        prefix(&self.bytes, self.len)
    }

    /// The bytes, zero-padded to `N`.
    pub(crate) fn padded(&self) -> &[u8; N] {
        &self.bytes
    }

    /// The text, when the bytes are UTF-8.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        core::str::from_utf8(self.as_bytes()).ok()
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True when empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Copies `bytes` to the start of `out` and returns their length, or `None` when they do not
/// fit (or are longer than 255): [`InlineStr::new`] for every `N` at once, out of line on
/// microcontrollers; inlined on hosts.
#[cfg_attr(target_os = "none", inline(never))]
#[cfg_attr(not(target_os = "none"), inline(always))]
fn fill(out: &mut [u8], bytes: &[u8]) -> Option<u8> {
    let len = u8::try_from(bytes.len()).ok()?;
    out.get_mut(..bytes.len())?.copy_from_slice(bytes);
    Some(len)
}

/// The first `len` bytes of `bytes` (all of them if fewer): [`InlineStr::as_bytes`], out of
/// line and for every `N` at once on microcontrollers, as it is called in some 30 places;
/// inlined on hosts, where the call cost more than the slicing (about 25 calls a query
/// round trip).
#[cfg_attr(target_os = "none", inline(never))]
#[cfg_attr(not(target_os = "none"), inline(always))]
fn prefix(bytes: &[u8], len: u8) -> &[u8] {
    bytes.get(..usize::from(len)).unwrap_or_default()
}

/// Hashes the bytes in use, as `[u8]` does (the length, then the bytes), not the whole
/// zero-padded array: a host's maps keyed by query ids and sids hash a few bytes instead of
/// `N` plus two fields (about 110 instructions per 32-byte id with FNV-1a, four times a
/// query round trip). Consistent with `Eq`: equal strings have equal bytes in use.
impl<const N: usize> core::hash::Hash for InlineStr<N> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl<const N: usize> Default for InlineStr<N> {
    /// The empty string.
    fn default() -> Self {
        Self {
            len: 0,
            bytes: [0; N],
        }
    }
}

impl<const N: usize> fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&crate::wire::Str::from_bytes(self.as_bytes()), f)
    }
}

impl<const N: usize> fmt::Display for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&crate::wire::Str::from_bytes(self.as_bytes()), f)
    }
}

impl<const N: usize> PartialEq<str> for InlineStr<N> {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl<const N: usize> PartialEq<&str> for InlineStr<N> {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

#[cfg(feature = "serde")]
impl<const N: usize> serde::Serialize for InlineStr<N> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.as_str() {
            Some(text) => serializer.serialize_str(text),
            None => serializer.serialize_bytes(self.as_bytes()),
        }
    }
}

/// A service id: 8 random characters of `[0-9A-Za-z]` for the nodes of this project; a peer's
/// sid is treated as opaque bytes of at most [`Sid::MAX_LEN`] and compared bytewise.
pub type Sid = InlineStr<16>;

/// A hardware id: normally the host's MAC address, 17 lowercase characters such as
/// `02:fc:00:00:00:01`. Supplied by the caller; the core never reads interfaces.
pub type Hid = InlineStr<32>;

/// One tag of a node or service. Tags are kept ASCII by convention (spec 7.2 Q16).
pub type Tag = InlineStr<24>;

/// The most tags a node or a known service holds; a frame with more is dropped (`oversized`).
pub const MAX_TAGS: usize = 8;

/// A node's or a service's tags, in their stored order.
pub type TagList = heapless::Vec<Tag, MAX_TAGS, u8>;

const SID_ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Draws a fresh 8-character sid from the node's generator.
pub(crate) fn generate_sid(rng: &mut Rng) -> Sid {
    let mut bytes = [0u8; 8];
    for byte in &mut bytes {
        let index = rng.below(SID_ALPHABET.len() as u64) as usize;
        *byte = SID_ALPHABET.get(index).copied().unwrap_or(b'0');
    }
    // Eight bytes always fit.
    Sid::new(&bytes).unwrap_or_default()
}

/// True when `hid` looks like a MAC address as the reference writes it: six lowercase hex
/// pairs separated by colons.
#[must_use]
pub fn is_mac_hid(hid: &str) -> bool {
    let bytes = hid.as_bytes();
    bytes.len() == 17
        && bytes.iter().enumerate().all(|(i, &b)| {
            if i % 3 == 2 {
                b == b':'
            } else {
                b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_sids_are_eight_alphanumerics_and_differ() {
        let mut rng = Rng::new(3);
        let a = generate_sid(&mut rng);
        let b = generate_sid(&mut rng);
        assert_eq!(a.len(), 8);
        assert!(a.as_bytes().iter().all(u8::is_ascii_alphanumeric));
        assert_ne!(a, b);
    }

    #[test]
    fn inline_strings_refuse_what_does_not_fit() {
        assert!(Sid::new(&[b'x'; 16]).is_some());
        assert!(Sid::new(&[b'x'; 17]).is_none());
        assert_eq!(Hid::new(b"02:fc:00:00:00:01").unwrap(), "02:fc:00:00:00:01");
    }

    #[test]
    fn mac_hids_are_recognised() {
        assert!(is_mac_hid("02:fc:00:00:00:01"));
        assert!(!is_mac_hid("02:FC:00:00:00:01"));
        assert!(!is_mac_hid("02:fc:00:00:00"));
    }
}
