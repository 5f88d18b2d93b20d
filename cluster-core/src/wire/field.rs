//! Fields: the template's ids and kinds, and borrowed values.

use core::fmt;

use super::{DecodeError, EncodeError, VarintUse, varint};

/// A field id of the cluster template (spec 3.1). Ids outside 1–15 are never emitted and make
/// the decoder reject the frame ([`DecodeError::UnknownField`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum FieldId {
    /// 1, varint: message type.
    Type = 1,
    /// 2, varint: channel number.
    Channel = 2,
    /// 3, string: hardware id of the sender.
    Hid = 3,
    /// 4, string: service id of the sender.
    Sid = 4,
    /// 5, varint: number of services the sender knows.
    Known = 5,
    /// 6, varint: never sent by the reference.
    Timestamp = 6,
    /// 7, list: the sender's protocols in priority order.
    Protocols = 7,
    /// 8, string: request id.
    Ruid = 8,
    /// 9, string: never sent by the reference.
    Op = 9,
    /// 10, string: the payload.
    Data = 10,
    /// 11, raw: opaque bytes.
    Raw = 11,
    /// 12, list: the sender's tags.
    Tags = 12,
    /// 13, boolean: keepalive flag of queries.
    Keepalive = 13,
    /// 14, list: receiver filter.
    Filter = 14,
    /// 15, string: error text of a query response.
    Error = 15,
}

impl FieldId {
    /// Every field id, in id order.
    pub const ALL: [Self; 15] = [
        Self::Type,
        Self::Channel,
        Self::Hid,
        Self::Sid,
        Self::Known,
        Self::Timestamp,
        Self::Protocols,
        Self::Ruid,
        Self::Op,
        Self::Data,
        Self::Raw,
        Self::Tags,
        Self::Keepalive,
        Self::Filter,
        Self::Error,
    ];

    /// The field with this id, if the template has one.
    #[must_use]
    pub fn from_id(id: u64) -> Option<Self> {
        let index = usize::try_from(id).ok()?.checked_sub(1)?;
        Self::ALL.get(index).copied()
    }

    /// The numeric id (1–15).
    #[must_use]
    pub const fn id(self) -> u8 {
        self as u8
    }

    /// The template's value kind for this field.
    #[must_use]
    pub const fn kind(self) -> FieldKind {
        match self {
            Self::Type | Self::Channel | Self::Known | Self::Timestamp => FieldKind::Varint,
            Self::Hid | Self::Sid | Self::Ruid | Self::Op | Self::Data | Self::Error => {
                FieldKind::String
            }
            Self::Raw => FieldKind::Raw,
            Self::Keepalive => FieldKind::Boolean,
            Self::Protocols | Self::Tags | Self::Filter => FieldKind::List,
        }
    }

    /// The spec's name of the field, e.g. `"protocols"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Type => "type",
            Self::Channel => "channel",
            Self::Hid => "hid",
            Self::Sid => "sid",
            Self::Known => "known",
            Self::Timestamp => "timestamp",
            Self::Protocols => "protocols",
            Self::Ruid => "ruid",
            Self::Op => "op",
            Self::Data => "data",
            Self::Raw => "raw",
            Self::Tags => "tags",
            Self::Keepalive => "keepalive",
            Self::Filter => "filter",
            Self::Error => "error",
        }
    }

    /// The field with this spec name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|id| id.name() == name)
    }
}

impl fmt::Display for FieldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a field's value is encoded (spec 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Unsigned LEB128.
    Varint,
    /// Length-prefixed UTF-8 text (kept as bytes on receipt, see [`Str`]).
    String,
    /// Length-prefixed bytes.
    Raw,
    /// One byte; any non-zero byte reads as true.
    Boolean,
    /// Element count, then length-prefixed elements.
    List,
}

impl FieldKind {
    /// A lowercase name of the kind.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Varint => "varint",
            Self::String => "string",
            Self::Raw => "raw",
            Self::Boolean => "boolean",
            Self::List => "list",
        }
    }
}

/// A string value borrowed from a frame or from the caller.
///
/// Peers do not guarantee UTF-8 (the reference re-sends received bytes undecoded), so the
/// bytes are kept as they arrived and [`to_str`](Self::to_str) is fallible.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Str<'a>(&'a [u8]);

impl<'a> Str<'a> {
    /// Wraps raw bytes.
    #[must_use]
    pub const fn from_bytes(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// The bytes as they are on the wire.
    #[must_use]
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The text, when it is valid UTF-8.
    ///
    /// # Errors
    ///
    /// The UTF-8 error when the bytes are not valid UTF-8.
    // Inlined on hosts: the check is then one call (`from_utf8`), not two.
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn to_str(&self) -> Result<&'a str, core::str::Utf8Error> {
        core::str::from_utf8(self.0)
    }

    /// Byte length.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> From<&'a str> for Str<'a> {
    fn from(text: &'a str) -> Self {
        Self(text.as_bytes())
    }
}

impl<'a> From<&'a [u8]> for Str<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }
}

impl PartialEq<str> for Str<'_> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Str<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_str() {
            Ok(text) => fmt::Debug::fmt(text, f),
            Err(_) => write!(f, "b\"{}\"", self.0.escape_ascii()),
        }
    }
}

impl fmt::Display for Str<'_> {
    /// Writes the text, with invalid UTF-8 replaced by U+FFFD.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}

/// A list value: either a view of a list as it sits in a decoded frame, or a slice of items
/// the caller wants to send. Both iterate as byte strings.
#[derive(Clone, Copy)]
pub struct List<'a>(ListRepr<'a>);

#[derive(Clone, Copy)]
enum ListRepr<'a> {
    /// `count` elements encoded in `bytes` (already validated by the decoder).
    Wire { count: usize, bytes: &'a [u8] },
    /// Items supplied by the caller.
    Items(&'a [&'a str]),
    /// Items read in place from the node's state (its tags, the sids of some services), so
    /// that a frame's lists are encoded without being prepared in a buffer first.
    Source {
        count: usize,
        source: &'a dyn ListSource,
    },
}

/// Items of a list that live elsewhere in the crate, read where they are: the node encodes
/// its tags and filters from its own tables through this.
pub(crate) trait ListSource {
    /// Number of items.
    fn count(&self) -> usize;
    /// The next item at or after position `*at`; moves `*at` past it.
    fn next_item(&self, at: &mut usize) -> Option<&[u8]>;
}

impl<'a> List<'a> {
    /// A list of the given items, for encoding.
    #[must_use]
    pub const fn from_items(items: &'a [&'a str]) -> Self {
        Self(ListRepr::Items(items))
    }

    /// A list of the items `source` yields, read in place when the list is encoded.
    pub(crate) fn from_source(source: &'a dyn ListSource) -> Self {
        Self(ListRepr::Source {
            count: source.count(),
            source,
        })
    }

    /// The empty list (encoded as the single byte `00`).
    #[must_use]
    pub const fn empty() -> Self {
        Self(ListRepr::Items(&[]))
    }

    /// Number of elements.
    #[must_use]
    pub const fn len(&self) -> usize {
        match self.0 {
            ListRepr::Wire { count, .. } | ListRepr::Source { count, .. } => count,
            ListRepr::Items(items) => items.len(),
        }
    }

    /// True when the list has no elements.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements, in order.
    #[must_use]
    // Out of line on microcontrollers: one copy of the three representations' set-up for its
    // several callers (flash). Inlined on hosts, with the iterator's steps, so that a loop
    // over a decoded list keeps its position in registers.
    #[cfg_attr(target_os = "none", inline(never))]
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn iter(&self) -> ListIter<'a> {
        ListIter(match self.0 {
            ListRepr::Wire { count, bytes } => IterRepr::Wire { left: count, bytes },
            ListRepr::Items(items) => IterRepr::Items(items.iter()),
            ListRepr::Source { count, source } => IterRepr::Source(SourceIter {
                source,
                at: 0,
                left: count,
            }),
        })
    }

    /// True when some element equals `item` byte for byte.
    #[must_use]
    pub fn contains(&self, item: &[u8]) -> bool {
        self.iter().any(|element| element == item)
    }

    /// Encoded size of the value (count, then each element's length and bytes).
    pub(crate) fn encoded_len(&self) -> usize {
        self.iter()
            .fold(varint::encoded_len(self.len() as u64), |sum, element| {
                sum.saturating_add(varint::encoded_len(element.len() as u64))
                    .saturating_add(element.len())
            })
    }
}

impl fmt::Debug for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter().map(Str)).finish()
    }
}

impl PartialEq for List<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for List<'_> {}

impl<'a> IntoIterator for List<'a> {
    type Item = &'a [u8];
    type IntoIter = ListIter<'a>;
    fn into_iter(self) -> ListIter<'a> {
        self.iter()
    }
}

/// Iterator over the elements of a [`List`], as byte strings.
#[derive(Debug, Clone)]
pub struct ListIter<'a>(IterRepr<'a>);

#[derive(Debug, Clone)]
enum IterRepr<'a> {
    Wire { left: usize, bytes: &'a [u8] },
    Items(core::slice::Iter<'a, &'a str>),
    Source(SourceIter<'a>),
}

/// The position in a [`ListSource`].
#[derive(Clone, Copy)]
struct SourceIter<'a> {
    source: &'a dyn ListSource,
    at: usize,
    /// Items left: never more than the list's count, whatever the source yields.
    left: usize,
}

impl fmt::Debug for SourceIter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceIter")
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

impl<'a> Iterator for ListIter<'a> {
    type Item = &'a [u8];

    #[cfg_attr(not(target_os = "none"), inline)]
    fn next(&mut self) -> Option<&'a [u8]> {
        match &mut self.0 {
            IterRepr::Items(items) => items.next().map(|item| item.as_bytes()),
            IterRepr::Source(SourceIter { source, at, left }) => {
                *left = left.checked_sub(1)?;
                source.next_item(at)
            }
            IterRepr::Wire { left, bytes } => {
                *left = left.checked_sub(1)?;
                // The decoder validated the list, so these steps cannot fail; a malformed
                // view would simply end the iteration.
                let (len, used) = varint::decode(bytes).ok()?;
                let rest = bytes.get(used..)?;
                let (element, rest) = rest.split_at_checked(usize::try_from(len).ok()?)?;
                *bytes = rest;
                Some(element)
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            IterRepr::Items(items) => items.size_hint(),
            IterRepr::Wire { left, .. } => (0, Some(*left)),
            IterRepr::Source(SourceIter { left, .. }) => (0, Some(*left)),
        }
    }
}

/// A field's value, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// A varint.
    Varint(u64),
    /// A string.
    Str(Str<'a>),
    /// Raw bytes.
    Raw(&'a [u8]),
    /// A boolean.
    Bool(bool),
    /// A list of strings.
    List(List<'a>),
}

impl Value<'_> {
    /// The kind of this value.
    #[must_use]
    pub const fn kind(&self) -> FieldKind {
        match self {
            Self::Varint(_) => FieldKind::Varint,
            Self::Str(_) => FieldKind::String,
            Self::Raw(_) => FieldKind::Raw,
            Self::Bool(_) => FieldKind::Boolean,
            Self::List(_) => FieldKind::List,
        }
    }
}

/// One field: an id and a value of the id's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// Which field.
    pub id: FieldId,
    /// Its value.
    pub value: Value<'a>,
}

impl<'a> Field<'a> {
    /// A field, checked against the template: the value's kind must be the id's kind.
    ///
    /// # Errors
    ///
    /// [`EncodeError::WrongKind`] when it is not.
    pub fn new(id: FieldId, value: Value<'a>) -> Result<Self, EncodeError> {
        if value.kind() == id.kind() {
            Ok(Self { id, value })
        } else {
            Err(EncodeError::WrongKind(id))
        }
    }

    /// Reads one field from the start of `body`, returning it and the bytes it took.
    ///
    /// Out of line on microcontrollers, where one copy serves every parse path (flash);
    /// inlined into the message reader on hosts, where a decode is about a third faster
    /// for it (no result moved through memory per field).
    #[cfg_attr(target_os = "none", inline(never))]
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub(crate) fn read(body: &'a [u8]) -> Result<(Self, usize), DecodeError> {
        let mut reader = Reader { rest: body };
        let raw_id = reader.varint()?;
        let id = FieldId::from_id(raw_id).ok_or(DecodeError::UnknownField(raw_id))?;
        let value = match id.kind() {
            FieldKind::Varint => Value::Varint(reader.varint()?),
            FieldKind::String => Value::Str(Str(reader.prefixed(id)?)),
            FieldKind::Raw => Value::Raw(reader.prefixed(id)?),
            FieldKind::Boolean => Value::Bool(reader.byte(id)? != 0),
            FieldKind::List => {
                let count = reader.varint()?;
                let counted = reader.rest;
                // Each element takes at least one byte, so this loop ends within the body.
                let mut seen: usize = 0;
                while (seen as u64) < count {
                    reader.prefixed(id)?;
                    seen = seen.saturating_add(1);
                }
                let used = counted.len().saturating_sub(reader.rest.len());
                let bytes = counted.get(..used).unwrap_or_default();
                Value::List(List(ListRepr::Wire { count: seen, bytes }))
            }
        };
        Ok((
            Self { id, value },
            body.len().saturating_sub(reader.rest.len()),
        ))
    }

    /// Encoded size of the field: id, then value.
    pub(crate) fn encoded_len(&self) -> usize {
        let value = match self.value {
            Value::Varint(v) => varint::encoded_len(v),
            Value::Str(s) => prefixed_len(s.len()),
            Value::Raw(r) => prefixed_len(r.len()),
            Value::Bool(_) => 1,
            Value::List(list) => list.encoded_len(),
        };
        value.saturating_add(1)
    }

    /// Checks every varint of the field against the reserved `C0 8D` prefix.
    pub(crate) fn check_reserved(&self) -> Result<(), EncodeError> {
        let id = self.id;
        let check = |what, value: u64| {
            if varint::is_reserved_prefix(value) {
                Err(EncodeError::ReservedVarintPrefix { what, value })
            } else {
                Ok(())
            }
        };
        match self.value {
            Value::Varint(v) => check(VarintUse::Value(id), v),
            Value::Str(s) => check(VarintUse::Length(id), s.len() as u64),
            Value::Raw(r) => check(VarintUse::Length(id), r.len() as u64),
            Value::Bool(_) => Ok(()),
            Value::List(list) => {
                check(VarintUse::ListCount(id), list.len() as u64)?;
                list.iter()
                    .try_for_each(|e| check(VarintUse::ElementLength(id), e.len() as u64))
            }
        }
    }

    /// Writes the field through `w`, checking reserved varints on the way.
    pub(crate) fn write_to(&self, w: &mut CheckedWriter<'_>) -> Result<(), WriteError> {
        match self.value {
            Value::Varint(v) => w.varint_field(self.id, v),
            Value::Str(s) => w.bytes_field(self.id, s.as_bytes()),
            Value::Raw(r) => w.bytes_field(self.id, r),
            Value::Bool(b) => w.bool_field(self.id, b),
            Value::List(list) => w.list_field(self.id, list),
        }
    }
}

fn prefixed_len(len: usize) -> usize {
    varint::encoded_len(len as u64).saturating_add(len)
}

/// A cursor over a body being decoded.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

/// The message reader's steps on hosts ([`Message::read_fields`](super::Message)): each
/// field's value read straight into its slot of the message, with one-byte varints (ids,
/// types, short lengths and counts) read inline, as the encoder writes them, and longer ones
/// out of line. The same checks in the same order as [`Field::read`], which
/// microcontrollers keep using (one reader in flash).
#[cfg(not(target_os = "none"))]
impl<'a> Reader<'a> {
    /// A reader at the start of `body`.
    #[inline(always)]
    pub(crate) const fn new(body: &'a [u8]) -> Self {
        Self { rest: body }
    }

    /// True when every byte was read.
    #[inline(always)]
    pub(crate) const fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// A varint, its one-byte form inline.
    #[inline(always)]
    pub(crate) fn next_varint(&mut self) -> Result<u64, DecodeError> {
        if let Some((&byte, rest)) = self.rest.split_first()
            && byte < 0x80
        {
            self.rest = rest;
            return Ok(u64::from(byte));
        }
        self.long_varint()
    }

    /// A varint of two bytes or more, or the error of a truncated or overflowing one.
    #[inline(never)]
    fn long_varint(&mut self) -> Result<u64, DecodeError> {
        self.varint()
    }

    /// A length-prefixed value of field `id`.
    #[inline(always)]
    pub(crate) fn next_prefixed(&mut self, id: FieldId) -> Result<&'a [u8], DecodeError> {
        let len = self.next_varint()?;
        let len = usize::try_from(len).map_err(|_| DecodeError::LengthOverrun(id))?;
        let (value, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or(DecodeError::LengthOverrun(id))?;
        self.rest = rest;
        Ok(value)
    }

    /// A string value of field `id`.
    #[inline(always)]
    pub(crate) fn next_str(&mut self, id: FieldId) -> Result<Str<'a>, DecodeError> {
        self.next_prefixed(id).map(Str)
    }

    /// A boolean value of field `id`: any non-zero byte is true.
    #[inline(always)]
    pub(crate) fn next_bool(&mut self, id: FieldId) -> Result<bool, DecodeError> {
        self.byte(id).map(|byte| byte != 0)
    }

    /// A list value of field `id`, every element's length checked.
    #[inline(always)]
    pub(crate) fn next_list(&mut self, id: FieldId) -> Result<List<'a>, DecodeError> {
        let count = self.next_varint()?;
        let counted = self.rest;
        // Each element takes at least one byte, so this loop ends within the body.
        let mut seen: usize = 0;
        while (seen as u64) < count {
            self.next_prefixed(id)?;
            seen = seen.saturating_add(1);
        }
        let used = counted.len().saturating_sub(self.rest.len());
        let bytes = counted.get(..used).unwrap_or_default();
        Ok(List(ListRepr::Wire { count: seen, bytes }))
    }
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let (value, used) = varint::decode(self.rest)?;
        self.rest = self.rest.get(used..).unwrap_or_default();
        Ok(value)
    }

    fn prefixed(&mut self, id: FieldId) -> Result<&'a [u8], DecodeError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| DecodeError::LengthOverrun(id))?;
        let (value, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or(DecodeError::LengthOverrun(id))?;
        self.rest = rest;
        Ok(value)
    }

    fn byte(&mut self, id: FieldId) -> Result<u8, DecodeError> {
        let (&byte, rest) = self
            .rest
            .split_first()
            .ok_or(DecodeError::LengthOverrun(id))?;
        self.rest = rest;
        Ok(byte)
    }
}

/// Why [`Field::write_checked`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteError {
    /// The output is too short.
    Full,
    /// A varint would start `C0 8D`.
    Reserved(VarintUse, u64),
}

/// A cursor over an output buffer that checks reserved varints as it writes them.
#[derive(Debug)]
pub(crate) struct CheckedWriter<'o> {
    out: &'o mut [u8],
    at: usize,
    compat: bool,
}

impl<'o> CheckedWriter<'o> {
    pub(crate) fn new(out: &'o mut [u8], compat: bool) -> Self {
        Self { out, at: 0, compat }
    }

    /// Bytes written so far.
    pub(crate) fn written(&self) -> usize {
        self.at
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    pub(crate) fn varint_field(&mut self, id: FieldId, value: u64) -> Result<(), WriteError> {
        self.varint(u64::from(id.id()), VarintUse::Value(id))?;
        self.varint(value, VarintUse::Value(id))
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    pub(crate) fn bytes_field(&mut self, id: FieldId, bytes: &[u8]) -> Result<(), WriteError> {
        self.varint(u64::from(id.id()), VarintUse::Value(id))?;
        self.prefixed(bytes, VarintUse::Length(id))
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    pub(crate) fn bool_field(&mut self, id: FieldId, value: bool) -> Result<(), WriteError> {
        self.varint(u64::from(id.id()), VarintUse::Value(id))?;
        self.bytes(&[u8::from(value)])
    }

    /// Inlined on hosts, where the caller's items are written in a loop of their own (no
    /// [`ListIter`] per element, the writer kept in registers: a periodic heartbeat's encode
    /// is about a fifth cheaper); one copy out of line on microcontrollers (flash).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub(crate) fn list_field(&mut self, id: FieldId, list: List<'_>) -> Result<(), WriteError> {
        self.varint(u64::from(id.id()), VarintUse::Value(id))?;
        self.varint(list.len() as u64, VarintUse::ListCount(id))?;
        #[cfg(not(target_os = "none"))]
        if let ListRepr::Items(items) = list.0 {
            for item in items {
                self.prefixed(item.as_bytes(), VarintUse::ElementLength(id))?;
            }
            return Ok(());
        }
        for element in list.iter() {
            self.prefixed(element, VarintUse::ElementLength(id))?;
        }
        Ok(())
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    fn varint(&mut self, value: u64, what: VarintUse) -> Result<(), WriteError> {
        if value < 0x80 {
            let slot = self.out.get_mut(self.at).ok_or(WriteError::Full)?;
            *slot = value as u8;
            self.at = self.at.saturating_add(1);
            return Ok(());
        }
        self.long_varint(value, what)
    }

    /// A varint of two bytes or more: out of line on hosts, so that the one-byte case inlined
    /// at every field stays short.
    #[cfg_attr(not(target_os = "none"), inline(never))]
    fn long_varint(&mut self, value: u64, what: VarintUse) -> Result<(), WriteError> {
        // Reserved values are at least 16384: shorter varints need no check.
        if self.compat && value >= 1 << 14 && varint::is_reserved_prefix(value) {
            return Err(WriteError::Reserved(what, value));
        }
        let rest = self.out.get_mut(self.at..).ok_or(WriteError::Full)?;
        let used = varint::put(value, rest).ok_or(WriteError::Full)?;
        self.at = self.at.saturating_add(used);
        Ok(())
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    fn bytes(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        let end = self.at.checked_add(bytes.len()).ok_or(WriteError::Full)?;
        self.out
            .get_mut(self.at..end)
            .ok_or(WriteError::Full)?
            .copy_from_slice(bytes);
        self.at = end;
        Ok(())
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    fn prefixed(&mut self, bytes: &[u8], what: VarintUse) -> Result<(), WriteError> {
        self.varint(bytes.len() as u64, what)?;
        self.bytes(bytes)
    }
}
