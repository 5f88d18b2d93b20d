//! Sealed frames: every frame authenticated and encrypted under a pre-shared key ring, with
//! replay protection (feature `seal`).
//!
//! Without sealing, anyone on the LAN can join a cluster, pretend to be a service or answer
//! its queries: the protocol has no authentication, as in the reference. A node given a
//! [`KeyRing`] ([`Node::set_keys`](crate::Node::set_keys)) seals every frame it sends and
//! drops, before they touch any state, every frame that is not sealed with a key of its ring,
//! that fails to authenticate, or that it has accepted before. Each drop is counted in
//! [`Stats`] (`unsealed`, `unknown_key`, `forged`, `replayed`).
//!
//! # What a sealed frame is
//!
//! An ordinary bpacket frame whose first field is an empty `filter` and whose only other field
//! is `raw`, holding the sealed envelope (layout in `envelope.rs`):
//!
//! * the inner frame, encrypted with XChaCha20-Poly1305 (RFC 8439 with a 24-byte nonce);
//! * the nonce: a 16-byte salt drawn at every start (from the node's seed, through a stream
//!   of its own) and a 64-bit counter, so a nonce is never reused with a key;
//! * the key id, so rings can hold several keys and rotate without downtime (see
//!   [`KeyRing`]);
//! * the protocol the frame was sealed for, authenticated but not sent: a frame sealed for
//!   the multicast group does not open when relayed over a TCP connection (where it would make
//!   that connection the route to its sender).
//!
//! It coexists with reference nodes and unkeyed nodes of this project on the same group and
//! port: both stop decoding at the empty filter, which names nobody (spec 2.4, 5.8), and drop
//! the frame silently. The envelope is byte-stuffed so that no `C0 8D` appears anywhere but in
//! the frame's header: a reference stream parser that lost the start of a frame resyncs on the
//! next real header, never inside ciphertext (`tests/seal_reference_parser.rs` runs the
//! reference's parser, as the spec describes it, over sealed traffic).
//!
//! # Replay protection
//!
//! Each receiver keeps, per sender salt, the highest counter accepted and a window of the 128
//! below it; a counter seen before or older than the window is refused. The table holds as
//! many senders as the node holds services; when full, the sender heard from least recently
//! is forgotten (`replay_evictions`), after which its old frames could be accepted once more.
//! A node that never heard a sender cannot tell its old frames from new ones: replaying a
//! departed node's captured frames to a node that joined later makes that node see the
//! departed node again, until its ttl passes.
//!
//! # Limits
//!
//! A sealed frame is opened in a buffer of twice the node's `DATA` bytes: its payload (at most
//! `DATA`) plus its other fields (about 100 bytes, the tags and the filter) must fit. The seal
//! adds 59 bytes and one byte per 254 to each frame. The seed given to
//! [`Node::new`](crate::Node::new) must differ at every start: with sealing on, a repeated
//! seed repeats nonces.

#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)
)]

mod aead;
mod envelope;
mod escape;
mod frame_seal;
mod key;
mod replay;

pub use frame_seal::{FrameSeal, SealError};
pub use key::{KEY_LEN, Key, KeyRing, KeyRingError, MAX_KEYS};

pub(crate) use envelope::transmit_buf_len;

use crate::error::DatagramError;
use crate::protocol::Protocol;
use crate::rng::Rng;
use crate::stats::{Stats, bump};
use crate::wire::{Compat, Frame, Message};
use envelope::{OpenFailure, SealFailure};
use replay::{ReplayTable, Salt};

/// True when `frame` has the sealed layout (an empty `filter` first, then `raw`).
#[must_use]
pub fn is_sealed(frame: &Frame<'_>) -> bool {
    envelope::looks_sealed(frame.body())
}

/// A stream of the seed apart from the node's own draws, so that sealing changes none of them.
const SALT_STREAM: u64 = 0x5EA1_ED5A_17ED_F00D;

/// A node's sealing state: its keys, salt and counter, the replay table, and the buffer
/// sealed frames are opened in.
pub(crate) struct Sealer<const SENDERS: usize, const DATA: usize> {
    ring: Option<KeyRing>,
    salt: Salt,
    counter: u64,
    replay: ReplayTable<SENDERS>,
    /// Two `DATA`-sized halves used as one buffer: a payload and the rest of its frame.
    open: [[u8; DATA]; 2],
}

/// What becomes of a received frame.
pub(crate) enum Admit {
    /// Go on with the fields [`Sealer::admit`] left: the received frame's (sealing off) or the
    /// opened one's.
    Frame,
    /// This node's own sealed frame, back by multicast loopback.
    OwnEcho,
    /// Drop it (counted).
    Drop(DatagramError),
}

/// What [`Sealer::open_inner`] leaves.
pub(crate) enum Opened<'a> {
    /// Sealing is off: the frame is its own content.
    Plain,
    /// The inner frame's bytes, authentic and new.
    Inner(&'a [u8]),
    /// This node's own sealed frame, back by multicast loopback.
    OwnEcho,
}

impl<const SENDERS: usize, const DATA: usize> Sealer<SENDERS, DATA> {
    /// No keys, no salt: the state of a node not started yet (all zero bits).
    pub(crate) const fn empty() -> Self {
        Self {
            ring: None,
            salt: [0; 16],
            counter: 0,
            replay: ReplayTable::new(),
            open: [[0; DATA]; 2],
        }
    }

    /// A node (re)starts: a salt drawn from `seed`, counters from zero, no sender known. The
    /// keys stay.
    pub(crate) fn start(&mut self, seed: u64) {
        let mut rng = Rng::new(seed ^ SALT_STREAM);
        let (high, low) = self.salt.split_at_mut(8);
        high.copy_from_slice(&rng.next_u64().to_be_bytes());
        low.copy_from_slice(&rng.next_u64().to_be_bytes());
        self.counter = 0;
        self.replay.clear();
    }

    #[cfg(test)]
    pub(crate) fn new(seed: u64) -> Self {
        let mut sealer = Self::empty();
        sealer.start(seed);
        sealer
    }

    pub(crate) fn is_on(&self) -> bool {
        self.ring.is_some()
    }

    pub(crate) fn ring(&self) -> Option<&KeyRing> {
        self.ring.as_ref()
    }

    pub(crate) fn set_keys(&mut self, ring: Option<KeyRing>) {
        self.ring = ring;
    }

    /// Opens `frame`, whose fields are `message`, when sealing is on (`message` then holds the
    /// opened frame's fields); passes it through when off.
    pub(crate) fn admit<'a>(
        &'a mut self,
        via: Protocol,
        frame: Frame<'a>,
        message: &mut Message<'a>,
        stats: &mut Stats,
    ) -> Admit {
        let inner = match self.open_inner(via, &frame, stats) {
            Ok(Opened::Plain) => return Admit::Frame,
            Ok(Opened::OwnEcho) => return Admit::OwnEcho,
            Ok(Opened::Inner(inner)) => inner,
            Err(e) => return Admit::Drop(e),
        };
        *message = Message::default();
        let parsed = Frame::split(inner)
            .and_then(|(frame, used)| message.read_fields(frame.body()).map(|()| (frame, used)));
        match parsed {
            Ok((frame, used)) if used == inner.len() && !is_sealed(&frame) => Admit::Frame,
            Ok(_) => Admit::Drop(DatagramError::Invalid),
            Err(e) => {
                bump(&mut stats.decode_errors);
                Admit::Drop(DatagramError::Decode(e))
            }
        }
    }

    /// The envelope part of [`admit`](Self::admit): checks, authenticates and decrypts a sealed
    /// `frame` (counting each failure), leaving the inner frame's bytes, not yet read.
    pub(crate) fn open_inner<'a>(
        &'a mut self,
        via: Protocol,
        frame: &Frame<'_>,
        stats: &mut Stats,
    ) -> Result<Opened<'a>, DatagramError> {
        let Some(ring) = &self.ring else {
            return Ok(Opened::Plain);
        };
        if !is_sealed(frame) {
            bump(&mut stats.unsealed);
            return Err(DatagramError::Unsealed);
        }
        let buf = self.open.as_flattened_mut();
        let envelope = match envelope::unpack(frame.body(), buf) {
            Ok(envelope) => envelope,
            Err(failure) => return Err(count_failure(failure, 0, stats)),
        };
        if envelope.salt == self.salt {
            bump(&mut stats.own_echoes);
            return Ok(Opened::OwnEcho);
        }
        if self.replay.check(&envelope.salt, envelope.counter).is_err() {
            bump(&mut stats.replayed);
            return Err(DatagramError::Replayed);
        }
        let inner = match envelope.open(ring, via, buf) {
            Ok(inner) => inner,
            Err(failure) => return Err(count_failure(failure, envelope.key_id, stats)),
        };
        if self.replay.accept(&envelope.salt, envelope.counter) {
            bump(&mut stats.replay_evictions);
        }
        Ok(Opened::Inner(inner))
    }

    /// Seals the inner frame of `inner_len` bytes at `buf[inner_range(buf.len())]`; returns
    /// the sealed frame's length, at the start of `buf`.
    pub(crate) fn seal(
        &mut self,
        buf: &mut [u8],
        inner_len: usize,
        compat: Compat,
        via: Protocol,
    ) -> Result<usize, SealFailure> {
        let ring = self.ring.as_ref().ok_or(SealFailure::BufferTooSmall)?;
        envelope::seal(
            buf,
            inner_len,
            ring.send_key(),
            &self.salt,
            &mut self.counter,
            compat,
            via,
        )
    }

    /// Senders in the replay table.
    #[cfg(test)]
    pub(crate) fn senders(&self) -> usize {
        self.replay.len()
    }
}

/// Where the inner frame goes in a transmit buffer of `buf_len` bytes.
pub(crate) fn inner_range(buf_len: usize) -> Option<core::ops::Range<usize>> {
    envelope::inner_range(buf_len)
}

/// Counts a sealed frame that did not open and says why it was dropped.
fn count_failure(failure: OpenFailure, key_id: u8, stats: &mut Stats) -> DatagramError {
    match failure {
        OpenFailure::UnknownKey => {
            bump(&mut stats.unknown_key);
            DatagramError::UnknownKey(key_id)
        }
        OpenFailure::TooLarge => {
            bump(&mut stats.oversized);
            DatagramError::Oversized
        }
        OpenFailure::Malformed | OpenFailure::Forged => {
            bump(&mut stats.forged);
            DatagramError::Forged
        }
    }
}

/// Counts a frame that could not be sealed.
pub(crate) fn count_seal_failure(failure: SealFailure, stats: &mut Stats) {
    match failure {
        SealFailure::BufferTooSmall => bump(&mut stats.transmit_buffer_too_small),
        SealFailure::ReservedLength => bump(&mut stats.encode_errors),
    }
}

#[cfg(test)]
mod tests;
