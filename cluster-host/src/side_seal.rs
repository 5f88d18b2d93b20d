//! Sealing of the frames the seeds and the gateway write and read themselves (membership
//! frames, relayed answers), with the node's keys (feature `seal`; without it, or without
//! keys, frames pass unchanged).
//!
//! With keys, every membership frame goes out sealed for `t` like the node's own frames,
//! and a frame read from a connection is opened before the membership or the gateway look
//! at it: one that does not open (no key, a wrong key, forged, replayed, not sealed) is
//! never membership traffic or a query to relay; the node then gets it as it came and
//! drops it by its own rules. A node without the key therefore ignores a sealed cluster's
//! membership, and a sealed node ignores unsealed membership frames.
//!
//! What the seeds tell the node (the frames remote members would send on the LAN) is sealed
//! for `c` too, since a sealed node takes nothing else.

use std::borrow::Cow;

use cluster_core::{Instant, Protocol};

/// Payload bytes a sealed membership frame may carry (an exchange is at most half the
/// seeds' 128 KiB buffer).
#[cfg(feature = "seal")]
const DATA: usize = 1 << 16;
/// Senders remembered for replay protection.
#[cfg(feature = "seal")]
const SENDERS: usize = 1024;

/// The seeds' sealing state.
#[derive(Debug, Default)]
pub struct SideSeal {
    #[cfg(feature = "seal")]
    seal: Option<Box<cluster_core::seal::FrameSeal<SENDERS, DATA>>>,
    #[cfg(feature = "seal")]
    out: Vec<u8>,
}

impl SideSeal {
    /// Command: the node's keys (`None`: off). `seed` draws the salt (at the first keys).
    #[cfg(feature = "seal")]
    pub fn set_keys(&mut self, keys: Option<cluster_core::KeyRing>, seed: u64) {
        match (&mut self.seal, keys) {
            (Some(seal), keys) => seal.set_keys(keys),
            (None, Some(keys)) => {
                self.seal = Some(Box::new(cluster_core::seal::FrameSeal::new(
                    seed,
                    Some(keys),
                )));
            }
            (None, None) => {}
        }
    }

    /// Getter: true while frames are sealed.
    #[must_use]
    pub fn is_on(&self) -> bool {
        #[cfg(feature = "seal")]
        return self.seal.as_ref().is_some_and(|s| s.is_on());
        #[cfg(not(feature = "seal"))]
        false
    }

    /// The plain frame of `frame`, read over `via`: itself when sealing is off, the opened
    /// frame when it is on and `frame` opens, `None` when it does not.
    pub fn open<'a>(&mut self, now: u64, frame: &'a [u8], via: Protocol) -> Option<Cow<'a, [u8]>> {
        let _ = (now, via);
        #[cfg(feature = "seal")]
        if let Some(seal) = self.seal.as_mut().filter(|s| s.is_on()) {
            return seal
                .open(Instant::from_millis(now), frame, via)
                .ok()
                .map(|inner| Cow::Owned(inner.to_vec()));
        }
        let _ = Instant::ZERO;
        Some(Cow::Borrowed(frame))
    }

    /// `frame` as it goes out over TCP: itself when sealing is off, sealed when on; `None`
    /// when it cannot be sealed (too large).
    pub fn seal<'a>(&'a mut self, frame: &'a [u8]) -> Option<&'a [u8]> {
        if !self.is_on() {
            return Some(frame);
        }
        let len = self.seal_len(frame, Protocol::Tcp)?;
        Some(self.sealed(len))
    }

    /// Seals `frame` for `via` into this state's buffer; returns the sealed length (`None`:
    /// sealing is off, or the frame cannot be sealed). [`sealed`](Self::sealed) gives it.
    pub fn seal_len(&mut self, frame: &[u8], via: Protocol) -> Option<usize> {
        #[cfg(feature = "seal")]
        if let Some(seal) = self.seal.as_mut().filter(|s| s.is_on()) {
            let len = cluster_core::seal::FrameSeal::<SENDERS, DATA>::buf_len(frame.len());
            if self.out.len() < len {
                self.out.resize(len, 0);
            }
            let out = self.out.get_mut(..len)?;
            return seal.seal(frame, via, out).ok();
        }
        let _ = (frame, via);
        None
    }

    /// The frame [`seal_len`](Self::seal_len) sealed, `len` bytes.
    #[must_use]
    pub fn sealed(&self, len: usize) -> &[u8] {
        #[cfg(feature = "seal")]
        return self.out.get(..len).unwrap_or_default();
        #[cfg(not(feature = "seal"))]
        {
            let _ = len;
            &[]
        }
    }
}

#[cfg(all(test, feature = "seal"))]
mod tests {
    use super::*;
    use cluster_core::{Key, KeyRing};

    fn ring(byte: u8) -> KeyRing {
        KeyRing::new(Key::new(1, [byte; cluster_core::seal::KEY_LEN]))
    }

    #[test]
    fn a_sealed_frame_opens_with_the_key_only_and_once() {
        use cluster_core::wire::{FilterPlacement, List, Message, MessageKind, Str};
        let protocols = ["t", "c"];
        let frame = Message {
            kind: Some(MessageKind::Heartbeat),
            channel: Some(0),
            sid: Some(Str::from("Zbdc22e7")),
            hid: Some(Str::from("02:fc:00:00:00:01")),
            protocols: Some(List::from_items(&protocols)),
            ..Message::default()
        }
        .encode_to_vec(FilterPlacement::Last)
        .unwrap();
        let mut sender = SideSeal::default();
        sender.set_keys(Some(ring(7)), 1);
        let sealed = sender.seal(&frame).unwrap().to_vec();
        assert_ne!(sealed, frame);
        let mut keyed = SideSeal::default();
        keyed.set_keys(Some(ring(7)), 2);
        assert_eq!(
            keyed.open(0, &sealed, Protocol::Tcp).as_deref(),
            Some(&frame[..])
        );
        assert_eq!(keyed.open(0, &sealed, Protocol::Tcp), None, "a replay");
        let mut other = SideSeal::default();
        other.set_keys(Some(ring(8)), 3);
        assert_eq!(other.open(0, &sealed, Protocol::Tcp), None, "another key");
        assert_eq!(keyed.open(0, &frame, Protocol::Tcp), None, "not sealed");
        let mut off = SideSeal::default();
        assert_eq!(
            off.open(0, &sealed, Protocol::Tcp).as_deref(),
            Some(&sealed[..])
        );
        assert_eq!(off.seal(&frame), Some(&frame[..]));
    }
}
