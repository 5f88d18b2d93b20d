//! Per-node data: key/value pairs a node publishes in its props, which every peer reads
//! (spec 3.5 keeps the layout: `data` of heartbeats and discoveries is a dict protocol →
//! props, merged shallowly by reference nodes, which store unknown keys as props).
//!
//! The pairs travel as one more entry of the props dict, after the protocols:
//!
//! ```text
//! t {port 41241} meta {version 3 data {region eu rack 7} hex {blob 00ff}}
//! ```
//!
//! `version` counts the node's updates (from 1 at each join); `data` holds the values that
//! are UTF-8 text, `hex` (only when needed) the others, in lowercase hex. A Tcl node sees the
//! whole as its service's `meta` props. The entry changes as a whole, so a peer never sees
//! half an update, and it rides every frame that carries props: the heartbeat sent at once
//! on each update, discovery answers, the join. A periodic heartbeat of a node with data
//! carries only `metav <version>` (the digest); a peer that missed an update sees the newer
//! version there and asks for the props with a discovery filtered to that node, so every
//! peer ends up with the latest version even under loss.
//!
//! The text lives in one of the node's payload slots while the node publishes data (the slot
//! is pinned there: no other field of the node records it, so a node that publishes nothing
//! pays nothing), and its size is bounded by the node's `DATA` capacity, props included.

use super::Core;
use crate::error::DataError;
use crate::event::{Event, Payload};
use crate::identity::Sid;
use crate::policy::Policy;
use crate::stats::bump;
use crate::text::{parse_u16, push_decimal};
use crate::time::Instant;
use crate::wire::tcl_list::{self, ListWriter, Sink};

/// The props key of the data entry.
pub(crate) const META: &str = "meta";
/// The props key of the version digest on periodic heartbeats.
pub(crate) const DIGEST: &str = "metav";

/// What a received props dict says about the sender's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataSeen {
    /// The whole entry, at this version.
    Full(u16),
    /// Only the digest: the sender is at this version.
    Digest(u16),
}

/// True when `version` is newer than `known` (0: none known), in wrapping order: versions
/// count 1 to 65535 and wrap to 1, and a peer is never 32,768 updates behind.
pub(crate) fn newer(version: u16, known: u16) -> bool {
    version != 0 && (known == 0 || version.wrapping_sub(known).cast_signed() > 0)
}

/// The version an element holds (a decimal number up to 65535), when it is one.
pub(crate) fn element_version(element: &tcl_list::Element<'_>) -> Option<u16> {
    let mut digits = heapless::String::<8>::new();
    element.write_to(&mut digits).ok()?;
    parse_u16(digits.as_bytes())
}

/// Writes the data entry's value: `version V data {..} [hex {..}]`.
fn write_entry<const N: usize>(
    version: u16,
    pairs: &[(&str, &[u8])],
    out: &mut heapless::String<N>,
) -> Result<(), DataError> {
    let full = |_| DataError::TooLarge;
    let mut text = heapless::String::<N>::new();
    let mut hex = heapless::String::<N>::new();
    {
        let mut text_pairs = ListWriter::new(Sink(&mut text));
        let mut hex_pairs = ListWriter::new(Sink(&mut hex));
        let mut digits = heapless::String::<N>::new();
        for (index, (key, value)) in pairs.iter().enumerate() {
            if key.is_empty() {
                return Err(DataError::BadKey);
            }
            if pairs.iter().take(index).any(|(k, _)| k == key) {
                return Err(DataError::DuplicateKey);
            }
            match core::str::from_utf8(value) {
                Ok(value) => text_pairs.push_dict_pair(key, value).map_err(full)?,
                Err(_) => {
                    digits.clear();
                    for byte in *value {
                        for nibble in [byte >> 4, byte & 0xf] {
                            let c = char::from_digit(u32::from(nibble), 16).unwrap_or('0');
                            digits.push(c).map_err(|_| DataError::TooLarge)?;
                        }
                    }
                    hex_pairs.push_dict_pair(key, &digits).map_err(full)?;
                }
            }
        }
    }
    let mut number = heapless::String::<12>::new();
    push_decimal(&mut number, u64::from(version)).map_err(|_| DataError::TooLarge)?;
    let mut entry = ListWriter::new(Sink(out));
    entry.push_dict_pair("version", &number).map_err(full)?;
    entry.push_dict_pair("data", &text).map_err(full)?;
    if !hex.is_empty() {
        entry.push_dict_pair("hex", &hex).map_err(full)?;
    }
    Ok(())
}

/// `props` followed by the data entry `meta {entry}`, into `out`.
fn write_props_with_entry<const N: usize>(
    props: &str,
    entry: &str,
    out: &mut heapless::String<N>,
) -> Result<(), DataError> {
    let full = |_| DataError::TooLarge;
    out.clear();
    out.push_str(props).map_err(|_| DataError::TooLarge)?;
    if !props.is_empty() {
        out.push(' ').map_err(|_| DataError::TooLarge)?;
    }
    tcl_list::write_element(&mut Sink(&mut *out), META, false).map_err(full)?;
    out.push(' ').map_err(|_| DataError::TooLarge)?;
    tcl_list::write_element(&mut Sink(&mut *out), entry, false).map_err(full)
}

impl<P: Policy, const SERVICES: usize, const DATA: usize, const EVENTS: usize>
    Core<P, SERVICES, DATA, EVENTS>
{
    /// Publishes `pairs` as this node's data (see [`Node::set_data`](crate::Node::set_data)).
    pub(super) fn set_data(
        &mut self,
        now: Instant,
        pairs: &[(&str, &[u8])],
    ) -> Result<u16, DataError> {
        if !self.joined() {
            return Err(DataError::NotJoined);
        }
        let version = match self.data_version().wrapping_add(1) {
            0 => 1,
            v => v,
        };
        let mut entry = heapless::String::<DATA>::new();
        write_entry(version, pairs, &mut entry)?;
        let mut text = heapless::String::<DATA>::new();
        write_props_with_entry(&self.props_text, &entry, &mut text)?;
        self.store_data_text(&text)?;
        self.props_changed(now);
        Ok(version)
    }

    /// Puts the full props text in the data's payload slot (taking one the first time).
    fn store_data_text(&mut self, text: &str) -> Result<(), DataError> {
        let payload =
            Payload::<DATA>::new(Some(text.as_bytes()), None).ok_or(DataError::TooLarge)?;
        if let Some(stored) = self.payloads.pinned_mut() {
            *stored = payload;
            Ok(())
        } else {
            self.payloads.pin(payload).ok_or(DataError::Full)
        }
    }

    /// The props text frames carry: the protocols' props, and the data entry when this node
    /// publishes data.
    pub(super) fn props_data_text(&self) -> &str {
        self.payloads
            .pinned()
            .and_then(Payload::data_str)
            .unwrap_or(&self.props_text)
    }

    /// The version of the data this node publishes (0: none), read from its text.
    pub(super) fn data_version(&self) -> u16 {
        let text = self.payloads.pinned().and_then(Payload::data_str);
        text.and_then(|t| tcl_list::dict_get(t, META).ok().flatten())
            .and_then(|entry| {
                let mut value = heapless::String::<32>::new();
                // The version comes first: a prefix of the entry is enough.
                let _ = entry.write_to(&mut TruncatingSink(&mut value));
                let version = tcl_list::dict_pairs(&value)
                    .next()
                    .and_then(Result::ok)
                    .filter(|(key, _)| key.eq_str("version"))
                    .map(|(_, v)| v)?;
                element_version(&version)
            })
            .unwrap_or(0)
    }

    /// The digest a periodic heartbeat carries (`metav V`), when this node publishes data.
    pub(super) fn data_digest(&self) -> Option<heapless::String<24>> {
        self.payloads.pinned()?;
        let mut text = heapless::String::new();
        text.push_str(DIGEST).ok()?;
        text.push(' ').ok()?;
        push_decimal(&mut text, u64::from(self.data_version())).ok()?;
        Some(text)
    }

    /// The protocols' props changed: the data entry follows them again, rewritten in place
    /// (no buffer of `DATA` bytes on the stack).
    #[inline(never)]
    pub(super) fn refresh_data_text(&mut self) {
        let Some(stored) = self.payloads.pinned_mut() else {
            return;
        };
        let text = stored.data_str().unwrap_or_default();
        // Where the entry's key starts, from the key's position in the text.
        let start = tcl_list::dict_pairs(text).find_map(|pair| {
            let (key, _) = pair.ok()?;
            let key = key.as_str().filter(|k| *k == META)?;
            Some((key.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize))
        });
        let props = self.props_text.as_bytes();
        let separator = usize::from(!props.is_empty());
        let (bytes, shape) = stored.parts_mut();
        let Some(start) = start.filter(|&s| s <= bytes.len()) else {
            // Cannot happen with a text this node wrote; stop publishing rather than send
            // stale props.
            self.payloads.unpin();
            return;
        };
        // `props meta {..}`: drop the old props, then put the new ones in front.
        bytes.rotate_left(start);
        bytes.truncate(bytes.len() - start);
        if bytes.len() + props.len() + separator > bytes.capacity() {
            self.payloads.unpin();
            return;
        }
        let _ = bytes.extend_from_slice(props);
        if separator == 1 {
            let _ = bytes.push(b' ');
        }
        bytes.rotate_right(props.len() + separator);
        shape.set_data_len(Some(bytes.len()));
    }

    /// A received props dict told the sender's data (`index` in the registry): a newer full
    /// entry is stored and reported; a newer digest makes this node ask for the props.
    ///
    /// Out of line: its buffer is on the stack only while a peer's data is read.
    #[inline(never)]
    pub(super) fn note_data(&mut self, index: usize, sid: Sid, seen: DataSeen, data: &str) {
        let Some(known) = self.registry.at(index).map(|s| s.data_version) else {
            return;
        };
        match seen {
            DataSeen::Full(version) if newer(version, known) => {
                // Written straight into the event's payload: no second buffer.
                let mut payload = Payload::<DATA>::default();
                let value = tcl_list::dict_get(data, META).ok().flatten();
                let fits = value.is_some_and(|v| {
                    let (bytes, shape) = payload.parts_mut();
                    let written = v.write_to(&mut BytesSink(bytes)).is_ok();
                    shape.set_data_len(Some(bytes.len()));
                    written
                });
                if !fits {
                    bump(&mut self.stats.oversized);
                    return;
                }
                if let Some(service) = self.registry.at_mut(index) {
                    service.data_version = version;
                }
                self.push_event(Event::DataChanged {
                    sid,
                    version,
                    data: payload,
                });
            }
            DataSeen::Digest(version) if newer(version, known) => {
                self.ask_for_props(&sid);
            }
            _ => {}
        }
    }
}

/// Appends text to a payload's bytes; an error when it does not fit.
struct BytesSink<'a, const N: usize>(&'a mut heapless::Vec<u8, N>);

impl<const N: usize> core::fmt::Write for BytesSink<'_, N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0
            .extend_from_slice(s.as_bytes())
            .map_err(|_| core::fmt::Error)
    }
}

/// Keeps the first bytes written, as many as fit, and drops the rest without an error.
struct TruncatingSink<'a, const N: usize>(&'a mut heapless::String<N>);

impl<const N: usize> core::fmt::Write for TruncatingSink<'_, N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for c in s.chars() {
            if self.0.push(c).is_err() {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_keeps_text_as_text_and_bytes_as_hex() {
        let mut out = heapless::String::<256>::new();
        let pairs: [(&str, &[u8]); 3] = [
            ("region", b"eu west"),
            ("blob", &[0x00, 0xff]),
            ("rack", b"7"),
        ];
        write_entry(3, &pairs, &mut out).unwrap();
        assert_eq!(
            out,
            "version 3 data {region {eu west} rack 7} hex {blob 00ff}"
        );
        out.clear();
        write_entry(1, &[], &mut out).unwrap();
        assert_eq!(out, "version 1 data {}");
    }

    #[test]
    fn bad_keys_and_overflows_are_typed_errors() {
        let mut out = heapless::String::<64>::new();
        assert_eq!(
            write_entry(1, &[("", b"x")], &mut out),
            Err(DataError::BadKey)
        );
        assert_eq!(
            write_entry(1, &[("a", b"x"), ("a", b"y")], &mut out),
            Err(DataError::DuplicateKey)
        );
        let long = [b'x'; 100];
        assert_eq!(
            write_entry(1, &[("a", &long)], &mut out),
            Err(DataError::TooLarge)
        );
    }

    #[test]
    fn the_entry_follows_the_protocols_props() {
        let mut out = heapless::String::<128>::new();
        write_props_with_entry("t {port 41241}", "version 2 data {a b}", &mut out).unwrap();
        assert_eq!(out, "t {port 41241} meta {version 2 data {a b}}");
        write_props_with_entry("", "version 2 data {}", &mut out).unwrap();
        assert_eq!(out, "meta {version 2 data {}}");
    }

    #[test]
    fn versions_compare_in_wrapping_order() {
        assert!(newer(1, 0));
        assert!(newer(2, 1));
        assert!(!newer(1, 1));
        assert!(!newer(1, 2));
        assert!(!newer(0, 0));
        assert!(newer(1, u16::MAX));
        assert!(newer(100, 65_000));
        assert!(!newer(65_000, 100));
    }
}
