//! The `mx` frames: a heartbeat (type 1, channel 0) whose `op` field carries the membership
//! word and whose `raw` field, on exchanges, carries the entries.
//!
//! `op` is `mx/<version> <verb> <incarnation> <port>`, for example `mx/1 push 3 41241`;
//! version 2 appends `<exports>`, the generation of the sender's exports (0: it never
//! exported anything; it grows at every change), and, when the sender has one, `<segment>`,
//! the name of its segment (at most [`SEGMENT`] bytes, no spaces), for example
//! `mx/2 beat 3 41241 5 plant-b`:
//!
//! | verb | meaning | `raw` |
//! | --- | --- | --- |
//! | `push` | "here is what I know; answer with what you know" | the sender's alive members |
//! | `pull` | the answer to a push | the answerer's alive members |
//! | `beat` | a unicast heartbeat to a remote member | absent |
//! | `bye` | (version 2) the sender leaves: it is lost at once, not after `lost_after` | absent |
//!
//! `incarnation` and `port` are the sender's own, so a receiver learns the sender's entry from
//! any `mx` frame (its address is the frame's source address with that port). A version-1
//! reader stops after the port, so it never sees the generation; a version-2 receiver that
//! holds another generation of the sender's exports than a beat announces pushes to the
//! sender, whose pull carries them.

use core::fmt::Write as _;

use crate::identity::InlineStr;
use crate::wire::{EncodeError, FilterPlacement, List, Message, MessageKind, Str};

/// Longest segment name, in bytes.
pub const SEGMENT: usize = 16;

/// The name of a node's segment (a site, a subnet, a VPC): empty when it has none.
pub type Segment = InlineStr<SEGMENT>;

/// The highest membership version this crate speaks.
pub const MX_VERSION: u32 = 2;

/// The prefix of every membership `op` word.
const PREFIX: &str = "mx/";

/// What an `mx` frame asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Exchange: the receiver merges the entries and answers with a pull.
    Push,
    /// The answer to a push: the receiver merges the entries.
    Pull,
    /// A unicast heartbeat.
    Beat,
    /// The sender leaves (version 2; a version-1 node ignores the unknown verb).
    Bye,
}

impl Verb {
    const fn word(self) -> &'static str {
        match self {
            Self::Push => "push",
            Self::Pull => "pull",
            Self::Beat => "beat",
            Self::Bye => "bye",
        }
    }
}

/// The parsed `op` word of an `mx` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MxWord {
    /// The sender's version (at least 1).
    pub version: u32,
    /// What the frame asks for.
    pub verb: Verb,
    /// The sender's incarnation.
    pub incarnation: u64,
    /// The sender's TCP port.
    pub port: u16,
    /// The generation of the sender's exports (version 2; 0 when absent).
    pub exports: u32,
    /// The sender's segment (version 2; empty when absent).
    pub segment: Segment,
}

/// Why an `op` that starts `mx/` could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MxWordError {
    /// Not `mx/<version> <verb> <incarnation> <port>` with numbers that fit.
    Malformed,
    /// A verb this version does not know (a later version's); the frame is ignored.
    UnknownVerb,
}

impl MxWord {
    /// Reads an `op` value: `None` when it is not a membership word at all (the frame is an
    /// ordinary one), otherwise the word or why it is unreadable.
    #[must_use]
    pub fn parse(op: &[u8]) -> Option<Result<Self, MxWordError>> {
        let text = core::str::from_utf8(op).ok()?;
        let rest = text.strip_prefix(PREFIX)?;
        Some(Self::parse_rest(rest))
    }

    fn parse_rest(rest: &str) -> Result<Self, MxWordError> {
        let mut words = rest.split(' ');
        let mut next = || words.next().ok_or(MxWordError::Malformed);
        let version: u32 = next()?.parse().map_err(|_| MxWordError::Malformed)?;
        let verb = match next()? {
            "push" => Verb::Push,
            "pull" => Verb::Pull,
            "beat" => Verb::Beat,
            "bye" if version >= 2 => Verb::Bye,
            _ => return Err(MxWordError::UnknownVerb),
        };
        let incarnation = next()?.parse().map_err(|_| MxWordError::Malformed)?;
        let port = next()?.parse().map_err(|_| MxWordError::Malformed)?;
        if version == 0 {
            return Err(MxWordError::Malformed);
        }
        // Version 2's word after the port; anything later is a later version's.
        let (exports, segment) = if version >= 2 {
            let exports = match words.next() {
                Some(word) => word.parse().map_err(|_| MxWordError::Malformed)?,
                None => 0,
            };
            let segment = match words.next() {
                Some(word) => Segment::new(word.as_bytes()).ok_or(MxWordError::Malformed)?,
                None => Segment::EMPTY,
            };
            (exports, segment)
        } else {
            (0, Segment::EMPTY)
        };
        Ok(Self {
            version,
            verb,
            incarnation,
            port,
            exports,
            segment,
        })
    }

    /// The `op` text of this word.
    #[must_use]
    pub fn text(&self) -> heapless::String<96> {
        let mut out = heapless::String::new();
        // 96 bytes hold the prefix, a u32, the longest verb, a u64, a u16, a u32 and a
        // segment.
        let _ = write!(
            out,
            "{PREFIX}{} {} {} {}",
            self.version,
            self.verb.word(),
            self.incarnation,
            self.port
        );
        if self.version >= 2 {
            let _ = write!(out, " {}", self.exports);
            if let Some(segment) = self.segment.as_str().filter(|s| !s.is_empty()) {
                let _ = write!(out, " {segment}");
            }
        }
        out
    }
}

/// The sender's identity as the base fields of an `mx` frame carry it.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    /// Its sid.
    pub sid: &'a str,
    /// Its hid.
    pub hid: &'a str,
}

/// Encodes one `mx` frame: `sid hid type=1 channel=0 protocols=[t c] op [raw]`.
///
/// # Errors
///
/// The encoder's errors: the buffer is too small, or a length would start `C0 8D`.
pub fn encode(
    sender: Sender<'_>,
    word: &MxWord,
    raw: Option<&[u8]>,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    const PROTOCOLS: [&str; 2] = ["t", "c"];
    let op = word.text();
    let message = Message {
        kind: Some(MessageKind::Heartbeat),
        channel: Some(0),
        hid: Some(Str::from(sender.hid)),
        sid: Some(Str::from(sender.sid)),
        protocols: Some(List::from_items(&PROTOCOLS)),
        op: Some(Str::from(op.as_str())),
        raw,
        ..Message::default()
    };
    message.encode(FilterPlacement::Last, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for verb in [Verb::Push, Verb::Pull, Verb::Beat, Verb::Bye] {
            let word = MxWord {
                version: MX_VERSION,
                verb,
                incarnation: u64::MAX,
                port: 65535,
                exports: u32::MAX,
                segment: Segment::new(b"plant-b").unwrap(),
            };
            assert_eq!(MxWord::parse(word.text().as_bytes()), Some(Ok(word)));
        }
    }

    #[test]
    fn version_1_words_have_no_exports_generation_and_later_words_are_ignored() {
        let word = MxWord::parse(b"mx/1 beat 3 41241 7").unwrap().unwrap();
        assert_eq!((word.version, word.exports), (1, 0));
        let word = MxWord::parse(b"mx/2 beat 3 41241 7").unwrap().unwrap();
        assert_eq!(word.exports, 7);
        let word = MxWord::parse(b"mx/3 beat 3 41241 7 office future words")
            .unwrap()
            .unwrap();
        assert_eq!((word.version, word.exports), (3, 7));
        assert_eq!(word.segment.as_str(), Some("office"));
        assert_eq!(
            MxWord::parse(b"mx/2 beat 3 41241 7 a-segment-name-too-long"),
            Some(Err(MxWordError::Malformed))
        );
        assert_eq!(
            MxWord::parse(b"mx/2 beat 3 41241 x"),
            Some(Err(MxWordError::Malformed))
        );
    }

    #[test]
    fn other_ops_are_not_membership_words() {
        assert_eq!(MxWord::parse(b"flush"), None);
        assert_eq!(MxWord::parse(b""), None);
        assert_eq!(MxWord::parse(b"mx"), None);
    }

    #[test]
    fn bad_words_are_typed_errors() {
        for bad in [
            "mx/",
            "mx/1",
            "mx/0 push 1 2",
            "mx/1 push x 2",
            "mx/1 push 1 70000",
        ] {
            assert_eq!(
                MxWord::parse(bad.as_bytes()),
                Some(Err(MxWordError::Malformed)),
                "{bad}"
            );
        }
        assert_eq!(
            MxWord::parse(b"mx/2 gossip 1 2"),
            Some(Err(MxWordError::UnknownVerb))
        );
    }

    #[test]
    fn a_frame_is_an_ordinary_heartbeat_with_op_and_raw() {
        let word = MxWord {
            version: 1,
            verb: Verb::Push,
            incarnation: 2,
            port: 41241,
            exports: 0,
            segment: Segment::EMPTY,
        };
        let sender = Sender {
            sid: "Zbdc22e7",
            hid: "02:fc:00:00:00:01",
        };
        let mut buf = [0u8; 128];
        let len = encode(sender, &word, Some(&[1, 2, 3]), &mut buf).unwrap();
        let (message, used) = Message::parse(&buf[..len]).unwrap();
        assert_eq!(used, len);
        assert_eq!(message.kind, Some(MessageKind::Heartbeat));
        assert_eq!(message.channel, Some(0));
        assert_eq!(message.data, None);
        assert_eq!(message.raw, Some(&[1u8, 2, 3][..]));
        let op = message.op.unwrap();
        assert_eq!(MxWord::parse(op.as_bytes()), Some(Ok(word)));
    }
}
