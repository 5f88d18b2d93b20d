//! The typed view of a frame and the reference's field order for each kind of message.

use core::fmt;

use super::field::CheckedWriter;
#[cfg(not(target_os = "none"))]
use super::field::Reader;
use super::frame::{OnePass, encode_body};
use super::{
    Compat, DecodeError, EncodeError, Field, FieldId, Frame, List, Str, Value,
    encoded_len_of_fields,
};

/// The message type carried in field 1 (spec 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// 0: the sender leaves.
    Disconnect,
    /// 1: heartbeat (beacon).
    Heartbeat,
    /// 2: discovery request.
    Discovery,
    /// 3: ping (services request).
    Ping,
    /// 4: query.
    Query,
    /// 5: query response.
    Response,
    /// 6: event.
    Event,
    /// 7: flush (replace props).
    Flush,
    /// 8: protocol failure report.
    Failed,
    /// Any other value; such frames are ignored by a node.
    Unknown(u64),
}

impl MessageKind {
    /// The kind of a type value.
    #[must_use]
    pub const fn from_type(value: u64) -> Self {
        match value {
            0 => Self::Disconnect,
            1 => Self::Heartbeat,
            2 => Self::Discovery,
            3 => Self::Ping,
            4 => Self::Query,
            5 => Self::Response,
            6 => Self::Event,
            7 => Self::Flush,
            8 => Self::Failed,
            other => Self::Unknown(other),
        }
    }

    /// The type value on the wire.
    #[must_use]
    pub const fn to_type(self) -> u64 {
        match self {
            Self::Disconnect => 0,
            Self::Heartbeat => 1,
            Self::Discovery => 2,
            Self::Ping => 3,
            Self::Query => 4,
            Self::Response => 5,
            Self::Event => 6,
            Self::Flush => 7,
            Self::Failed => 8,
            Self::Unknown(other) => other,
        }
    }

    /// A lowercase name: `"heartbeat"`, `"query"`, ... (`"unknown"` for other values).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Disconnect => "disconnect",
            Self::Heartbeat => "heartbeat",
            Self::Discovery => "discovery",
            Self::Ping => "ping",
            Self::Query => "query",
            Self::Response => "response",
            Self::Event => "event",
            Self::Flush => "flush",
            Self::Failed => "failed",
            Self::Unknown(_) => "unknown",
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(value) => write!(f, "unknown({value})"),
            known => f.write_str(known.name()),
        }
    }
}

/// Where `filter` goes when a message is encoded (spec 3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FilterPlacement {
    /// First: broadcasts and queries, so that receivers not named stop decoding early.
    First,
    /// Last: direct sends to one service, where the filter is appended to the payload.
    #[default]
    Last,
}

/// The typed view of one frame: each template field, when present. Strings, lists and raw
/// bytes borrow from the frame (or, when building a message to send, from the caller).
///
/// When a frame repeats a field, the last occurrence wins, as in the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Message<'a> {
    /// Field 1, `type`.
    pub kind: Option<MessageKind>,
    /// Field 2, `channel`.
    pub channel: Option<u64>,
    /// Field 3, `hid`.
    pub hid: Option<Str<'a>>,
    /// Field 4, `sid`.
    pub sid: Option<Str<'a>>,
    /// Field 5, `known`.
    pub known: Option<u64>,
    /// Field 6, `timestamp`.
    pub timestamp: Option<u64>,
    /// Field 7, `protocols`.
    pub protocols: Option<List<'a>>,
    /// Field 8, `ruid`.
    pub ruid: Option<Str<'a>>,
    /// Field 9, `op`.
    pub op: Option<Str<'a>>,
    /// Field 10, `data`.
    pub data: Option<Str<'a>>,
    /// Field 11, `raw`.
    pub raw: Option<&'a [u8]>,
    /// Field 12, `tags`.
    pub tags: Option<List<'a>>,
    /// Field 13, `keepalive`.
    pub keepalive: Option<bool>,
    /// Field 14, `filter`.
    pub filter: Option<List<'a>>,
    /// Field 15, `error`.
    pub error: Option<Str<'a>>,
}

/// The reference's order of the fields after the base and before any trailing filter, for
/// every kind but queries (spec 3.4): `ruid keepalive data|error known tags`. The fields the
/// reference never sends (`op`, `raw`, `timestamp`) go after `data`, where an application
/// would add them.
const ORDER: [FieldId; 14] = [
    FieldId::Sid,
    FieldId::Hid,
    FieldId::Type,
    FieldId::Channel,
    FieldId::Protocols,
    FieldId::Ruid,
    FieldId::Keepalive,
    FieldId::Data,
    FieldId::Error,
    FieldId::Op,
    FieldId::Raw,
    FieldId::Timestamp,
    FieldId::Known,
    FieldId::Tags,
];

/// Queries put `keepalive` after `data`: `ruid data keepalive` (spec 3.4).
const QUERY_ORDER: [FieldId; 14] = [
    FieldId::Sid,
    FieldId::Hid,
    FieldId::Type,
    FieldId::Channel,
    FieldId::Protocols,
    FieldId::Ruid,
    FieldId::Data,
    FieldId::Keepalive,
    FieldId::Error,
    FieldId::Op,
    FieldId::Raw,
    FieldId::Timestamp,
    FieldId::Known,
    FieldId::Tags,
];

impl<'a> Message<'a> {
    /// Parses and validates one frame at the start of `input` (see [`Frame::parse`]).
    ///
    /// # Errors
    ///
    /// Any [`DecodeError`] of [`Frame::parse`].
    pub fn parse(input: &'a [u8]) -> Result<(Self, usize), DecodeError> {
        let (frame, used) = Frame::split(input)?;
        let mut message = Self::default();
        #[cfg(target_os = "none")]
        message.read_fields(frame.body())?;
        // The reader inlined on hosts, so that the message is built in registers and
        // written once, into the result.
        #[cfg(not(target_os = "none"))]
        message.read_fields_inline(frame.body())?;
        Ok((message, used))
    }

    /// Reads and validates every field of `body` into `self`, in one pass: the frame is then
    /// as [`Frame::parse`] accepts it, and its fields are decoded ([`Frame::parse`] then
    /// [`from_frame`](Self::from_frame) would read the body twice). Out of line: every parse
    /// path of the node shares it.
    ///
    /// # Errors
    ///
    /// The first field error of the body, as [`Frame::parse`] reports it.
    #[cfg(target_os = "none")]
    #[inline(never)]
    pub(crate) fn read_fields(&mut self, body: &'a [u8]) -> Result<(), DecodeError> {
        self.read_fields_by_field(body)
    }

    /// [`read_fields`](Self::read_fields) on hosts: each value read straight into its field
    /// (no [`Field`] built and matched again by [`set`](Self::set)), one-byte varints inline.
    /// The same checks in the same order as the reader of microcontrollers
    /// (`read_fields_by_field`, compiled for tests too), so the same frames are
    /// accepted, with the same values, and the same errors are reported (a property test
    /// compares the two).
    ///
    /// # Errors
    ///
    /// The first field error of the body, as [`Frame::parse`] reports it.
    #[cfg(not(target_os = "none"))]
    #[inline(never)]
    pub(crate) fn read_fields(&mut self, body: &'a [u8]) -> Result<(), DecodeError> {
        self.read_fields_inline(body)
    }

    /// The body of the hosts' [`read_fields`](Self::read_fields), inlined into
    /// [`parse`](Self::parse).
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    fn read_fields_inline(&mut self, body: &'a [u8]) -> Result<(), DecodeError> {
        let mut reader = Reader::new(body);
        while !reader.is_empty() {
            let raw_id = reader.next_varint()?;
            match raw_id {
                1 => self.kind = Some(MessageKind::from_type(reader.next_varint()?)),
                2 => self.channel = Some(reader.next_varint()?),
                3 => self.hid = Some(reader.next_str(FieldId::Hid)?),
                4 => self.sid = Some(reader.next_str(FieldId::Sid)?),
                5 => self.known = Some(reader.next_varint()?),
                6 => self.timestamp = Some(reader.next_varint()?),
                7 => self.protocols = Some(reader.next_list(FieldId::Protocols)?),
                8 => self.ruid = Some(reader.next_str(FieldId::Ruid)?),
                9 => self.op = Some(reader.next_str(FieldId::Op)?),
                10 => self.data = Some(reader.next_str(FieldId::Data)?),
                11 => self.raw = Some(reader.next_prefixed(FieldId::Raw)?),
                12 => self.tags = Some(reader.next_list(FieldId::Tags)?),
                13 => self.keepalive = Some(reader.next_bool(FieldId::Keepalive)?),
                14 => self.filter = Some(reader.next_list(FieldId::Filter)?),
                15 => self.error = Some(reader.next_str(FieldId::Error)?),
                _ => return Err(DecodeError::UnknownField(raw_id)),
            }
        }
        Ok(())
    }

    /// The field-by-field reader: [`Field::read`], then [`set`](Self::set). The reader of
    /// microcontrollers (one field reader in flash for every parse path), and the reference
    /// the hosts' reader is tested against.
    #[cfg(any(test, target_os = "none"))]
    fn read_fields_by_field(&mut self, body: &'a [u8]) -> Result<(), DecodeError> {
        let mut rest = body;
        while !rest.is_empty() {
            let (field, taken) = Field::read(rest)?;
            self.set(field);
            rest = rest.get(taken..).unwrap_or_default();
        }
        Ok(())
    }

    /// The typed view of a validated frame; the last of duplicate fields wins.
    #[must_use]
    pub fn from_frame(frame: &Frame<'a>) -> Self {
        let mut message = Self::default();
        for field in frame.fields() {
            message.set(field);
        }
        message
    }

    /// Stores one field, replacing an earlier value of the same id. A value of the wrong kind
    /// is ignored (frames decoded by this crate never carry one).
    pub fn set(&mut self, field: Field<'a>) {
        match (field.id, field.value) {
            (FieldId::Type, Value::Varint(v)) => self.kind = Some(MessageKind::from_type(v)),
            (FieldId::Channel, Value::Varint(v)) => self.channel = Some(v),
            (FieldId::Hid, Value::Str(s)) => self.hid = Some(s),
            (FieldId::Sid, Value::Str(s)) => self.sid = Some(s),
            (FieldId::Known, Value::Varint(v)) => self.known = Some(v),
            (FieldId::Timestamp, Value::Varint(v)) => self.timestamp = Some(v),
            (FieldId::Protocols, Value::List(l)) => self.protocols = Some(l),
            (FieldId::Ruid, Value::Str(s)) => self.ruid = Some(s),
            (FieldId::Op, Value::Str(s)) => self.op = Some(s),
            (FieldId::Data, Value::Str(s)) => self.data = Some(s),
            (FieldId::Raw, Value::Raw(r)) => self.raw = Some(r),
            (FieldId::Tags, Value::List(l)) => self.tags = Some(l),
            (FieldId::Keepalive, Value::Bool(b)) => self.keepalive = Some(b),
            (FieldId::Filter, Value::List(l)) => self.filter = Some(l),
            (FieldId::Error, Value::Str(s)) => self.error = Some(s),
            _ => {}
        }
    }

    /// The value of one field, when present.
    #[must_use]
    pub fn get(&self, id: FieldId) -> Option<Value<'a>> {
        match id {
            FieldId::Type => self.kind.map(|k| Value::Varint(k.to_type())),
            FieldId::Channel => self.channel.map(Value::Varint),
            FieldId::Hid => self.hid.map(Value::Str),
            FieldId::Sid => self.sid.map(Value::Str),
            FieldId::Known => self.known.map(Value::Varint),
            FieldId::Timestamp => self.timestamp.map(Value::Varint),
            FieldId::Protocols => self.protocols.map(Value::List),
            FieldId::Ruid => self.ruid.map(Value::Str),
            FieldId::Op => self.op.map(Value::Str),
            FieldId::Data => self.data.map(Value::Str),
            FieldId::Raw => self.raw.map(Value::Raw),
            FieldId::Tags => self.tags.map(Value::List),
            FieldId::Keepalive => self.keepalive.map(Value::Bool),
            FieldId::Filter => self.filter.map(Value::List),
            FieldId::Error => self.error.map(Value::Str),
        }
    }

    /// The present fields in the order the reference emits them for this message's kind
    /// (spec 3.4), with `filter` first or last as `placement` says. Queries always carry
    /// their filter first, whatever `placement` is.
    pub fn fields(&self, placement: FilterPlacement) -> heapless::Vec<Field<'a>, 15> {
        let query = self.kind == Some(MessageKind::Query);
        let order: &'static [FieldId; 14] = if query { &QUERY_ORDER } else { &ORDER };
        let first = query || placement == FilterPlacement::First;
        let filter = self.filter.map(|list| Field {
            id: FieldId::Filter,
            value: Value::List(list),
        });
        let mut fields = heapless::Vec::new();
        // 15 slots hold every field once: pushes cannot fail.
        if first && let Some(filter) = filter {
            let _ = fields.push(filter);
        }
        for &id in order {
            if let Some(value) = self.get(id) {
                let _ = fields.push(Field { id, value });
            }
        }
        if !first && let Some(filter) = filter {
            let _ = fields.push(filter);
        }
        fields
    }

    /// [`fields`](Self::fields) as a borrowing iterator, cheap to clone (the encoder walks it
    /// once, and a second time only to size a buffer that was too small).
    fn wire_order(&self, placement: FilterPlacement) -> impl Iterator<Item = Field<'a>> + Clone {
        let query = self.kind == Some(MessageKind::Query);
        let order: &'static [FieldId; 14] = if query { &QUERY_ORDER } else { &ORDER };
        let first = query || placement == FilterPlacement::First;
        let filter = self.filter.map(|list| Field {
            id: FieldId::Filter,
            value: Value::List(list),
        });
        let (lead, tail) = if first {
            (filter, None)
        } else {
            (None, filter)
        };
        lead.into_iter()
            .chain(
                order
                    .iter()
                    .filter_map(move |&id| self.get(id).map(|value| Field { id, value })),
            )
            .chain(tail)
    }

    /// The exact size of [`encode`](Self::encode)'s frame.
    ///
    /// # Errors
    ///
    /// As [`encode`](Self::encode), except [`EncodeError::BufferTooSmall`].
    pub fn encoded_len(&self, placement: FilterPlacement) -> Result<usize, EncodeError> {
        encoded_len_of_fields(self.wire_order(placement), Compat::Reference)
    }

    /// Encodes the message into `out` in the reference's field order (see
    /// [`fields`](Self::fields)), refusing varints the reference cannot read.
    ///
    /// # Errors
    ///
    /// [`EncodeError::BufferTooSmall`] with the exact size when `out` is too short;
    /// [`EncodeError::ReservedVarintPrefix`] when a value or length would encode starting
    /// `C0 8D`.
    pub fn encode(&self, placement: FilterPlacement, out: &mut [u8]) -> Result<usize, EncodeError> {
        self.encode_with(placement, Compat::Reference, out)
    }

    /// As [`encode`](Self::encode), with an explicit [`Compat`] mode.
    ///
    /// # Errors
    ///
    /// As [`encode`](Self::encode).
    // A hint on hosts (see `encode_unsized`), so that `encode` is one call.
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn encode_with(
        &self,
        placement: FilterPlacement,
        compat: Compat,
        out: &mut [u8],
    ) -> Result<usize, EncodeError> {
        match self.encode_unsized(placement, compat, out) {
            Ok(len) => Ok(len),
            Err(Some(e)) => Err(e),
            Err(None) => {
                let required = encoded_len_of_fields(self.wire_order(placement), compat)?;
                Err(EncodeError::BufferTooSmall { required })
            }
        }
    }

    /// As [`encode_with`](Self::encode_with), but a buffer too small is `Err(None)`, without
    /// the sizing pass that finds the length it needs: for the node, which only counts such
    /// frames (and so links no sizing code).
    ///
    /// Inlined on hosts, with the framing it calls: the encoder's layers pass their results
    /// in registers (a tenth of a small frame's encode); out of line on microcontrollers.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub(crate) fn encode_unsized(
        &self,
        placement: FilterPlacement,
        compat: Compat,
        out: &mut [u8],
    ) -> Result<usize, Option<EncodeError>> {
        let length_bytes = super::varint::encoded_len(self.body_len_estimate());
        match encode_body(compat, out, length_bytes, |area, checked| {
            self.write_body(placement, area, checked)
        }) {
            Ok(len) => Ok(len),
            Err(OnePass::Refused(e)) => Err(Some(e)),
            Err(OnePass::Full) => Err(None),
        }
    }

    /// Roughly the body's length, to reserve the right number of bytes for the length
    /// varint: the payload fields plus a typical 64 bytes for the rest. A wrong guess only
    /// costs moving the body once (near 128 bytes, or for very long lists).
    fn body_len_estimate(&self) -> u64 {
        let len = |s: Option<Str<'_>>| s.map_or(0, |s| s.len());
        let payload = len(self.data)
            .saturating_add(len(self.error))
            .saturating_add(self.raw.map_or(0, <[u8]>::len));
        (payload as u64).saturating_add(64)
    }

    /// Writes the fields straight from the message, in the order of [`ORDER`] (or
    /// [`QUERY_ORDER`]): the same order as [`fields`](Self::fields) (a test checks it),
    /// without building field values first.
    ///
    /// Kept out of line on hosts, where everything around it is inlined: inlined into the
    /// framing as well, it encoded every frame with a few more instructions, not fewer.
    #[cfg_attr(not(target_os = "none"), inline(never))]
    fn write_body(
        &self,
        placement: FilterPlacement,
        area: &mut [u8],
        checked: bool,
    ) -> Result<usize, OnePass> {
        let mut writer = CheckedWriter::new(area, checked);
        let w = &mut writer;
        let query = self.kind == Some(MessageKind::Query);
        let first = query || placement == FilterPlacement::First;
        let str_field = |w: &mut CheckedWriter<'_>, id, value: Option<Str<'_>>| match value {
            Some(s) => w.bytes_field(id, s.as_bytes()),
            None => Ok(()),
        };
        let varint_field = |w: &mut CheckedWriter<'_>, id, value: Option<u64>| match value {
            Some(v) => w.varint_field(id, v),
            None => Ok(()),
        };
        let list_field = |w: &mut CheckedWriter<'_>, id, value: Option<List<'_>>| match value {
            Some(l) => w.list_field(id, l),
            None => Ok(()),
        };
        let keepalive = |w: &mut CheckedWriter<'_>| match self.keepalive {
            Some(b) => w.bool_field(FieldId::Keepalive, b),
            None => Ok(()),
        };
        if first {
            list_field(w, FieldId::Filter, self.filter)?;
        }
        str_field(w, FieldId::Sid, self.sid)?;
        str_field(w, FieldId::Hid, self.hid)?;
        varint_field(w, FieldId::Type, self.kind.map(MessageKind::to_type))?;
        varint_field(w, FieldId::Channel, self.channel)?;
        list_field(w, FieldId::Protocols, self.protocols)?;
        str_field(w, FieldId::Ruid, self.ruid)?;
        if !query {
            keepalive(w)?;
        }
        str_field(w, FieldId::Data, self.data)?;
        if query {
            keepalive(w)?;
        }
        str_field(w, FieldId::Error, self.error)?;
        str_field(w, FieldId::Op, self.op)?;
        if let Some(raw) = self.raw {
            w.bytes_field(FieldId::Raw, raw)?;
        }
        varint_field(w, FieldId::Timestamp, self.timestamp)?;
        varint_field(w, FieldId::Known, self.known)?;
        list_field(w, FieldId::Tags, self.tags)?;
        if !first {
            list_field(w, FieldId::Filter, self.filter)?;
        }
        Ok(writer.written())
    }

    /// Encodes into a new vector.
    ///
    /// # Errors
    ///
    /// [`EncodeError::ReservedVarintPrefix`] as [`encode`](Self::encode).
    #[cfg(feature = "alloc")]
    pub fn encode_to_vec(
        &self,
        placement: FilterPlacement,
    ) -> Result<alloc::vec::Vec<u8>, EncodeError> {
        let mut out = alloc::vec![0; self.encoded_len(placement)?];
        self.encode(placement, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HID: &str = "00:11:22:33:44:55";
    const TC: [&str; 2] = ["t", "c"];

    fn hex(bytes: &[u8]) -> std::string::String {
        bytes.iter().map(|b| std::format!("{b:02x}")).collect()
    }

    fn encode(message: &Message<'_>, placement: FilterPlacement) -> std::string::String {
        let mut out = [0u8; 512];
        let len = message.encode(placement, &mut out).unwrap();
        assert_eq!(message.encoded_len(placement), Ok(len));
        hex(&out[..len])
    }

    fn base(kind: MessageKind) -> Message<'static> {
        Message {
            sid: Some("AbCd1234".into()),
            hid: Some(HID.into()),
            kind: Some(kind),
            channel: Some(0),
            protocols: Some(List::from_items(&TC)),
            ..Message::default()
        }
    }

    #[test]
    fn periodic_heartbeat_is_e1() {
        let message = Message {
            known: Some(3),
            ..base(MessageKind::Heartbeat)
        };
        assert_eq!(
            encode(&message, FilterPlacement::Last),
            "c08d2904084162436431323334031130303a31313a32323a33333a34343a35350101020007020174016305030000"
        );
    }

    #[test]
    fn query_puts_filter_first_and_keepalive_after_data_like_e3() {
        let filter = ["Zz998877"];
        let message = Message {
            ruid: Some("qAC#4".into()),
            data: Some("status".into()),
            keepalive: Some(true),
            filter: Some(List::from_items(&filter)),
            channel: Some(0),
            ..base(MessageKind::Query)
        };
        // Queries take their filter first even when asked for `Last`.
        assert_eq!(
            encode(&message, FilterPlacement::Last),
            "c08d430e01085a7a3939383837370408416243643132333403113030\
3a31313a32323a33333a34343a3535010402000702017401630805714143233\
40a067374617475730d010000"
        );
    }

    #[test]
    fn error_response_puts_error_after_keepalive_and_filter_last_like_e7() {
        let filter = ["AbCd1234"];
        let message = Message {
            sid: Some("Zz998877".into()),
            ruid: Some("qAC#4".into()),
            keepalive: Some(true),
            error: Some("denied".into()),
            filter: Some(List::from_items(&filter)),
            ..base(MessageKind::Response)
        };
        assert_eq!(
            encode(&message, FilterPlacement::Last),
            "c08d4304085a7a393938383737031130303a31313a32323a33333a34343a3535010502000702017401630805714143233\
40d010f0664656e6965640e01084162436431323334\
0000"
        );
    }

    #[test]
    fn direct_writer_follows_the_order_table_for_every_kind_and_placement() {
        let list = ["x", "y"];
        for kind in 0..10 {
            for placement in [FilterPlacement::First, FilterPlacement::Last] {
                let message = Message {
                    kind: Some(MessageKind::from_type(kind)),
                    channel: Some(3),
                    hid: Some("h".into()),
                    sid: Some("s".into()),
                    known: Some(4),
                    timestamp: Some(5),
                    protocols: Some(List::from_items(&list)),
                    ruid: Some("r".into()),
                    op: Some("o".into()),
                    data: Some("d".into()),
                    raw: Some(b"raw"),
                    tags: Some(List::from_items(&list)),
                    keepalive: Some(true),
                    filter: Some(List::from_items(&list)),
                    error: Some("e".into()),
                };
                let mut direct = [0u8; 256];
                let len = message.encode(placement, &mut direct).unwrap();
                let mut table = [0u8; 256];
                let fields = message.fields(placement);
                let len2 = crate::wire::encode_fields(
                    fields.iter().copied(),
                    Compat::Reference,
                    &mut table,
                )
                .unwrap();
                assert_eq!(&direct[..len], &table[..len2], "kind {kind} {placement:?}");
            }
        }
    }

    /// One field of a generated body: an id (sometimes outside 1–15, sometimes of more than
    /// one byte) and a value of any kind, not necessarily the id's.
    fn arb_field() -> impl proptest::strategy::Strategy<Value = std::vec::Vec<u8>> {
        use proptest::prelude::*;
        let varint = |value: u64| {
            let mut out = [0u8; 10];
            let len = crate::wire::varint::encode(value, &mut out).unwrap();
            out[..len].to_vec()
        };
        let id = prop_oneof![8 => 1u64..=15, 1 => 0u64..=20, 1 => any::<u64>()];
        let value = prop_oneof![
            // A varint of any length.
            any::<u64>().prop_map(move |v| varint(v >> (v % 64))),
            // Length-prefixed bytes, sometimes with a wrong length.
            (proptest::collection::vec(any::<u8>(), 0..20), 0u64..3).prop_map(move |(b, skew)| {
                let mut out = varint((b.len() as u64).saturating_add(skew).saturating_sub(1));
                out.extend(b);
                out
            }),
            // A list: a count, then length-prefixed items, sometimes too few.
            (
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..6), 0..4),
                0u64..3
            )
                .prop_map(move |(items, skew)| {
                    let mut out =
                        varint((items.len() as u64).saturating_add(skew).saturating_sub(1));
                    for item in items {
                        out.extend(varint(item.len() as u64));
                        out.extend(item);
                    }
                    out
                }),
            // Anything.
            proptest::collection::vec(any::<u8>(), 0..4),
        ];
        (id, value).prop_map(move |(id, value)| {
            let mut out = varint(id);
            out.extend(value);
            out
        })
    }

    proptest::proptest! {
        /// The hosts' reader and the field-by-field reader of microcontrollers accept the
        /// same bodies, with the same fields, and reject the others with the same error
        /// (and the same fields read before it).
        #[test]
        fn hosts_reader_matches_the_field_reader(
            fields in proptest::collection::vec(arb_field(), 0..8),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            truncate in proptest::prelude::any::<bool>(),
        ) {
            let mut body: std::vec::Vec<u8> = fields.concat();
            if truncate && !body.is_empty() {
                body.truncate(cut.index(body.len()));
            }
            let mut fast = Message::default();
            let mut reference = Message::default();
            let fast_result = fast.read_fields(&body);
            let reference_result = reference.read_fields_by_field(&body);
            proptest::prop_assert_eq!(fast_result, reference_result);
            proptest::prop_assert_eq!(fast, reference);
            for (a, b) in [
                (fast.protocols, reference.protocols),
                (fast.tags, reference.tags),
                (fast.filter, reference.filter),
            ] {
                proptest::prop_assert_eq!(a.map(|l| l.len()), b.map(|l| l.len()));
            }
        }

        /// Every message encodes and parses back to itself, on the hosts' reader.
        #[test]
        fn encoded_messages_parse_back(
            kind in 0u64..12,
            numbers in proptest::prelude::any::<[Option<u64>; 3]>(),
            texts in proptest::prelude::any::<[Option<std::vec::Vec<u8>>; 6]>(),
            lists in proptest::prelude::any::<[Option<std::vec::Vec<std::string::String>>; 3]>(),
            keepalive in proptest::prelude::any::<Option<bool>>(),
            first in proptest::prelude::any::<bool>(),
        ) {
            let items: std::vec::Vec<std::vec::Vec<&str>> = lists
                .iter()
                .map(|l| l.iter().flatten().map(std::string::String::as_str).collect())
                .collect();
            let list = |i: usize| lists[i].as_ref().map(|_| List::from_items(&items[i]));
            let text = |i: usize| texts[i].as_deref().map(Str::from_bytes);
            let message = Message {
                kind: Some(MessageKind::from_type(kind)),
                channel: numbers[0],
                hid: text(0),
                sid: text(1),
                known: numbers[1],
                timestamp: numbers[2],
                protocols: list(0),
                ruid: text(2),
                op: text(3),
                data: text(4),
                raw: text(5).map(|s| s.as_bytes()),
                tags: list(1),
                keepalive,
                filter: list(2),
                error: None,
            };
            let placement = if first { FilterPlacement::First } else { FilterPlacement::Last };
            let Ok(bytes) = message.encode_to_vec_unchecked(placement) else {
                return Ok(());
            };
            let (parsed, used) = Message::parse(&bytes).unwrap();
            proptest::prop_assert_eq!(used, bytes.len());
            proptest::prop_assert_eq!(parsed, message);
        }
    }

    impl Message<'_> {
        /// The frame in a new vector, reserved varints allowed (the decoder reads them).
        fn encode_to_vec_unchecked(
            &self,
            placement: FilterPlacement,
        ) -> Result<std::vec::Vec<u8>, EncodeError> {
            let mut out = std::vec![0u8; 1 << 16];
            let len = self.encode_with(placement, Compat::Unchecked, &mut out)?;
            out.truncate(len);
            Ok(out)
        }
    }

    #[test]
    fn decoded_message_keeps_the_last_duplicate() {
        let bytes = [
            0xC0, 0x8D, 0x06, 0x0A, 0x01, b'a', 0x0A, 0x01, b'b', 0x00, 0x00,
        ];
        let (message, used) = Message::parse(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(message.data, Some(Str::from("b")));
    }
}
