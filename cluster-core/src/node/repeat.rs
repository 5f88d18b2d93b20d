//! Repeated periodic heartbeats (feature `heartbeat-fast-path`).
//!
//! A service's periodic heartbeat (`sid hid type=1 channel=0 protocols known`, spec 3.4) is
//! the same bytes every time while its registry size stays the same: a LAN of n nodes hands
//! every node n − 1 such frames per heartbeat interval, each of which the receive pipeline
//! decodes, validates and applies to the same record in the same way. The registry keeps,
//! beside each service, the last such frame it accepted from it over multicast
//! ([`RepeatFrame`]); a datagram equal to it, byte for byte, takes the short path here and
//! has exactly the effects the full pipeline (spec 5.6) would have:
//!
//! * the checks that could fail give the same answers: the frame's bytes are those of a
//!   frame that passed them, and what they compare it with (the configuration's `remote`,
//!   this node's sid and hid, the channel subscriptions of channel 0, the record's hid) does
//!   not change while the service stays in the registry, except the source's `local`, which
//!   is checked again;
//! * the hooks are not called, so the path is taken only when the policy says they need not
//!   see every frame ([`Policy::sees_every_frame`](crate::Policy::sees_every_frame)), and
//!   never when sealing is on (a sealed frame repeated byte for byte is a replay, which the
//!   full path drops);
//! * the state changes are those of `accept` for a heartbeat without `data` and `tags`:
//!   protocols, locality and address of the record, last seen, heard, the frame count of
//!   probation, a pending `expected` cleared and its ping batch entry removed, and the
//!   `frames_accepted` counter; the stream table expires idle partial frames and counts the
//!   frame as its scan would ([`StreamTable::take_whole_datagram`]), and only when the
//!   sender has no partial frame pending (which the datagram would continue).
//!
//! [`StreamTable::take_whole_datagram`]: crate::wire::StreamTable

use super::Core;
use crate::policy::Policy;
use crate::protocol::{Protocol, ProtocolList};
use crate::service::Seen;
use crate::stats::bump;
use crate::time::{Instant, millis_ceil};
use crate::transmit::Source;
use crate::wire::{HEADER, Message, MessageKind};

/// The longest heartbeat kept for repetition, in bytes (a periodic heartbeat of this project
/// with a 16-byte sid and a 17-byte hid takes about 50).
pub(crate) const REPEAT_FRAME: usize = 96;

/// A service's last periodic heartbeat accepted over multicast, kept whole to be compared
/// with the next datagrams; empty (`len` 0) until there is one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RepeatFrame {
    len: u8,
    /// Its `protocols` field, as the record takes it.
    protocols: ProtocolList,
    bytes: [u8; REPEAT_FRAME],
}

impl RepeatFrame {
    /// No frame yet.
    pub(crate) const EMPTY: Self = Self {
        len: 0,
        protocols: ProtocolList::EMPTY,
        bytes: [0; REPEAT_FRAME],
    };

    /// True when a frame is kept and `datagram` is that frame, byte for byte.
    fn matches(&self, datagram: &[u8]) -> bool {
        self.len != 0 && self.bytes.get(..usize::from(self.len)) == Some(datagram)
    }
}

/// The sid a frame names when `sid` is its first field, as in every heartbeat this project
/// and the reference send: only where to look for the kept frame, whose equality decides.
fn first_sid(frame: &[u8]) -> Option<&[u8]> {
    let rest = frame.strip_prefix(&HEADER)?;
    let length_bytes = rest.iter().position(|b| b & 0x80 == 0)?.checked_add(1)?;
    let body = rest.get(length_bytes..)?;
    let (&field, body) = body.split_first()?;
    if field != crate::wire::FieldId::Sid as u8 {
        return None;
    }
    let (&len, body) = body.split_first()?;
    if len & 0x80 != 0 {
        return None;
    }
    body.get(..usize::from(len))
}

impl<P: Policy, const SERVICES: usize, const DATA: usize, const EVENTS: usize>
    Core<P, SERVICES, DATA, EVENTS>
{
    /// The registry index of the service whose kept heartbeat `datagram` repeats, when the
    /// short path may handle it from `source` (multicast, no sealing: the caller checks
    /// those). Changes nothing.
    /// The hints of the registry are tried first (one record read instead of a search).
    pub(super) fn repeated_heartbeat(&mut self, source: &Source, datagram: &[u8]) -> Option<usize> {
        // Step 2 of the pipeline, the only check whose input may differ from the kept frame's.
        if !self.config.remote && !source.local {
            return None;
        }
        if self.policy.sees_every_frame() {
            return None;
        }
        let sid = first_sid(datagram)?;
        let repeats = |index: &usize| {
            self.registry
                .repeat_at(*index)
                .is_some_and(|kept| kept.matches(datagram))
        };
        if let Some(index) = self.registry.hinted(sid).find(repeats) {
            return Some(index);
        }
        let index = self.registry.index_of(sid).filter(repeats)?;
        self.registry.set_hint(sid, index);
        Some(index)
    }

    /// Applies a repeated heartbeat of the service at `index` (found by
    /// [`repeated_heartbeat`](Self::repeated_heartbeat)) from `source`: what `accept` does
    /// for it. Returns whether it took the service out of the ping batch (which may move
    /// the node's deadline).
    pub(super) fn refresh_repeated(&mut self, now: Instant, source: &Source, index: usize) -> bool {
        let probation = millis_ceil(self.config.probation);
        let Some((service, kept)) = self.registry.with_repeat_at_mut(index) else {
            return false;
        };
        service.protocols = kept.protocols;
        service.set_local(source.local);
        service.note_address(source.via, source.ip(), source.local);
        service.last_seen = Seen::at(now);
        service.heard = now;
        service.note_frame(now, probation);
        let sid = service.sid;
        let was_expected = service.take_expected();
        if was_expected {
            self.ping.remove(sid.as_bytes());
        }
        bump(&mut self.stats.frames_accepted);
        bump(&mut self.stats.heartbeats_repeated);
        was_expected
    }

    /// After the full pipeline accepted `frame` (whose fields are `msg`) from `source`: keeps
    /// it beside its service when it is a periodic heartbeat the short path may repeat.
    pub(super) fn remember_heartbeat(&mut self, source: &Source, frame: &[u8], msg: &Message<'_>) {
        let repeatable = source.via == Protocol::Multicast
            && source.conn.is_none()
            && msg.kind == Some(MessageKind::Heartbeat)
            && msg.channel == Some(0)
            && msg.data.is_none()
            && msg.raw.is_none()
            && msg.tags.is_none()
            && msg.filter.is_none()
            && !self.policy.sees_every_frame();
        let (Some(sid), Some(protocols), Ok(len)) =
            (msg.sid, msg.protocols, u8::try_from(frame.len()))
        else {
            return;
        };
        if !repeatable || first_sid(frame) != Some(sid.as_bytes()) {
            return;
        }
        let Some(index) = self.registry.index_of(sid.as_bytes()) else {
            return;
        };
        let Some((_, kept)) = self.registry.with_repeat_at_mut(index) else {
            return;
        };
        let Some(bytes) = kept.bytes.get_mut(..frame.len()) else {
            return;
        };
        bytes.copy_from_slice(frame);
        kept.len = len;
        kept.protocols = ProtocolList::from_letters(protocols.iter());
        self.registry.set_hint(sid.as_bytes(), index);
    }
}

#[cfg(test)]
mod tests {
    use super::first_sid;

    #[test]
    fn the_sid_is_read_only_when_it_is_the_first_field() {
        // E1 of the spec: a periodic heartbeat of `AbCd1234`.
        let e1 = [
            0xc0, 0x8d, 0x29, 0x04, 0x08, b'A', b'b', b'C', b'd', b'1', b'2', b'3', b'4',
        ];
        assert_eq!(first_sid(&e1), Some(&b"AbCd1234"[..]));
        // A query: `filter` first.
        assert_eq!(first_sid(&[0xc0, 0x8d, 0x10, 0x0e, 0x01, 0x08]), None);
        // Cut short, or not a frame.
        assert_eq!(first_sid(&e1[..8]), None);
        assert_eq!(first_sid(&[0xc0, 0x8d]), None);
        assert_eq!(first_sid(b"hello"), None);
    }
}
