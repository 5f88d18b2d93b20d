//! Transports as the protocol names them: `c`, `t` and `u` (spec 1).

use core::fmt;

/// One transport, written as a single letter on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Protocol {
    /// `c`: UDP multicast to the group. Every node runs it.
    Multicast,
    /// `t`: TCP to the port a service advertises as `t {port N}`.
    Tcp,
    /// `u`: unix-domain stream sockets, local services only.
    Unix,
}

impl Protocol {
    /// Every protocol.
    pub const ALL: [Self; 3] = [Self::Tcp, Self::Multicast, Self::Unix];

    /// The letter on the wire: `c`, `t` or `u`.
    #[must_use]
    pub const fn letter(self) -> &'static str {
        match self {
            Self::Multicast => "c",
            Self::Tcp => "t",
            Self::Unix => "u",
        }
    }

    /// The protocol of a letter.
    #[must_use]
    pub fn from_letter(letter: &[u8]) -> Option<Self> {
        match letter {
            b"c" => Some(Self::Multicast),
            b"t" => Some(Self::Tcp),
            b"u" => Some(Self::Unix),
            _ => None,
        }
    }

    /// True for protocols never used towards a non-local service (`u`).
    #[must_use]
    pub const fn is_local_only(self) -> bool {
        matches!(self, Self::Unix)
    }

    const fn bit(self) -> u8 {
        match self {
            Self::Multicast => 1,
            Self::Tcp => 2,
            Self::Unix => 4,
        }
    }

    const fn from_bit(bit: u8) -> Option<Self> {
        match bit {
            1 => Some(Self::Multicast),
            2 => Some(Self::Tcp),
            4 => Some(Self::Unix),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.letter())
    }
}

/// An ordered list of distinct protocols: a priority order, as in the `protocols` field.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ProtocolList {
    /// Each protocol's bit, in order; 0 for the empty slots at the end (so that the empty
    /// list is all zero bits, like the rest of an empty node).
    order: [u8; 3],
}

impl ProtocolList {
    /// The empty list.
    pub const EMPTY: Self = Self { order: [0; 3] };

    /// The list of the given protocols in order; duplicates after the first are ignored.
    #[must_use]
    pub fn new(protocols: &[Protocol]) -> Self {
        let mut list = Self::EMPTY;
        for &protocol in protocols {
            list.push(protocol);
        }
        list
    }

    /// Reads a `protocols` field: letters in order, unknown letters skipped.
    #[must_use]
    pub fn from_letters<'a>(letters: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut list = Self::EMPTY;
        for protocol in letters.into_iter().filter_map(Protocol::from_letter) {
            list.push(protocol);
        }
        list
    }

    /// Appends `protocol` unless it is already listed.
    pub fn push(&mut self, protocol: Protocol) {
        if self.contains(protocol) {
            return;
        }
        if let Some(slot) = self.order.iter_mut().find(|slot| **slot == 0) {
            *slot = protocol.bit();
        }
    }

    /// True when `protocol` is listed.
    #[must_use]
    #[expect(
        clippy::manual_contains,
        reason = "`<[u8]>::contains` links `core`'s `memchr` (172 B on a Cortex-M) for a list of 4"
    )]
    pub fn contains(&self, protocol: Protocol) -> bool {
        let bit = protocol.bit();
        self.order.iter().any(|&b| b == bit)
    }

    /// The protocols in order.
    pub fn iter(&self) -> impl Iterator<Item = Protocol> + '_ {
        self.order.iter().map_while(|&bit| Protocol::from_bit(bit))
    }

    /// Number of protocols.
    #[must_use]
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.order[0] == 0
    }

    /// The letters in order, for the `protocols` field.
    #[must_use]
    pub fn letters(&self) -> heapless::Vec<&'static str, 3> {
        self.iter().map(Protocol::letter).collect()
    }
}

impl fmt::Debug for ProtocolList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A set of protocols, as a bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub(crate) struct ProtocolSet(u8);

impl ProtocolSet {
    pub(crate) fn insert(&mut self, protocol: Protocol) {
        self.0 |= protocol.bit();
    }

    pub(crate) fn contains(self, protocol: Protocol) -> bool {
        self.0 & protocol.bit() != 0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members in the canonical order `t c u`.
    pub(crate) fn iter(self) -> impl Iterator<Item = Protocol> {
        Protocol::ALL.into_iter().filter(move |p| self.contains(*p))
    }
}

/// An adapter's name for one stream connection (`t` or `u`), unique while it is open.
///
/// `ConnId(u32::MAX)` ([`ConnId::RESERVED`]) is reserved: the node keeps the connections it
/// remembers in 4 bytes, with that value standing for none, so a frame that arrives on it is
/// handled but never answered on it, nor the connection reused (adapters name connections
/// with any other value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u32);

impl ConnId {
    /// The one id the node never remembers a connection by (see [`ConnId`]).
    pub const RESERVED: Self = Self(u32::MAX);
}

/// An `Option<ConnId>` in 4 bytes, for records kept by the dozen (a service's connection, a
/// queued send's): the id's bits inverted, so that none is zero bits (as an empty node must
/// be) and [`ConnId::RESERVED`] cannot be stored (it reads back as none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ConnSlot(Option<core::num::NonZeroU32>);

impl ConnSlot {
    /// No connection.
    pub(crate) const NONE: Self = Self(None);

    /// `conn` kept; [`ConnId::RESERVED`] is kept as none.
    pub(crate) const fn new(conn: Option<ConnId>) -> Self {
        match conn {
            Some(ConnId(id)) => Self(core::num::NonZeroU32::new(!id)),
            None => Self::NONE,
        }
    }

    /// The connection kept, if any.
    pub(crate) const fn get(self) -> Option<ConnId> {
        match self.0 {
            Some(inverted) => Some(ConnId(!inverted.get())),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conn_slot_keeps_every_id_but_the_reserved_one_in_four_bytes() {
        assert_eq!(size_of::<ConnSlot>(), 4);
        for id in [0, 1, 7, u32::MAX - 1] {
            assert_eq!(ConnSlot::new(Some(ConnId(id))).get(), Some(ConnId(id)));
        }
        assert_eq!(ConnSlot::new(Some(ConnId::RESERVED)).get(), None);
        assert_eq!(ConnSlot::new(None).get(), None);
        assert_eq!(ConnSlot::NONE, ConnSlot::default());
    }

    #[test]
    fn lists_keep_order_and_drop_duplicates() {
        let list = ProtocolList::new(&[Protocol::Tcp, Protocol::Multicast, Protocol::Tcp]);
        assert_eq!(list.letters().as_slice(), ["t", "c"]);
        let read = ProtocolList::from_letters([&b"u"[..], b"x", b"c"]);
        assert_eq!(read.letters().as_slice(), ["u", "c"]);
        assert!(ProtocolList::EMPTY.is_empty());
    }
}
