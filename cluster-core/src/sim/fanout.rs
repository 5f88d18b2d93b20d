//! [`Fanout`]: the copies of one multicast datagram that reach their receivers at the same
//! instant, queued as one entry of the network's queue instead of one entry per receiver.

use std::net::SocketAddr;
use std::rc::Rc;
use std::vec::Vec;

use crate::Source;

/// One receiver's copy: who, which incarnation it was sent to, and the sequence number it
/// would have had as an entry of its own (so the queue keeps the order of one entry per copy).
#[derive(Debug, Clone, Copy)]
pub(super) struct Copy {
    /// The receiving endpoint.
    pub(super) to: usize,
    /// Its incarnation when the datagram was sent.
    pub(super) incarnation: u32,
    /// The copy's sequence number.
    pub(super) seq: u64,
    /// Whether the receiver is on the sender's host.
    pub(super) local: bool,
}

/// The copies of one datagram due at one instant, in sequence order; `next` is the first
/// copy not delivered yet.
#[derive(Debug)]
pub(super) struct Fanout {
    /// The sender's host.
    pub(super) from_host: usize,
    /// The datagram's source address.
    pub(super) addr: SocketAddr,
    /// The datagram.
    pub(super) bytes: Rc<[u8]>,
    copies: Vec<Copy>,
    next: usize,
}

impl Fanout {
    /// A fanout of `bytes` from `addr` on `from_host`, with its first copy.
    pub(super) fn new(from_host: usize, addr: SocketAddr, bytes: Rc<[u8]>, first: Copy) -> Self {
        Self {
            from_host,
            addr,
            bytes,
            copies: std::vec![first],
            next: 0,
        }
    }

    /// Adds a copy; its sequence number is above those already added.
    pub(super) fn add(&mut self, copy: Copy) {
        debug_assert!(self.copies.last().is_none_or(|c| c.seq < copy.seq));
        self.copies.push(copy);
    }

    /// The sequence number of the next copy to deliver.
    pub(super) fn next_seq(&self) -> Option<u64> {
        self.copies.get(self.next).map(|c| c.seq)
    }

    /// Takes the next copy to deliver.
    pub(super) fn take(&mut self) -> Option<Copy> {
        let copy = self.copies.get(self.next).copied()?;
        self.next += 1;
        Some(copy)
    }

    /// How the receiver of `copy` sees the datagram's source.
    pub(super) fn source(&self, copy: &Copy) -> Source {
        Source::multicast(self.addr, copy.local)
    }
}
