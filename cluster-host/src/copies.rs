//! [`Copies`]: tells apart the copies of one multicast datagram that arrive over several
//! paths (IPv4 and IPv6, or two interfaces on one link), so that the node gets it once.
//!
//! A path is the sender's address and, where the adapter knows it, the interface the
//! datagram arrived on. A sender on several links sends the same bytes on each, from a
//! different address on each; a sender on one link that two of our interfaces share
//! reaches us once per interface, from one address. So a datagram is a copy when the same
//! bytes came, within [`WINDOW_MS`], over another path that has not yet been matched with
//! that earlier arrival; the same bytes again over the same path are a new datagram (a
//! repeat the sender meant). Each arrival is matched with at most one earlier datagram per
//! path, so N sends of the same bytes reach the node N times however many paths carry
//! them. Memory is bounded: at most [`CAPACITY`] recent datagrams are remembered (the
//! oldest forgotten first), and each remembers at most [`PATHS`] paths.

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;

/// How long after a datagram its copies are recognised, in milliseconds.
pub const WINDOW_MS: u64 = 1000;
/// Datagrams remembered at most.
pub const CAPACITY: usize = 256;
/// Paths remembered per datagram at most.
pub const PATHS: usize = 8;

#[derive(Debug)]
struct Seen {
    hash: u64,
    len: usize,
    at: u64,
    from: Vec<Path>,
}

/// Where a datagram came from: the sender's address and the arriving interface's index.
pub type Path = (IpAddr, Option<u32>);

/// Recent datagrams and the addresses each came from (see the module docs).
#[derive(Debug, Default)]
pub struct Copies {
    seen: VecDeque<Seen>,
    /// Random keys: nobody can make two different datagrams look the same.
    keys: RandomState,
}

impl Copies {
    /// Nothing remembered yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `bytes` over `from` at `now` (ms) is a copy of a datagram already let
    /// through; if not, it is remembered.
    pub fn is_copy(&mut self, now: u64, from: Path, bytes: &[u8]) -> bool {
        let from = (from.0.to_canonical(), from.1);
        while self
            .seen
            .front()
            .is_some_and(|s| now.saturating_sub(s.at) > WINDOW_MS)
        {
            self.seen.pop_front();
        }
        let hash = self.keys.hash_one(bytes);
        let earlier = self
            .seen
            .iter_mut()
            .find(|s| s.hash == hash && s.len == bytes.len() && !s.from.contains(&from));
        if let Some(earlier) = earlier {
            if earlier.from.len() < PATHS {
                earlier.from.push(from);
            }
            return true;
        }
        if self.seen.len() == CAPACITY {
            self.seen.pop_front();
        }
        self.seen.push_back(Seen {
            hash,
            len: bytes.len(),
            at: now,
            from: vec![from],
        });
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Path {
        (text.parse().unwrap(), None)
    }

    #[test]
    fn a_datagram_over_two_families_counts_once_and_repeats_count_each_time() {
        let mut copies = Copies::new();
        let (v4, v6) = (ip("10.0.0.2"), ip("fe80::2"));
        assert!(!copies.is_copy(0, v4, b"beat"));
        assert!(copies.is_copy(1, v6, b"beat"));
        // The sender repeats it: a new datagram, and its copy again.
        assert!(!copies.is_copy(200, v4, b"beat"));
        assert!(copies.is_copy(201, v6, b"beat"));
        // Copies arriving first over IPv6 pair up the same way.
        assert!(!copies.is_copy(300, v6, b"event"));
        assert!(!copies.is_copy(301, v6, b"event"));
        assert!(copies.is_copy(302, v4, b"event"));
        assert!(copies.is_copy(303, v4, b"event"));
        assert!(!copies.is_copy(304, v4, b"event"));
        // Other bytes, or too late, are not copies.
        assert!(!copies.is_copy(305, v6, b"other"));
        assert!(!copies.is_copy(305 + WINDOW_MS + 1, v4, b"other"));
    }

    #[test]
    fn one_sender_heard_on_two_of_our_interfaces_counts_once() {
        let mut copies = Copies::new();
        let on = |index| ("10.0.0.2".parse().unwrap(), Some(index));
        assert!(!copies.is_copy(0, on(2), b"beat"));
        assert!(copies.is_copy(0, on(3), b"beat"));
        assert!(!copies.is_copy(5, on(3), b"beat"));
        assert!(copies.is_copy(5, on(2), b"beat"));
    }

    #[test]
    fn memory_stays_bounded() {
        let mut copies = Copies::new();
        for i in 0..(CAPACITY * 4) as u64 {
            let _ = copies.is_copy(i, ip("10.0.0.2"), &i.to_le_bytes());
        }
        assert_eq!(copies.seen.len(), CAPACITY);
    }
}
