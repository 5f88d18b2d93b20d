//! The five frames of the codec bench, as `wire::Message`s and as the same information in a
//! serde struct: shared by `benches/codec.rs` and `examples/codec_instructions.rs`, so the
//! wall-clock and the instruction counts measure the same frames.

use cluster_core::wire::{FilterPlacement, List, Message, MessageKind, Str};
use serde::{Deserialize, Serialize};
use serde_bytes::Bytes;

/// The same information as a frame, as an application would write it without this codec.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Packet<'a> {
    #[serde(borrow)]
    filter: Option<Vec<&'a str>>,
    sid: &'a str,
    hid: &'a str,
    kind: u8,
    channel: u32,
    #[serde(borrow)]
    protocols: Vec<&'a str>,
    ruid: Option<&'a str>,
    data: Option<&'a str>,
    known: Option<u32>,
    #[serde(borrow)]
    tags: Option<Vec<&'a str>>,
    keepalive: Option<bool>,
}

/// The room of each list of [`PacketBytes`]: the bench's frames carry at most two items, so
/// four leaves room. Kept small on purpose: the lists sit inline (16 bytes an item) and the
/// decoded struct is moved out of the decoder, so a larger room costs postcard time for
/// nothing on these frames (eight: 741 / 946 / 918 instructions for a heartbeat / query /
/// 1 KiB event decode against 570 / 740 / 712 with four; BENCHMARKS.md).
pub(crate) const LIST_CAPACITY: usize = 4;

/// A list of [`PacketBytes`]: borrowed items in place, no heap.
type Items<'a> = heapless::Vec<&'a Bytes, LIST_CAPACITY>;

/// The same information as [`Packet`], decoded with the same work as `Message::parse`: every
/// text field a borrowed byte slice (no UTF-8 check) and every list a fixed-capacity vector
/// of borrowed slices (no allocation). Its postcard encoding is byte for byte [`Packet`]'s
/// (`serde_bytes` writes a length and the bytes, as a `&str` is written; `heapless::Vec` a
/// length and the items, as a `Vec` is).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct PacketBytes<'a> {
    #[serde(borrow)]
    filter: Option<Items<'a>>,
    #[serde(borrow)]
    sid: &'a Bytes,
    #[serde(borrow)]
    hid: &'a Bytes,
    kind: u8,
    channel: u32,
    #[serde(borrow)]
    protocols: Items<'a>,
    #[serde(borrow)]
    ruid: Option<&'a Bytes>,
    #[serde(borrow)]
    data: Option<&'a Bytes>,
    known: Option<u32>,
    #[serde(borrow)]
    tags: Option<Items<'a>>,
    keepalive: Option<bool>,
}

impl<'a> Packet<'a> {
    /// The same information as a [`PacketBytes`].
    pub(crate) fn to_bytes(&self) -> PacketBytes<'a> {
        let bytes = |text: &'a str| Bytes::new(text.as_bytes());
        let items = |list: &Vec<&'a str>| list.iter().map(|item| bytes(item)).collect();
        PacketBytes {
            filter: self.filter.as_ref().map(items),
            sid: bytes(self.sid),
            hid: bytes(self.hid),
            kind: self.kind,
            channel: self.channel,
            protocols: items(&self.protocols),
            ruid: self.ruid.map(bytes),
            data: self.data.map(bytes),
            known: self.known,
            tags: self.tags.as_ref().map(items),
            keepalive: self.keepalive,
        }
    }
}

/// `Message::parse` and then what an application reading text pays: the UTF-8 check of every
/// text field present (`Str::to_str`) and of every list item, as postcard's decode into
/// [`Packet`] checks every `&str`. `None` for a frame that does not parse or holds a field
/// that is not UTF-8. Raw bytes (`raw`) are not text and stay unchecked.
pub(crate) fn parse_text(frame: &[u8]) -> Option<Message<'_>> {
    let (message, _) = Message::parse(frame).ok()?;
    let texts = [
        message.hid,
        message.sid,
        message.ruid,
        message.op,
        message.data,
        message.error,
    ];
    for text in texts.iter().flatten() {
        text.to_str().ok()?;
    }
    for list in [message.protocols, message.tags, message.filter]
        .iter()
        .flatten()
    {
        for item in list.iter() {
            Str::from_bytes(item).to_str().ok()?;
        }
    }
    Some(message)
}

const HID: &str = "00:11:22:33:44:55";
const TC: [&str; 2] = ["t", "c"];

pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) message: Message<'static>,
    pub(crate) placement: FilterPlacement,
    pub(crate) packet: Packet<'static>,
}

pub(crate) fn cases(kib: &'static str) -> Vec<Case> {
    let base = |kind| Message {
        sid: Some("AbCd1234".into()),
        hid: Some(HID.into()),
        kind: Some(kind),
        channel: Some(0),
        protocols: Some(List::from_items(&TC)),
        ..Message::default()
    };
    let packet = |kind| Packet {
        filter: None,
        sid: "AbCd1234",
        hid: HID,
        kind,
        channel: 0,
        protocols: TC.to_vec(),
        ruid: None,
        data: None,
        known: None,
        tags: None,
        keepalive: None,
    };
    static TAGS: [&str; 2] = ["web", "db"];
    static TARGET: [&str; 1] = ["Zz998877"];
    static ASKER: [&str; 1] = ["AbCd1234"];
    vec![
        Case {
            name: "heartbeat",
            message: Message {
                known: Some(3),
                ..base(MessageKind::Heartbeat)
            },
            placement: FilterPlacement::Last,
            packet: Packet {
                known: Some(3),
                ..packet(1)
            },
        },
        Case {
            name: "join_discovery",
            message: Message {
                data: Some("t {port 40000}".into()),
                known: Some(0),
                tags: Some(List::from_items(&TAGS)),
                ..base(MessageKind::Discovery)
            },
            placement: FilterPlacement::Last,
            packet: Packet {
                data: Some("t {port 40000}"),
                known: Some(0),
                tags: Some(TAGS.to_vec()),
                ..packet(2)
            },
        },
        Case {
            name: "query",
            message: Message {
                filter: Some(List::from_items(&TARGET)),
                ruid: Some("qAC#4".into()),
                data: Some("status".into()),
                keepalive: Some(true),
                ..base(MessageKind::Query)
            },
            placement: FilterPlacement::First,
            packet: Packet {
                filter: Some(TARGET.to_vec()),
                ruid: Some("qAC#4"),
                data: Some("status"),
                keepalive: Some(true),
                ..packet(4)
            },
        },
        Case {
            name: "response",
            message: Message {
                sid: Some("Zz998877".into()),
                ruid: Some("qAC#4".into()),
                keepalive: Some(true),
                data: Some("ok".into()),
                filter: Some(List::from_items(&ASKER)),
                ..base(MessageKind::Response)
            },
            placement: FilterPlacement::Last,
            packet: Packet {
                sid: "Zz998877",
                ruid: Some("qAC#4"),
                keepalive: Some(true),
                data: Some("ok"),
                filter: Some(ASKER.to_vec()),
                ..packet(5)
            },
        },
        Case {
            name: "event_1k",
            message: Message {
                channel: Some(5),
                data: Some(kib.into()),
                filter: Some(List::from_items(&TARGET)),
                ..base(MessageKind::Event)
            },
            placement: FilterPlacement::Last,
            packet: Packet {
                channel: 5,
                data: Some(kib),
                filter: Some(TARGET.to_vec()),
                ..packet(6)
            },
        },
    ]
}
