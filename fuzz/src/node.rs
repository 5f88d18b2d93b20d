//! Body of the `node` target: a script of inputs and commands driven into one node.
//!
//! The script's byte layout is [`crate::bytes`]'s: a [`Setup`], then [`Step`]s until the input
//! ends, each a tag byte (modulo the number of kinds) and its operands. [`Script::write`] is
//! the inverse, used for the hand-written seeds.

use core::fmt::Write as _;
use core::hash::Hasher;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;
use std::hash::DefaultHasher;

use arbitrary::{Arbitrary, Unstructured};
use cluster_core::wire::{
    Compat, Field, FilterPlacement, Frame, List, MAX_DATAGRAM, Message, MessageKind, Str,
    encode_fields,
};
use cluster_core::{
    Config, ConnId, DefaultPolicy, Destination, Event, Instant, Node, Protocol, ProtocolList,
    QueryRequest, Resolver, SendId, SendRequest, Sid, Source, Stats, TagOp, Targets, Transmit,
};

use crate::bytes::{Reader, Writer};
use crate::frames::lossy;

/// The node under test: 8 services, 256-byte payloads, so that floods fill every table.
pub type FuzzNode = Node<DefaultPolicy, 8, 256>;

/// The node's hid; the captured frames of the golden vectors carry it too.
pub const HID: &str = "02:fc:00:00:00:01";
/// Another host's hid.
pub const OTHER_HID: &str = "aa:bb:cc:dd:ee:ff";
/// Sids of peers (more than the node's 8 service slots). The first three and the last are
/// those of the captured vectors.
pub const SIDS: [&str; 12] = [
    "G4xYW467", "YzmWx756", "dYfVbc96", "FAKE0001", "FAKE0002", "FAKE0003", "FAKE0004", "FAKE0005",
    "FAKE0006", "FAKE0007", "FAKE0008", "YV9dH245",
];
/// Tags, tag lists and other short texts.
pub const TEXTS: [&str; 16] = [
    "ONE",
    "TWO",
    "THREE",
    "FOUR",
    "web",
    "my db",
    "ONE TWO",
    "{a b} c",
    "-x",
    "",
    "{",
    "a\\ b",
    "T*",
    "a-tag-of-twenty-five-byte",
    "café",
    "1",
];
/// `resolver` arguments.
pub const RESOLVER_ARGS: [&str; 12] = [
    "-has",
    "-not",
    "-some",
    "-exact",
    "-match",
    "-equal",
    "-all",
    "--has",
    "-regexp",
    "-bogus",
    "{a",
    "localhost",
];
/// Protocol letters as they may appear in a `protocols` field.
const LETTERS: [&str; 5] = ["t", "c", "u", "x", ""];

/// Time of the node's creation, in ms (large enough to go back in time from).
pub const START_MS: u64 = 1_000_000;

/// A whole script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// How the node is made.
    pub setup: Setup,
    /// What happens to it.
    pub steps: Vec<Step>,
}

/// How the node is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Setup {
    /// Bit 0: `Config::reference()` instead of `Config::lan_fast()`; bit 1: `remote`;
    /// bit 2: run `u` too; bit 3: a TCP port before the join is sent; bit 4: the tag `ONE`;
    /// bit 5: subscribe to channels 3 to 6; bit 6: `multicast_fallback` off; bit 7: run the
    /// script twice and compare everything the node sent and told (a run is reproduced
    /// exactly from its seed).
    pub flags: u8,
    /// The node's seed.
    pub seed: u64,
}

/// One step of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Let this many ms pass, handling every deadline on the way.
    Advance(u16),
    /// Let this many seconds pass.
    AdvanceSecs(u8),
    /// Bytes arrive.
    Datagram(Datagram),
    /// A direct send succeeded: the `n`-th latest send id seen (modulo their number).
    TransportOk(u8),
    /// A direct send failed.
    TransportFailed(u8),
    /// A connection closed.
    ConnectionClosed {
        /// Sender (modulo 4).
        sender: u8,
        /// Protocol (modulo 3).
        via: u8,
    },
    /// `send`.
    Send(SendCmd),
    /// `query`.
    Query(QueryCmd),
    /// `update_tags`.
    UpdateTags(Vec<TagEdit>),
    /// `discover`.
    Discover,
    /// `heartbeat`.
    Heartbeat,
    /// `leave`.
    Leave,
    /// `set_tcp_port`.
    SetTcpPort(Option<u16>),
    /// `set_unix_path`.
    SetUnixPath(Option<Vec<u8>>),
    /// `cancel_query` of the `n`-th latest query id (or of an unknown id).
    CancelQuery(u8),
    /// `subscribe` ([`wide`]).
    Subscribe(u8),
    /// `unsubscribe` ([`wide`]).
    Unsubscribe(u8),
    /// `expected`.
    Expected {
        /// The sid ([`sid_ref`]).
        sid: u8,
        /// `within`, in ms.
        within_ms: u16,
    },
    /// `heartbeat_after`.
    HeartbeatAfter(u16),
    /// `handle_timeout` this many ms in the past (the node clamps it).
    ClockBack(u16),
}

const STEP_KINDS: u8 = 20;

/// Bytes from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Sender (modulo 4): its address and connection id.
    pub sender: u8,
    /// Protocol (modulo 3): `c`, `t`, `u`.
    pub via: u8,
    /// Whether the sender is on this host.
    pub local: bool,
    /// The bytes.
    pub payload: Payload,
    /// When not 0, the bytes arrive in two parts, cut here (modulo their length).
    pub split: u16,
}

/// What a datagram holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Any bytes.
    Raw(Vec<u8>),
    /// One valid frame.
    Msg(Box<Msg>),
    /// Two valid frames back to back.
    Two(Box<Msg>, Box<Msg>),
}

/// A message of a peer, encoded with the codec (unchecked) into a valid frame.
///
/// Absent fields are `None`; `kind`, `hid` and `sid` are present unless their presence bit is
/// set, the others present when it is set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Msg {
    /// Type 0 to 9.
    pub kind: Option<u8>,
    /// Channel 0 to 6, or a large one ([`wide`]) from 250 on.
    pub channel: Option<u8>,
    /// 0 and 1: the node's hid; 2: another; 3: empty.
    pub hid: Option<u8>,
    /// A [`sid_ref`].
    pub sid: Option<u8>,
    /// `known`.
    pub known: Option<u8>,
    /// `timestamp`.
    pub timestamp: Option<u32>,
    /// Protocol letters, each an index into `t c u x ""`.
    pub protocols: Option<Vec<u8>>,
    /// `ruid`.
    pub ruid: Option<Vec<u8>>,
    /// `op`.
    pub op: Option<Vec<u8>>,
    /// `data`.
    pub data: Option<Data>,
    /// `raw`.
    pub raw: Option<Vec<u8>>,
    /// `tags`, each an index into [`TEXTS`].
    pub tags: Option<Vec<u8>>,
    /// `keepalive`.
    pub keepalive: Option<bool>,
    /// `filter`, each a [`sid_ref`].
    pub filter: Option<Vec<u8>>,
    /// `error`.
    pub error: Option<Vec<u8>>,
    /// Where the filter goes.
    pub filter_first: bool,
}

/// The `data` of a [`Msg`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// Any bytes.
    Bytes(Vec<u8>),
    /// `t {port N}`.
    Tcp(u16),
    /// `u {path /tmp/cluster-N.sock}`.
    Unix(u8),
    /// `t {port N} u {path /tmp/cluster-N.sock}`.
    Both(u16),
    /// Sids separated by spaces, as a ping carries them (each a [`sid_ref`]).
    Sids(Vec<u8>),
    /// `protocols {...}`, as a failure report carries it (letters as in `protocols`).
    Failed(Vec<u8>),
}

/// Who a command goes to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetsCmd {
    /// Explicit sids ([`sid_ref`]s).
    pub sids: Vec<u8>,
    /// `resolver` arguments, each an index into [`RESOLVER_ARGS`] then [`TEXTS`]; a list the
    /// resolver refuses is dropped.
    pub resolver: Option<Vec<u8>>,
}

/// `send`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendCmd {
    /// Who.
    pub targets: TargetsCmd,
    /// 0: `None`, 1: `Some(true)`, 2: `Some(false)` (modulo 3).
    pub broadcast: u8,
    /// Protocol order, letters as in `protocols`.
    pub protocols: Option<Vec<u8>>,
    /// Channel ([`wide`]).
    pub channel: u8,
    /// `ruid`.
    pub ruid: Option<Vec<u8>>,
    /// `data`.
    pub data: Option<Vec<u8>>,
    /// `raw`.
    pub raw: Option<Vec<u8>>,
}

/// `query`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryCmd {
    /// Who.
    pub targets: TargetsCmd,
    /// `data`.
    pub data: Option<Vec<u8>>,
    /// `raw`.
    pub raw: Option<Vec<u8>>,
    /// The query id.
    pub id: Option<Vec<u8>>,
    /// Timeout in ms.
    pub timeout_ms: Option<u16>,
    /// One filtered multicast frame.
    pub broadcast: bool,
    /// Channel ([`wide`]).
    pub channel: u8,
    /// Protocol order.
    pub protocols: Option<Vec<u8>>,
}

/// One tag edit; texts are indices into [`TEXTS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagEdit {
    /// [`TagOp::Append`].
    Append(u8),
    /// [`TagOp::Remove`].
    Remove(u8),
    /// [`TagOp::Map`].
    Map(u8, u8),
    /// [`TagOp::Mappend`].
    Mappend(u8, u8),
    /// [`TagOp::Replace`].
    Replace(Vec<u8>),
    /// [`TagOp::ReplaceList`].
    ReplaceList(u8),
    /// [`TagOp::MapList`].
    MapList(u8),
    /// [`TagOp::MappendList`].
    MappendList(u8),
}

// ---------------------------------------------------------------------------------------------
// Reading and writing scripts
// ---------------------------------------------------------------------------------------------

impl<'a> Arbitrary<'a> for Script {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self::read(&mut Reader::new(u)))
    }
}

impl Script {
    /// Reads a script: the setup, then steps until the input ends.
    pub fn read(r: &mut Reader<'_, '_>) -> Self {
        let setup = Setup {
            flags: r.u8(),
            seed: r.u64(),
        };
        let mut steps = Vec::new();
        while !r.is_empty() {
            steps.push(Step::read(r));
        }
        Self { setup, steps }
    }

    /// The bytes [`Script::read`] reads back as this script.
    pub fn write(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(self.setup.flags);
        w.u64(self.setup.seed);
        for step in &self.steps {
            step.write(&mut w);
        }
        w.out
    }
}

impl Step {
    fn read(r: &mut Reader<'_, '_>) -> Self {
        match r.u8() % STEP_KINDS {
            0 => Self::Advance(r.u16()),
            1 => Self::AdvanceSecs(r.u8()),
            2 => Self::Datagram(Datagram {
                sender: r.u8(),
                via: r.u8(),
                local: r.bool(),
                payload: match r.u8() % 3 {
                    0 => Payload::Raw(r.long_bytes()),
                    1 => Payload::Msg(Box::new(Msg::read(r))),
                    _ => Payload::Two(Box::new(Msg::read(r)), Box::new(Msg::read(r))),
                },
                split: r.u16(),
            }),
            3 => Self::TransportOk(r.u8()),
            4 => Self::TransportFailed(r.u8()),
            5 => Self::ConnectionClosed {
                sender: r.u8(),
                via: r.u8(),
            },
            6 => Self::Send(SendCmd {
                targets: TargetsCmd::read(r),
                broadcast: r.u8(),
                protocols: r.opt(|r| r.vec(4, Reader::u8)),
                channel: r.u8(),
                ruid: r.opt(Reader::bytes),
                data: r.opt(Reader::bytes),
                raw: r.opt(Reader::bytes),
            }),
            7 => Self::Query(QueryCmd {
                targets: TargetsCmd::read(r),
                data: r.opt(Reader::bytes),
                raw: r.opt(Reader::bytes),
                id: r.opt(Reader::bytes),
                timeout_ms: r.opt(Reader::u16),
                broadcast: r.bool(),
                channel: r.u8(),
                protocols: r.opt(|r| r.vec(4, Reader::u8)),
            }),
            8 => Self::UpdateTags(r.vec(4, TagEdit::read)),
            9 => Self::Discover,
            10 => Self::Heartbeat,
            11 => Self::Leave,
            12 => Self::SetTcpPort(r.opt(Reader::u16)),
            13 => Self::SetUnixPath(r.opt(Reader::bytes)),
            14 => Self::CancelQuery(r.u8()),
            15 => Self::Subscribe(r.u8()),
            16 => Self::Unsubscribe(r.u8()),
            17 => Self::Expected {
                sid: r.u8(),
                within_ms: r.u16(),
            },
            18 => Self::HeartbeatAfter(r.u16()),
            _ => Self::ClockBack(r.u16()),
        }
    }

    fn write(&self, w: &mut Writer) {
        match self {
            Self::Advance(ms) => {
                w.u8(0);
                w.u16(*ms);
            }
            Self::AdvanceSecs(s) => {
                w.u8(1);
                w.u8(*s);
            }
            Self::Datagram(d) => {
                w.u8(2);
                w.u8(d.sender);
                w.u8(d.via);
                w.bool(d.local);
                match &d.payload {
                    Payload::Raw(bytes) => {
                        w.u8(0);
                        w.long_bytes(bytes);
                    }
                    Payload::Msg(m) => {
                        w.u8(1);
                        m.write(w);
                    }
                    Payload::Two(a, b) => {
                        w.u8(2);
                        a.write(w);
                        b.write(w);
                    }
                }
                w.u16(d.split);
            }
            Self::TransportOk(n) => {
                w.u8(3);
                w.u8(*n);
            }
            Self::TransportFailed(n) => {
                w.u8(4);
                w.u8(*n);
            }
            Self::ConnectionClosed { sender, via } => {
                w.u8(5);
                w.u8(*sender);
                w.u8(*via);
            }
            Self::Send(c) => {
                w.u8(6);
                c.targets.write(w);
                w.u8(c.broadcast);
                w.opt(c.protocols.as_ref(), |w, v| w.vec(v, 4, |w, x| w.u8(*x)));
                w.u8(c.channel);
                w.opt(c.ruid.as_ref(), |w, v| w.bytes(v));
                w.opt(c.data.as_ref(), |w, v| w.bytes(v));
                w.opt(c.raw.as_ref(), |w, v| w.bytes(v));
            }
            Self::Query(c) => {
                w.u8(7);
                c.targets.write(w);
                w.opt(c.data.as_ref(), |w, v| w.bytes(v));
                w.opt(c.raw.as_ref(), |w, v| w.bytes(v));
                w.opt(c.id.as_ref(), |w, v| w.bytes(v));
                w.opt(c.timeout_ms.as_ref(), |w, v| w.u16(*v));
                w.bool(c.broadcast);
                w.u8(c.channel);
                w.opt(c.protocols.as_ref(), |w, v| w.vec(v, 4, |w, x| w.u8(*x)));
            }
            Self::UpdateTags(edits) => {
                w.u8(8);
                w.vec(edits, 4, |w, e| e.write(w));
            }
            Self::Discover => w.u8(9),
            Self::Heartbeat => w.u8(10),
            Self::Leave => w.u8(11),
            Self::SetTcpPort(port) => {
                w.u8(12);
                w.opt(port.as_ref(), |w, p| w.u16(*p));
            }
            Self::SetUnixPath(path) => {
                w.u8(13);
                w.opt(path.as_ref(), |w, p| w.bytes(p));
            }
            Self::CancelQuery(n) => {
                w.u8(14);
                w.u8(*n);
            }
            Self::Subscribe(c) => {
                w.u8(15);
                w.u8(*c);
            }
            Self::Unsubscribe(c) => {
                w.u8(16);
                w.u8(*c);
            }
            Self::Expected { sid, within_ms } => {
                w.u8(17);
                w.u8(*sid);
                w.u16(*within_ms);
            }
            Self::HeartbeatAfter(ms) => {
                w.u8(18);
                w.u16(*ms);
            }
            Self::ClockBack(ms) => {
                w.u8(19);
                w.u16(*ms);
            }
        }
    }
}

impl Msg {
    fn read(r: &mut Reader<'_, '_>) -> Self {
        let present = r.u16();
        // Type, hid and sid are present unless their bit is set.
        let has = |bit: u16| (present >> bit) & 1 == u16::from(bit > 2);
        let mut m = Self {
            filter_first: has(15),
            ..Self::default()
        };
        if has(0) {
            m.kind = Some(r.u8());
        }
        if has(1) {
            m.hid = Some(r.u8());
        }
        if has(2) {
            m.sid = Some(r.u8());
        }
        if has(3) {
            m.channel = Some(r.u8());
        }
        if has(4) {
            m.known = Some(r.u8());
        }
        if has(5) {
            m.timestamp = Some(r.u32());
        }
        if has(6) {
            m.protocols = Some(r.vec(4, Reader::u8));
        }
        if has(7) {
            m.ruid = Some(r.bytes());
        }
        if has(8) {
            m.op = Some(r.bytes());
        }
        if has(9) {
            m.data = Some(Data::read(r));
        }
        if has(10) {
            m.raw = Some(r.bytes());
        }
        if has(11) {
            m.tags = Some(r.vec(8, Reader::u8));
        }
        if has(12) {
            m.keepalive = Some(r.bool());
        }
        if has(13) {
            m.filter = Some(r.vec(6, Reader::u8));
        }
        if has(14) {
            m.error = Some(r.bytes());
        }
        m
    }

    fn write(&self, w: &mut Writer) {
        let bits = [
            self.kind.is_none(),
            self.hid.is_none(),
            self.sid.is_none(),
            self.channel.is_some(),
            self.known.is_some(),
            self.timestamp.is_some(),
            self.protocols.is_some(),
            self.ruid.is_some(),
            self.op.is_some(),
            self.data.is_some(),
            self.raw.is_some(),
            self.tags.is_some(),
            self.keepalive.is_some(),
            self.filter.is_some(),
            self.error.is_some(),
            self.filter_first,
        ];
        let present = bits
            .iter()
            .enumerate()
            .fold(0u16, |mask, (bit, set)| mask | (u16::from(*set) << bit));
        w.u16(present);
        let byte = |w: &mut Writer, v: &Option<u8>| {
            if let Some(v) = v {
                w.u8(*v);
            }
        };
        byte(w, &self.kind);
        byte(w, &self.hid);
        byte(w, &self.sid);
        byte(w, &self.channel);
        byte(w, &self.known);
        if let Some(t) = self.timestamp {
            w.u32(t);
        }
        if let Some(p) = &self.protocols {
            w.vec(p, 4, |w, x| w.u8(*x));
        }
        if let Some(v) = &self.ruid {
            w.bytes(v);
        }
        if let Some(v) = &self.op {
            w.bytes(v);
        }
        if let Some(d) = &self.data {
            d.write(w);
        }
        if let Some(v) = &self.raw {
            w.bytes(v);
        }
        if let Some(t) = &self.tags {
            w.vec(t, 8, |w, x| w.u8(*x));
        }
        if let Some(k) = self.keepalive {
            w.bool(k);
        }
        if let Some(f) = &self.filter {
            w.vec(f, 6, |w, x| w.u8(*x));
        }
        if let Some(v) = &self.error {
            w.bytes(v);
        }
    }
}

impl Data {
    fn read(r: &mut Reader<'_, '_>) -> Self {
        match r.u8() % 6 {
            0 => Self::Bytes(r.bytes()),
            1 => Self::Tcp(r.u16()),
            2 => Self::Unix(r.u8()),
            3 => Self::Both(r.u16()),
            4 => Self::Sids(r.vec(6, Reader::u8)),
            _ => Self::Failed(r.vec(4, Reader::u8)),
        }
    }

    fn write(&self, w: &mut Writer) {
        match self {
            Self::Bytes(b) => {
                w.u8(0);
                w.bytes(b);
            }
            Self::Tcp(p) => {
                w.u8(1);
                w.u16(*p);
            }
            Self::Unix(n) => {
                w.u8(2);
                w.u8(*n);
            }
            Self::Both(p) => {
                w.u8(3);
                w.u16(*p);
            }
            Self::Sids(s) => {
                w.u8(4);
                w.vec(s, 6, |w, x| w.u8(*x));
            }
            Self::Failed(p) => {
                w.u8(5);
                w.vec(p, 4, |w, x| w.u8(*x));
            }
        }
    }

    fn text(&self, own_sid: &[u8]) -> Vec<u8> {
        let unix = |n: u8| format!("u {{path /tmp/cluster-{n}.sock}}");
        match self {
            Self::Bytes(b) => b.clone(),
            Self::Tcp(port) => format!("t {{port {port}}}").into_bytes(),
            Self::Unix(n) => unix(*n).into_bytes(),
            Self::Both(port) => format!("t {{port {port}}} {}", unix(0)).into_bytes(),
            Self::Sids(sids) => {
                let mut out = Vec::new();
                for (i, s) in sids.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(sid_ref(*s, own_sid));
                }
                out
            }
            Self::Failed(letters) => {
                let list: Vec<&str> = letters.iter().map(|l| letter(*l)).collect();
                format!("protocols {{{}}}", list.join(" ")).into_bytes()
            }
        }
    }
}

impl TargetsCmd {
    fn read(r: &mut Reader<'_, '_>) -> Self {
        Self {
            sids: r.vec(4, Reader::u8),
            resolver: r.opt(|r| r.vec(4, Reader::u8)),
        }
    }

    fn write(&self, w: &mut Writer) {
        w.vec(&self.sids, 4, |w, x| w.u8(*x));
        w.opt(self.resolver.as_ref(), |w, v| w.vec(v, 4, |w, x| w.u8(*x)));
    }
}

impl TagEdit {
    fn read(r: &mut Reader<'_, '_>) -> Self {
        match r.u8() % 8 {
            0 => Self::Append(r.u8()),
            1 => Self::Remove(r.u8()),
            2 => Self::Map(r.u8(), r.u8()),
            3 => Self::Mappend(r.u8(), r.u8()),
            4 => Self::Replace(r.vec(9, Reader::u8)),
            5 => Self::ReplaceList(r.u8()),
            6 => Self::MapList(r.u8()),
            _ => Self::MappendList(r.u8()),
        }
    }

    fn write(&self, w: &mut Writer) {
        match self {
            Self::Append(a) => {
                w.u8(0);
                w.u8(*a);
            }
            Self::Remove(a) => {
                w.u8(1);
                w.u8(*a);
            }
            Self::Map(a, b) => {
                w.u8(2);
                w.u8(*a);
                w.u8(*b);
            }
            Self::Mappend(a, b) => {
                w.u8(3);
                w.u8(*a);
                w.u8(*b);
            }
            Self::Replace(list) => {
                w.u8(4);
                w.vec(list, 9, |w, x| w.u8(*x));
            }
            Self::ReplaceList(a) => {
                w.u8(5);
                w.u8(*a);
            }
            Self::MapList(a) => {
                w.u8(6);
                w.u8(*a);
            }
            Self::MappendList(a) => {
                w.u8(7);
                w.u8(*a);
            }
        }
    }

    /// The edit, except [`TagEdit::Replace`], whose list is borrowed (see
    /// `Harness::update_tags`).
    fn op(&self) -> TagOp<'static> {
        match self {
            Self::Append(a) => TagOp::Append(text(*a)),
            Self::Remove(a) => TagOp::Remove(text(*a)),
            Self::Map(a, b) => TagOp::Map {
                old: text(*a),
                new: text(*b),
            },
            Self::Mappend(a, b) => TagOp::Mappend {
                old: text(*a),
                new: text(*b),
            },
            Self::Replace(_) => unreachable!("Replace borrows its list; see Harness::update_tags"),
            Self::ReplaceList(a) => TagOp::ReplaceList(text(*a)),
            Self::MapList(a) => TagOp::MapList(text(*a)),
            Self::MappendList(a) => TagOp::MappendList(text(*a)),
        }
    }
}

/// A sid by index: one of [`SIDS`], then the node's own, then the empty sid.
pub fn sid_ref(index: u8, own_sid: &[u8]) -> &[u8] {
    let index = usize::from(index) % (SIDS.len() + 2);
    match SIDS.get(index) {
        Some(sid) => sid.as_bytes(),
        None if index == SIDS.len() => own_sid,
        None => b"",
    }
}

/// A channel number: the byte itself, except 250 to 254, which stand for channels whose varint
/// the reference cannot read (18,112 and 50,880: they encode starting `c0 8d`) and other large
/// values.
pub fn wide(channel: u8) -> u64 {
    match channel {
        250 => 18_112,
        251 => 50_880,
        252 => 16_383,
        253 => 1 << 32,
        254 => u64::MAX,
        other => u64::from(other),
    }
}

/// One of [`TEXTS`].
pub fn text(index: u8) -> &'static str {
    TEXTS[usize::from(index) % TEXTS.len()]
}

fn letter(index: u8) -> &'static str {
    LETTERS[usize::from(index) % LETTERS.len()]
}

fn protocol_list(letters: &[u8]) -> ProtocolList {
    ProtocolList::from_letters(letters.iter().map(|l| letter(*l).as_bytes()))
}

fn source(sender: u8, via: u8, local: bool) -> Source {
    let sender = sender % 4;
    let ip = if sender == 3 {
        Ipv4Addr::LOCALHOST
    } else {
        Ipv4Addr::new(192, 0, 2, 10 + sender)
    };
    let addr = SocketAddr::new(IpAddr::V4(ip), 23000);
    let conn = ConnId(u32::from(sender));
    match via % 3 {
        0 => Source::multicast(addr, local),
        1 => Source::tcp(conn, addr, local),
        _ => Source::unix(conn),
    }
}

impl Msg {
    /// Encodes the message, unchecked, as a valid frame.
    pub fn encode(&self, own_sid: &[u8]) -> Vec<u8> {
        let data = self.data.as_ref().map(|d| d.text(own_sid));
        let protocols: Option<Vec<&str>> = self
            .protocols
            .as_ref()
            .map(|p| p.iter().map(|l| letter(*l)).collect());
        let tags: Option<Vec<&str>> = self
            .tags
            .as_ref()
            .map(|t| t.iter().map(|x| text(*x)).collect());
        let filter: Option<Vec<String>> = self
            .filter
            .as_ref()
            .map(|f| f.iter().map(|s| lossy(sid_ref(*s, own_sid))).collect());
        let filter: Option<Vec<&str>> = filter
            .as_ref()
            .map(|f| f.iter().map(String::as_str).collect());
        let message = Message {
            kind: self.kind.map(|k| MessageKind::from_type(u64::from(k % 10))),
            channel: self
                .channel
                .map(|c| if c >= 250 { wide(c) } else { u64::from(c % 7) }),
            hid: self.hid.map(|h| {
                Str::from(match h % 4 {
                    0 | 1 => HID,
                    2 => OTHER_HID,
                    _ => "",
                })
            }),
            sid: self.sid.map(|s| Str::from_bytes(sid_ref(s, own_sid))),
            known: self.known.map(u64::from),
            timestamp: self.timestamp.map(u64::from),
            protocols: protocols.as_deref().map(List::from_items),
            ruid: self.ruid.as_deref().map(Str::from_bytes),
            op: self.op.as_deref().map(Str::from_bytes),
            data: data.as_deref().map(Str::from_bytes),
            raw: self.raw.as_deref(),
            tags: tags.as_deref().map(List::from_items),
            keepalive: self.keepalive,
            filter: filter.as_deref().map(List::from_items),
            error: self.error.as_deref().map(Str::from_bytes),
        };
        let placement = if self.filter_first {
            FilterPlacement::First
        } else {
            FilterPlacement::Last
        };
        let mut out = vec![0; 2048];
        let len = message
            .encode_with(placement, Compat::Unchecked, &mut out)
            .expect("a script message fits 2 KiB and encodes unchecked");
        out.truncate(len);
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Driving the node
// ---------------------------------------------------------------------------------------------

/// Most frames one drain may yield before the node is taken to loop.
const MAX_TRANSMITS: usize = 4096;
/// Most events one drain may yield.
const MAX_EVENTS: usize = 1024;
/// Most deadlines handled in one `Advance` step before the node is taken to spin.
const MAX_WAKEUPS: usize = 20_000;
/// Send ids and query ids remembered.
const REMEMBERED: usize = 64;

/// What a script did, to see that a seed exercises what it should.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Frames sent.
    pub transmits: usize,
    /// Events drained.
    pub events: usize,
    /// The most services known at once.
    pub most_known: usize,
    /// The final counters.
    pub stats: Stats,
    /// The simulated time, in ms since the node's creation.
    pub elapsed_ms: u64,
    /// A hash of every frame sent, its destination and every event, when `Setup::flags`
    /// bit 7 is set (else 0).
    pub digest: u64,
}

/// Runs a script; panics when an invariant breaks.
pub fn run(script: &Script) -> Report {
    let report = run_once(script);
    if script.setup.flags & 0x80 != 0 {
        let again = run_once(script);
        assert_eq!(
            report.digest, again.digest,
            "the same script and seed gave another run"
        );
    }
    report
}

fn run_once(script: &Script) -> Report {
    let mut harness = Harness::new(script.setup);
    for step in &script.steps {
        harness.step(step);
    }
    harness.report.stats = harness.node.stats();
    harness.report.elapsed_ms = harness.now - START_MS;
    harness.report.digest = harness.digest.as_ref().map_or(0, Hasher::finish);
    harness.report
}

struct Harness {
    node: Box<FuzzNode>,
    /// The driver's clock, in ms.
    now: u64,
    /// The latest time given to the node (the node's clock): `now` as of the last drain, as
    /// `Advance` moves `now` without calling the node.
    given: u64,
    buf: Vec<u8>,
    own_sid: Vec<u8>,
    send_ids: Vec<SendId>,
    query_ids: Vec<String>,
    stats: Stats,
    /// Set once the frames and events of `leave` were drained.
    gone: bool,
    report: Report,
    /// Hashes the output, when asked to.
    digest: Option<DefaultHasher>,
}

impl Harness {
    fn new(setup: Setup) -> Self {
        let flags = setup.flags;
        let mut config = if flags & 1 != 0 {
            Config::reference()
        } else {
            Config::lan_fast()
        };
        config.remote = flags & 2 != 0;
        if flags & 4 != 0 {
            config.protocols = ProtocolList::new(&[Protocol::Unix, Protocol::Tcp]);
        }
        if flags & 16 != 0 {
            config.add_tag("ONE").expect("one tag fits");
        }
        if flags & 32 != 0 {
            for channel in 3..=6 {
                config.add_channel(channel).expect("four channels fit");
            }
        }
        config.multicast_fallback = flags & 64 == 0;
        let now = START_MS;
        let mut node = Box::new(
            FuzzNode::new(
                config,
                HID,
                DefaultPolicy,
                setup.seed,
                Instant::from_millis(now),
            )
            .expect("a valid configuration"),
        );
        if flags & 8 != 0 {
            node.set_tcp_port(Instant::from_millis(now), Some(41000));
        }
        let own_sid = node.sid().as_bytes().to_vec();
        let stats = node.stats();
        let mut harness = Self {
            buf: vec![0; FuzzNode::TRANSMIT_BUF],
            node,
            now,
            given: now,
            own_sid,
            send_ids: Vec::new(),
            query_ids: Vec::new(),
            stats,
            gone: false,
            report: Report::default(),
            digest: (flags & 0x80 != 0).then(DefaultHasher::new),
        };
        harness.after_call();
        harness
    }

    fn instant(&self) -> Instant {
        Instant::from_millis(self.now)
    }

    fn step(&mut self, step: &Step) {
        let now = self.instant();
        match step {
            Step::Advance(ms) => return self.advance(u64::from(*ms)),
            Step::AdvanceSecs(s) => return self.advance(u64::from(*s) * 1000),
            Step::ClockBack(ms) => return self.clock_back(u64::from(*ms)),
            Step::Datagram(d) => {
                let source = source(d.sender, d.via, d.local);
                let bytes = match &d.payload {
                    Payload::Raw(bytes) => bytes.clone(),
                    Payload::Msg(m) => m.encode(&self.own_sid),
                    Payload::Two(a, b) => {
                        let mut bytes = a.encode(&self.own_sid);
                        bytes.extend_from_slice(&b.encode(&self.own_sid));
                        bytes
                    }
                };
                let cut = if d.split == 0 || bytes.is_empty() {
                    bytes.len()
                } else {
                    usize::from(d.split) % bytes.len()
                };
                let (first, second) = bytes.split_at(cut);
                let _ = self.node.handle_datagram(now, source, first);
                if !second.is_empty() {
                    self.after_call();
                    let _ = self.node.handle_datagram(now, source, second);
                }
            }
            Step::TransportOk(n) => {
                if let Some(id) = self.send_id(*n) {
                    self.node.transport_ok(now, id);
                }
            }
            Step::TransportFailed(n) => {
                if let Some(id) = self.send_id(*n) {
                    self.node.transport_failed(now, id);
                }
            }
            Step::ConnectionClosed { sender, via } => {
                self.node
                    .connection_closed(now, source(*sender, *via, true));
            }
            Step::Send(c) => self.send(c),
            Step::Query(c) => self.query(c),
            Step::UpdateTags(edits) => self.update_tags(edits),
            Step::Discover => {
                let _ = self.node.discover(now);
            }
            Step::Heartbeat => self.node.heartbeat(now),
            Step::Leave => self.node.leave(now),
            Step::SetTcpPort(port) => self.node.set_tcp_port(now, *port),
            Step::SetUnixPath(path) => {
                let path = path.as_deref().map(lossy);
                let _ = self.node.set_unix_path(now, path.as_deref());
            }
            Step::CancelQuery(n) => {
                let id = match self.query_ids.len() {
                    0 => "q-unknown".to_owned(),
                    len => self.query_ids[len - 1 - usize::from(*n) % len].clone(),
                };
                let _ = self.node.cancel_query(now, &id);
            }
            Step::Subscribe(channel) => {
                let _ = self.node.subscribe(wide(*channel));
            }
            Step::Unsubscribe(channel) => self.node.unsubscribe(wide(*channel)),
            Step::Expected { sid, within_ms } => {
                let sid = sid_ref(*sid, &self.own_sid).to_vec();
                let within = Duration::from_millis(u64::from(*within_ms));
                let _ = self.node.expected(now, &sid, within);
            }
            Step::HeartbeatAfter(ms) => self
                .node
                .heartbeat_after(now, Duration::from_millis(u64::from(*ms))),
        }
        self.after_call();
        self.settle();
    }

    fn send_id(&self, n: u8) -> Option<SendId> {
        let len = self.send_ids.len();
        let index = len.checked_sub(1)?.checked_sub(usize::from(n) % len)?;
        self.send_ids.get(index).copied()
    }

    fn send(&mut self, c: &SendCmd) {
        let now = self.instant();
        let args = c.targets.resolver_args();
        let resolver = args.as_deref().and_then(|a| Resolver::parse(a).ok());
        let sids = c.targets.sids(&self.own_sid);
        let ruid = c.ruid.as_deref().map(lossy);
        let request = SendRequest {
            targets: Targets {
                resolver: resolver.as_ref(),
                services: &sids,
            },
            broadcast: match c.broadcast % 3 {
                0 => None,
                1 => Some(true),
                _ => Some(false),
            },
            protocols: c.protocols.as_deref().map(protocol_list),
            channel: wide(c.channel),
            ruid: ruid.as_deref(),
            data: c.data.as_deref(),
            raw: c.raw.as_deref(),
        };
        let _ = self.node.send(now, &request);
    }

    fn query(&mut self, c: &QueryCmd) {
        let now = self.instant();
        let args = c.targets.resolver_args();
        let resolver = args.as_deref().and_then(|a| Resolver::parse(a).ok());
        let sids = c.targets.sids(&self.own_sid);
        let id = c.id.as_deref().map(lossy);
        let request = QueryRequest {
            targets: Targets {
                resolver: resolver.as_ref(),
                services: &sids,
            },
            data: c.data.as_deref(),
            raw: c.raw.as_deref(),
            id: id.as_deref(),
            timeout: c.timeout_ms.map(|ms| Duration::from_millis(u64::from(ms))),
            broadcast: c.broadcast,
            channel: wide(c.channel),
            protocols: c.protocols.as_deref().map(protocol_list),
        };
        if let Ok(id) = self.node.query(now, &request) {
            let id = lossy(id.as_bytes());
            remember(&mut self.query_ids, id);
        }
    }

    fn update_tags(&mut self, edits: &[TagEdit]) {
        let lists: Vec<Vec<&'static str>> = edits
            .iter()
            .map(|e| match e {
                TagEdit::Replace(list) => list.iter().map(|x| text(*x)).collect(),
                _ => Vec::new(),
            })
            .collect();
        let ops: Vec<TagOp<'_>> = edits
            .iter()
            .zip(&lists)
            .map(|(e, list)| match e {
                TagEdit::Replace(_) => TagOp::Replace(list),
                other => other.op(),
            })
            .collect();
        let before = self.node.tags().clone();
        match self.node.update_tags(self.instant(), &ops) {
            Ok(changed) => {
                assert_eq!(
                    changed,
                    *self.node.tags() != before,
                    "update_tags reports whether the tags changed"
                );
            }
            Err(_) => assert_eq!(*self.node.tags(), before, "a refused edit changes nothing"),
        }
    }

    /// Lets `ms` pass as a driver would: wake at each deadline on the way.
    fn advance(&mut self, ms: u64) {
        let target = self.now + ms;
        let mut wakeups = 0;
        while let Some(deadline) = self.node.poll_timeout() {
            let deadline = deadline.as_millis();
            if deadline > target {
                break;
            }
            self.now = self.now.max(deadline);
            self.timeout();
            wakeups += 1;
            assert!(
                wakeups <= MAX_WAKEUPS,
                "more than {MAX_WAKEUPS} wakeups in {ms} ms: the driver spins"
            );
        }
        self.now = target;
    }

    /// `handle_timeout` at a time up to `ms` before the driver's clock: when that is before
    /// the node's clock, the node clamps it and counts the regression.
    fn clock_back(&mut self, ms: u64) {
        let past = self.now.saturating_sub(ms);
        let node_now = self.given;
        let regressions = self.node.stats().clock_regressions;
        self.node.handle_timeout(Instant::from_millis(past));
        let counted = self.node.stats().clock_regressions;
        self.after_call();
        let expected = if past < node_now {
            regressions.saturating_add(1)
        } else {
            regressions
        };
        assert_eq!(counted, expected, "a time in the past is counted, only it");
        self.check_deadline_after(past.max(node_now));
        self.settle();
    }

    /// Handles a deadline that passed, as a driver does when `poll_timeout() <= now`.
    fn settle(&mut self) {
        if self
            .node
            .poll_timeout()
            .is_some_and(|d| d.as_millis() <= self.now)
        {
            self.timeout();
        }
    }

    /// `handle_timeout(now)`, drained and checked; then once more, which must do nothing.
    fn timeout(&mut self) {
        let now = self.instant();
        self.node.handle_timeout(now);
        self.after_call();
        self.check_deadline_after(self.now);

        let before = (
            self.node.poll_timeout(),
            self.node.stats(),
            self.node.known(),
        );
        self.node.handle_timeout(now);
        let (transmits, events) = self.after_call();
        assert_eq!(
            (transmits, events),
            (0, 0),
            "a repeated handle_timeout({}) produced output",
            self.now
        );
        let after = (
            self.node.poll_timeout(),
            self.node.stats(),
            self.node.known(),
        );
        assert_eq!(before, after, "a repeated handle_timeout changed the node");
    }

    /// After handling a timeout at `t` and draining everything, a deadline at or before `t`
    /// would make a driver spin.
    fn check_deadline_after(&self, t: u64) {
        if let Some(deadline) = self.node.poll_timeout() {
            assert!(
                deadline.as_millis() > t,
                "poll_timeout() = {} after handle_timeout({t}): the driver would spin",
                deadline.as_millis()
            );
        }
    }

    /// Step 2 of the driving contract, then the invariants. Returns the numbers of frames and
    /// events drained.
    fn after_call(&mut self) -> (usize, usize) {
        let now = self.instant();
        self.given = self.now;
        let mut transmits = 0;
        loop {
            // `has_transmit` tells exactly whether a frame is owed (adapters that write into
            // a queue's reserved space, which they cannot withdraw, rely on it).
            let owed = self.node.has_transmit(now);
            let Some(transmit) = self.node.poll_transmit(now, &mut self.buf) else {
                assert!(!owed, "has_transmit promised a frame poll_transmit did not give");
                break;
            };
            assert!(owed, "poll_transmit gave a frame has_transmit did not announce");
            transmits += 1;
            assert!(transmits <= MAX_TRANSMITS, "poll_transmit never ends");
            check_transmit(&transmit, &self.buf, &self.own_sid);
            if let Some(digest) = &mut self.digest {
                digest.write(&self.buf[..transmit.len]);
                write!(DigestWriter(digest), "{:?} {}", transmit.dst, self.now)
                    .expect("hashing never fails");
            }
            if let Some(id) = transmit.dst.send_id() {
                if self.send_ids.len() == REMEMBERED {
                    self.send_ids.remove(0);
                }
                self.send_ids.push(id);
            }
        }
        let mut events = 0;
        // Drained as the host adapters drain it: each event lent where it lies in the node.
        let digest = &mut self.digest;
        while let Some(()) = self.node.poll_event_with(|_, event| {
            if let Event::Dropped { count } = event {
                assert!(*count > 0, "a Dropped event counts something");
            }
            if let Some(digest) = digest.as_mut() {
                write!(DigestWriter(digest), "{event:?}").expect("hashing never fails");
            }
        }) {
            events += 1;
            assert!(events <= MAX_EVENTS, "poll_event_with never ends");
        }

        self.report.transmits += transmits;
        self.report.events += events;
        let known = self.node.known();
        self.report.most_known = self.report.most_known.max(known);
        assert!(known <= 8, "known() = {known} over the capacity 8");
        assert_eq!(self.node.services().count(), known);
        let stats = self.node.stats();
        check_stats_grow(&self.stats, &stats);
        self.stats = stats;

        if self.node.has_left() {
            if self.gone {
                assert_eq!(
                    (transmits, events),
                    (0, 0),
                    "a node that left produced output"
                );
            }
            self.gone = true;
            assert_eq!(known, 0, "a node that left knows nobody");
            assert_eq!(
                self.node.poll_timeout(),
                None,
                "a node that left has no deadline"
            );
        }
        (transmits, events)
    }
}

impl TargetsCmd {
    fn resolver_args(&self) -> Option<Vec<&'static str>> {
        self.resolver.as_ref().map(|args| {
            args.iter()
                .map(|a| {
                    let a = usize::from(*a) % (RESOLVER_ARGS.len() + TEXTS.len());
                    RESOLVER_ARGS
                        .get(a)
                        .copied()
                        .unwrap_or_else(|| TEXTS[a - RESOLVER_ARGS.len()])
                })
                .collect()
        })
    }

    fn sids(&self, own_sid: &[u8]) -> Vec<Sid> {
        self.sids
            .iter()
            .filter_map(|s| Sid::new(sid_ref(*s, own_sid)))
            .collect()
    }
}

/// Feeds formatted text to a hasher.
struct DigestWriter<'h>(&'h mut DefaultHasher);

impl core::fmt::Write for DigestWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.write(s.as_bytes());
        Ok(())
    }
}

fn remember(list: &mut Vec<String>, item: String) {
    if list.len() == REMEMBERED {
        list.remove(0);
    }
    list.push(item);
}

/// A frame the node sends is one frame, valid, from this node, and one a reference node
/// reads (no reserved varint).
fn check_transmit(transmit: &Transmit, buf: &[u8], own_sid: &[u8]) {
    assert!(
        transmit.len > 0 && transmit.len <= buf.len(),
        "{transmit:?}"
    );
    let bytes = &buf[..transmit.len];
    let (frame, used) = Frame::parse(bytes)
        .unwrap_or_else(|e| panic!("the node sent an invalid frame ({e:?}): {bytes:02x?}"));
    assert_eq!(used, bytes.len(), "a transmit is exactly one frame");
    let fields: Vec<Field<'_>> = frame.fields().collect();
    let mut out = vec![0; bytes.len()];
    encode_fields(fields.iter().copied(), Compat::Reference, &mut out).unwrap_or_else(|e| {
        panic!("the node sent a frame the reference cannot read ({e:?}): {bytes:02x?}")
    });
    let message = Message::from_frame(&frame);
    assert_eq!(
        message.sid.map(|s| s.as_bytes()),
        Some(own_sid),
        "{message:?}"
    );
    assert_eq!(message.hid, Some(Str::from(HID)), "{message:?}");
    assert!(message.kind.is_some(), "{message:?}");
    match transmit.dst {
        Destination::Group { .. } => {
            assert!(
                transmit
                    .segments(buf)
                    .all(|segment| segment.len() <= MAX_DATAGRAM)
            );
        }
        Destination::Service { via, .. } => {
            assert_ne!(via, Protocol::Multicast, "a direct send goes over t or u");
        }
    }
}

fn check_stats_grow(before: &Stats, after: &Stats) {
    macro_rules! grow {
        ($($field:ident),* $(,)?) => {
            $(
                assert!(
                    after.$field >= before.$field,
                    concat!("the counter ", stringify!($field), " went down: {} -> {}"),
                    before.$field,
                    after.$field
                );
            )*
        };
    }
    grow!(
        frames_accepted,
        frames_dropped,
        decode_errors,
        own_echoes,
        filtered_out,
        services_rejected,
        oversized,
        sends_rejected,
        events_dropped,
        stream_overflows,
        transmit_buffer_too_small,
        encode_errors,
        clock_regressions,
        sends_failed,
        pings_sent,
    );
}
