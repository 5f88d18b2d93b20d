//! One member as it travels in a membership exchange (the `raw` field of an `mx` frame).
//!
//! Layout, version 1 (all integers unsigned LEB128, as everywhere in bpacket):
//!
//! ```text
//! raw   = varint(count) entry{count} [trailer]
//! entry = text(sid) text(hid) text(ip) varint(port) varint(incarnation)
//!         text(protocols) text(props) text(tags)
//! text  = varint(byte length) bytes
//! ```
//!
//! `protocols`, `props` and `tags` are the Tcl-syntax texts the member sends on its LAN
//! (`t c`, `t {port 41241}`, `web db`). A later version may append a trailer after the
//! entries; version 1 readers stop after `count` entries and ignore it.
//!
//! Version 2 appends one trailer, laid out like `raw` itself:
//!
//! ```text
//! raw     = varint(count) entry{count} exports [trailer of a later version]
//! exports = varint(count) entry{count}
//! ```
//!
//! `exports` are the services the sender relays as a gateway (see the `route` module):
//! their `ip` and `port` are where the gateway heard them (informational: receivers reach
//! them through the gateway's own address), `protocols` and `props` are the gateway's
//! (`t c`, `t {port <gateway's TCP port>}`), `sid`, `hid` and `tags` the service's. A
//! version-1 reader never looks at them; a version-2 reader reads them only from a sender
//! whose word says version 2 or later.

use core::net::{IpAddr, SocketAddr};

use crate::identity::{Hid, InlineStr, Sid};
use crate::wire::{decode_varint, encode_varint};

/// Capacity of the protocols, props and tags texts of one member.
pub const MEMBER_TEXT: usize = 48;

/// A bounded text of a member (protocols, props or tags).
pub type MemberText = InlineStr<MEMBER_TEXT>;

/// What one member is, as exchanged: identity, where to reach it and what it offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Its service id.
    pub sid: Sid,
    /// Its hardware id.
    pub hid: Hid,
    /// Its TCP address (the `t` listener the exchange and heartbeats go to).
    pub addr: SocketAddr,
    /// Its incarnation: grows each time the member restarts; the higher one wins.
    pub incarnation: u64,
    /// Its protocols in priority order, as a Tcl list (`t c`).
    pub protocols: MemberText,
    /// Its protocol props, as a Tcl dict (`t {port 41241}`).
    pub props: MemberText,
    /// Its tags, as a Tcl list.
    pub tags: MemberText,
}

/// Why an exchange's entries could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryError {
    /// The bytes end inside an entry.
    Truncated,
    /// A varint is malformed or does not fit.
    BadVarint,
    /// A text is longer than its capacity.
    TooLong,
    /// An address is not an IP address, or a port does not fit 16 bits.
    BadAddress,
}

/// Reads `raw`'s entries one by one; stops at the first error, which it yields.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    rest: &'a [u8],
    left: u64,
}

impl<'a> Entries<'a> {
    /// Starts reading the entries of an exchange's `raw` bytes.
    ///
    /// # Errors
    ///
    /// When the entry count cannot be read.
    pub fn new(raw: &'a [u8]) -> Result<Self, EntryError> {
        let (left, used) = decode_varint(raw).map_err(|_| EntryError::BadVarint)?;
        Ok(Self {
            rest: raw.get(used..).unwrap_or_default(),
            left,
        })
    }

    /// The bytes after the entries read so far: once every entry is read, the trailer a
    /// later version appended (empty when there is none).
    #[must_use]
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    fn take_varint(&mut self) -> Result<u64, EntryError> {
        let (value, used) = decode_varint(self.rest).map_err(|_| EntryError::BadVarint)?;
        self.rest = self.rest.get(used..).unwrap_or_default();
        Ok(value)
    }

    fn take_text(&mut self) -> Result<&'a [u8], EntryError> {
        let len = usize::try_from(self.take_varint()?).map_err(|_| EntryError::TooLong)?;
        let text = self.rest.get(..len).ok_or(EntryError::Truncated)?;
        self.rest = self.rest.get(len..).unwrap_or_default();
        Ok(text)
    }

    fn take<const N: usize>(&mut self) -> Result<InlineStr<N>, EntryError> {
        InlineStr::new(self.take_text()?).ok_or(EntryError::TooLong)
    }

    fn entry(&mut self) -> Result<Entry, EntryError> {
        let sid = self.take()?;
        let hid = self.take()?;
        let ip_text = self.take_text()?;
        let ip: IpAddr = core::str::from_utf8(ip_text)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or(EntryError::BadAddress)?;
        let port = u16::try_from(self.take_varint()?).map_err(|_| EntryError::BadAddress)?;
        let incarnation = self.take_varint()?;
        Ok(Entry {
            sid,
            hid,
            addr: SocketAddr::new(ip, port),
            incarnation,
            protocols: self.take()?,
            props: self.take()?,
            tags: self.take()?,
        })
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<Entry, EntryError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let item = self.entry();
        if item.is_err() {
            self.left = 0;
        }
        Some(item)
    }
}

/// Writes entries into a caller's buffer: the count first, then each entry.
#[derive(Debug)]
pub struct EntryWriter<'b> {
    out: &'b mut [u8],
    len: usize,
    count_at: usize,
    count: u64,
}

/// Bytes reserved for the entry count (a varint of up to 2^35).
const COUNT_ROOM: usize = 5;

impl<'b> EntryWriter<'b> {
    /// A writer into `out`, or `None` when `out` cannot even hold the count.
    pub fn new(out: &'b mut [u8]) -> Option<Self> {
        (out.len() >= COUNT_ROOM).then_some(Self {
            out,
            len: COUNT_ROOM,
            count_at: 0,
            count: 0,
        })
    }

    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.len.checked_add(bytes.len())?;
        self.out.get_mut(self.len..end)?.copy_from_slice(bytes);
        self.len = end;
        Some(())
    }

    fn put_varint(&mut self, value: u64) -> Option<()> {
        let mut tmp = [0u8; 10];
        let used = encode_varint(value, &mut tmp)?;
        self.put(tmp.get(..used)?)
    }

    fn put_text(&mut self, text: &[u8]) -> Option<()> {
        self.put_varint(text.len() as u64)?;
        self.put(text)
    }

    /// Appends one entry; `None` (and nothing written) when it does not fit.
    pub fn push(&mut self, entry: &Entry) -> Option<()> {
        let mark = self.len;
        let written = self.write(entry);
        if written.is_none() {
            self.len = mark;
        } else {
            self.count += 1;
        }
        written
    }

    fn write(&mut self, entry: &Entry) -> Option<()> {
        let mut ip = heapless::String::<48>::new();
        core::fmt::Write::write_fmt(&mut ip, format_args!("{}", entry.addr.ip())).ok()?;
        self.put_text(entry.sid.as_bytes())?;
        self.put_text(entry.hid.as_bytes())?;
        self.put_text(ip.as_bytes())?;
        self.put_varint(u64::from(entry.addr.port()))?;
        self.put_varint(entry.incarnation)?;
        self.put_text(entry.protocols.as_bytes())?;
        self.put_text(entry.props.as_bytes())?;
        self.put_text(entry.tags.as_bytes())
    }

    /// Finishes: writes the count as a padded 5-byte varint and returns the bytes used.
    #[must_use]
    pub fn finish(self) -> usize {
        // A fixed-width varint (continuation bits on the first four bytes) keeps the entries
        // where they are; decoders read it as the plain count.
        let mut value = self.count;
        for i in 0..COUNT_ROOM {
            let low = (value & 0x7F) as u8;
            value >>= 7;
            let more = if i + 1 < COUNT_ROOM { 0x80 } else { 0 };
            if let Some(byte) = self.out.get_mut(self.count_at + i) {
                *byte = low | more;
            }
        }
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sid: &str, port: u16) -> Entry {
        Entry {
            sid: Sid::new(sid.as_bytes()).unwrap(),
            hid: Hid::new(b"02:fc:00:00:00:01").unwrap(),
            addr: SocketAddr::new("10.1.0.7".parse().unwrap(), port),
            incarnation: 3,
            protocols: MemberText::new(b"t c").unwrap(),
            props: MemberText::new(b"t {port 41241}").unwrap(),
            tags: MemberText::new(b"web {a b}").unwrap(),
        }
    }

    #[test]
    fn entries_round_trip() {
        let mut buf = [0u8; 256];
        let mut w = EntryWriter::new(&mut buf).unwrap();
        w.push(&entry("Zbdc22e7", 41241)).unwrap();
        w.push(&entry("Yy112233", 300)).unwrap();
        let len = w.finish();
        let read: heapless::Vec<Entry, 4> = Entries::new(&buf[..len])
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            read.as_slice(),
            &[entry("Zbdc22e7", 41241), entry("Yy112233", 300)]
        );
    }

    #[test]
    fn a_full_buffer_keeps_the_entries_that_fit() {
        let mut buf = [0u8; 80];
        let mut w = EntryWriter::new(&mut buf).unwrap();
        assert!(w.push(&entry("Zbdc22e7", 1)).is_some());
        assert!(w.push(&entry("Yy112233", 2)).is_none());
        let len = w.finish();
        assert_eq!(Entries::new(&buf[..len]).unwrap().count(), 1);
    }

    #[test]
    fn every_truncation_is_a_typed_error() {
        let mut buf = [0u8; 256];
        let mut w = EntryWriter::new(&mut buf).unwrap();
        w.push(&entry("Zbdc22e7", 41241)).unwrap();
        let len = w.finish();
        for cut in 0..len {
            let outcome: Result<heapless::Vec<Entry, 2>, EntryError> =
                Entries::new(&buf[..cut]).and_then(|e| e.collect());
            assert!(outcome.is_err(), "cut at {cut} was accepted");
        }
    }

    #[test]
    fn a_huge_count_with_no_entries_ends_at_the_first_error() {
        let raw = [0xFF, 0xFF, 0xFF, 0xFF, 0x0F];
        let mut entries = Entries::new(&raw).unwrap();
        assert_eq!(entries.next(), Some(Err(EntryError::BadVarint)));
        assert_eq!(entries.next(), None);
    }
}
