//! Sealing for frames a driver sends and reads beside the node's own: the membership frames
//! of `cluster-host`'s seeds and a gateway's relayed answers. Same envelope and keys as the
//! node's frames, with a salt, counter and replay table of its own.

use super::{KeyRing, Opened, Sealer, count_seal_failure, inner_range, is_sealed};
use crate::error::DatagramError;
use crate::protocol::Protocol;
use crate::stats::Stats;
use crate::time::Instant;
use crate::wire::{Compat, Frame};

/// Why a frame could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealError {
    /// Sealing is off (no keys).
    Off,
    /// The output buffer is too small for the frame ([`FrameSeal::buf_len`] gives the size).
    BufferTooSmall,
    /// Every padding gave a length the reference cannot read.
    ReservedLength,
}

/// A sealing state of its own: seals whole frames and opens sealed ones, at most `DATA`
/// bytes of payload each (opened in a buffer of `2 × DATA`), remembering `SENDERS` senders
/// for replay protection. Drop counters are kept in [`stats`](Self::stats) (`unsealed`,
/// `unknown_key`, `forged`, `replayed`, `decode_errors`).
pub struct FrameSeal<const SENDERS: usize, const DATA: usize> {
    sealer: Sealer<SENDERS, DATA>,
    stats: Stats,
}

impl<const SENDERS: usize, const DATA: usize> core::fmt::Debug for FrameSeal<SENDERS, DATA> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrameSeal")
            .field("on", &self.sealer.is_on())
            .finish_non_exhaustive()
    }
}

impl<const SENDERS: usize, const DATA: usize> FrameSeal<SENDERS, DATA> {
    /// A sealing state with `keys` (`None`: off), its salt drawn from `seed`, which must
    /// differ at every start.
    #[must_use]
    pub fn new(seed: u64, keys: Option<KeyRing>) -> Self {
        let mut sealer = Sealer::empty();
        sealer.start(seed);
        sealer.set_keys(keys);
        Self {
            sealer,
            stats: Stats::default(),
        }
    }

    /// Command: new keys (`None`: off) from now on.
    pub fn set_keys(&mut self, keys: Option<KeyRing>) {
        self.sealer.set_keys(keys);
    }

    /// Getter: true when frames are sealed and only sealed frames open.
    #[must_use]
    pub fn is_on(&self) -> bool {
        self.sealer.is_on()
    }

    /// Getter: the drop counters.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The output buffer [`seal`](Self::seal) needs for a frame of `frame_len` bytes.
    #[must_use]
    pub const fn buf_len(frame_len: usize) -> usize {
        super::transmit_buf_len(frame_len)
    }

    /// Seals the whole frame `frame` for protocol `via` into `out`; returns the sealed
    /// frame's length, at the start of `out`.
    ///
    /// # Errors
    ///
    /// A [`SealError`]; nothing was written that counts.
    pub fn seal(
        &mut self,
        frame: &[u8],
        via: Protocol,
        out: &mut [u8],
    ) -> Result<usize, SealError> {
        if !self.sealer.is_on() {
            return Err(SealError::Off);
        }
        let range = inner_range(out.len()).ok_or(SealError::BufferTooSmall)?;
        let end = range
            .start
            .checked_add(frame.len())
            .filter(|end| *end <= range.end)
            .ok_or(SealError::BufferTooSmall)?;
        out.get_mut(range.start..end)
            .ok_or(SealError::BufferTooSmall)?
            .copy_from_slice(frame);
        self.sealer
            .seal(out, frame.len(), Compat::Reference, via)
            .map_err(|failure| {
                count_seal_failure(failure, &mut self.stats);
                match failure {
                    super::envelope::SealFailure::BufferTooSmall => SealError::BufferTooSmall,
                    super::envelope::SealFailure::ReservedLength => SealError::ReservedLength,
                }
            })
    }

    /// Opens one whole frame that arrived over `via`: the inner frame's bytes when it is
    /// sealed with a key of the ring, authentic and new, or `frame` itself when sealing is
    /// off.
    ///
    /// `now` is not read: the replay table orders senders by their frames, not by time. It
    /// stays so that callers need not change.
    ///
    /// # Errors
    ///
    /// Why it was dropped (counted): not sealed, unknown key, forged, replayed, unreadable.
    pub fn open<'a>(
        &'a mut self,
        _now: Instant,
        frame: &'a [u8],
        via: Protocol,
    ) -> Result<&'a [u8], DatagramError> {
        let (outer, used) = Frame::parse(frame).map_err(DatagramError::Decode)?;
        if used != frame.len() {
            return Err(DatagramError::Invalid);
        }
        let inner = match self.sealer.open_inner(via, &outer, &mut self.stats)? {
            Opened::Plain => return Ok(frame),
            Opened::OwnEcho => return Err(DatagramError::Invalid),
            Opened::Inner(inner) => inner,
        };
        match Frame::parse(inner) {
            Ok((opened, used)) if used == inner.len() && !is_sealed(&opened) => Ok(inner),
            Ok(_) => Err(DatagramError::Invalid),
            Err(e) => {
                crate::stats::bump(&mut self.stats.decode_errors);
                Err(DatagramError::Decode(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::Key;

    fn heartbeat(buf: &mut [u8]) -> &[u8] {
        use crate::wire::{FilterPlacement, List, Message, MessageKind, Str};
        let protocols = ["t", "c"];
        let message = Message {
            kind: Some(MessageKind::Heartbeat),
            channel: Some(0),
            sid: Some(Str::from("Zbdc22e7")),
            hid: Some(Str::from("02:fc:00:00:00:01")),
            protocols: Some(List::from_items(&protocols)),
            ..Message::default()
        };
        let len = message.encode(FilterPlacement::Last, buf).unwrap();
        &buf[..len]
    }

    fn ring(byte: u8) -> KeyRing {
        KeyRing::new(Key::new(1, [byte; super::super::KEY_LEN]))
    }

    #[test]
    fn a_frame_opens_once_with_the_key_and_for_the_protocol_it_was_sealed_for() {
        let mut frame_buf = [0u8; 128];
        let frame = heartbeat(&mut frame_buf);
        let mut sender = FrameSeal::<4, 256>::new(1, Some(ring(7)));
        let mut out = [0u8; FrameSeal::<4, 256>::buf_len(128)];
        let len = sender.seal(frame, Protocol::Tcp, &mut out).unwrap();
        let sealed = &out[..len];
        let mut receiver = FrameSeal::<4, 256>::new(2, Some(ring(7)));
        assert_eq!(
            receiver.open(Instant::ZERO, sealed, Protocol::Multicast),
            Err(DatagramError::Forged),
            "sealed for t, not c"
        );
        let mut receiver = FrameSeal::<4, 256>::new(3, Some(ring(7)));
        assert_eq!(
            receiver.open(Instant::ZERO, sealed, Protocol::Tcp),
            Ok(frame)
        );
        assert_eq!(
            receiver.open(Instant::ZERO, sealed, Protocol::Tcp),
            Err(DatagramError::Replayed)
        );
        let mut stranger = FrameSeal::<4, 256>::new(4, Some(ring(8)));
        assert!(stranger.open(Instant::ZERO, sealed, Protocol::Tcp).is_err());
        assert_eq!(
            receiver.open(Instant::ZERO, frame, Protocol::Tcp),
            Err(DatagramError::Unsealed)
        );
        let mut off = FrameSeal::<4, 256>::new(5, None);
        assert_eq!(off.open(Instant::ZERO, sealed, Protocol::Tcp), Ok(sealed));
        assert_eq!(
            off.seal(frame, Protocol::Tcp, &mut out),
            Err(SealError::Off)
        );
        assert_eq!(
            sender.seal(frame, Protocol::Tcp, &mut [0u8; 16]),
            Err(SealError::BufferTooSmall)
        );
    }
}
