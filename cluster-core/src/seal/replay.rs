//! Replay protection: for each sender, the highest frame counter seen and a window of the
//! [`WINDOW`] counters below it.
//!
//! A sender is its 16-byte salt, drawn anew at every start, so a restarted node is a new
//! sender and its counter starts again. An entry is only made or moved after a frame
//! authenticated: forged frames can neither fill the table nor move a window.

/// Counters below the highest one seen that may still arrive late (frames over TCP and over
/// multicast are not ordered with each other).
pub(crate) const WINDOW: u64 = 128;

/// A sender's salt.
pub(crate) type Salt = [u8; 16];

/// Why a counter was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// This counter was accepted before.
    Seen,
    /// This counter is older than the window: it cannot be told from a replay.
    TooOld,
}

#[derive(Debug, Clone)]
struct Sender {
    salt: u128,
    /// The highest counter accepted.
    top: u64,
    /// Bit `i`: counter `top - i` was accepted.
    seen: u128,
}

/// The senders a node remembers, at most `N`, from the one heard from least recently (an
/// accepted frame) to the most recent: the order is the table's only clock, so an entry is
/// 40 bytes where `u128` is 8-aligned, as on Cortex-M (it was 48 with the time of its last
/// frame, and sorted by salt; 48 either way where `u128` is 16-aligned, as on x86-64).
///
/// When the table is full, a new sender takes the place of the one heard from least
/// recently. Frames of a sender forgotten that way could be replayed to this node once more;
/// sizing the table to the registry (as the node does) keeps that to clusters with more
/// senders than services the node can know.
#[derive(Debug)]
pub(crate) struct ReplayTable<const N: usize> {
    senders: heapless::Vec<Sender, N>,
}

impl<const N: usize> ReplayTable<N> {
    pub(crate) const fn new() -> Self {
        Self {
            senders: heapless::Vec::new(),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.senders.clear();
    }

    fn search(&self, salt: u128) -> Option<usize> {
        self.senders.iter().position(|s| s.salt == salt)
    }

    /// Whether `counter` from `salt` would be accepted; changes nothing.
    pub(crate) fn check(&self, salt: &Salt, counter: u64) -> Result<(), Replay> {
        let Some(sender) = self
            .search(u128::from_be_bytes(*salt))
            .and_then(|index| self.senders.get(index))
        else {
            return Ok(());
        };
        if counter > sender.top {
            return Ok(());
        }
        let behind = sender.top - counter;
        if behind >= WINDOW {
            return Err(Replay::TooOld);
        }
        if sender.seen & (1u128 << behind) != 0 {
            return Err(Replay::Seen);
        }
        Ok(())
    }

    /// Records `counter` from `salt` (after [`check`](Self::check) and authentication), and
    /// makes `salt` the sender heard from most recently. Returns true when a sender was
    /// forgotten to make room.
    pub(crate) fn accept(&mut self, salt: &Salt, counter: u64) -> bool {
        let key = u128::from_be_bytes(*salt);
        let mut evicted = false;
        let sender = match self.search(key) {
            Some(index) => {
                let mut sender = self.senders.remove(index);
                if counter > sender.top {
                    let ahead = counter - sender.top;
                    sender.seen = if ahead >= WINDOW {
                        1
                    } else {
                        (sender.seen << ahead) | 1
                    };
                    sender.top = counter;
                } else {
                    let behind = sender.top - counter;
                    if behind < WINDOW {
                        sender.seen |= 1u128 << behind;
                    }
                }
                sender
            }
            None => {
                if self.senders.is_full() && !self.senders.is_empty() {
                    self.senders.remove(0);
                    evicted = true;
                }
                Sender {
                    salt: key,
                    top: counter,
                    seen: 1,
                }
            }
        };
        // Cannot fail: there is room now.
        let _ = self.senders.push(sender);
        evicted
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.senders.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Salt = [1; 16];
    const B: Salt = [2; 16];
    const C: Salt = [3; 16];

    #[test]
    fn each_counter_is_accepted_once_and_late_ones_within_the_window() {
        let mut table = ReplayTable::<4>::new();
        for counter in [5, 7, 6, 200] {
            assert_eq!(table.check(&A, counter), Ok(()));
            table.accept(&A, counter);
            assert_eq!(table.check(&A, counter), Err(Replay::Seen));
        }
        // 199 was never seen and is within the window; 200 - 128 is not.
        assert_eq!(table.check(&A, 199), Ok(()));
        assert_eq!(table.check(&A, 200 - WINDOW), Err(Replay::TooOld));
        assert_eq!(table.check(&A, 7), Err(Replay::TooOld));
        // Other senders have their own counters.
        assert_eq!(table.check(&B, 5), Ok(()));
    }

    #[test]
    fn a_jump_past_the_window_forgets_the_old_bits() {
        let mut table = ReplayTable::<2>::new();
        table.accept(&A, 1);
        table.accept(&A, 1 + WINDOW + 10);
        assert_eq!(table.check(&A, 1 + WINDOW + 10), Err(Replay::Seen));
        assert_eq!(table.check(&A, 20), Ok(()));
    }

    #[test]
    fn a_full_table_forgets_the_least_recent_sender() {
        let mut table = ReplayTable::<2>::new();
        assert!(!table.accept(&A, 1));
        assert!(!table.accept(&B, 1));
        assert!(!table.accept(&A, 2));
        assert!(table.accept(&C, 1));
        assert_eq!(table.len(), 2);
        assert_eq!(table.check(&B, 1), Ok(()), "B was forgotten");
        assert_eq!(table.check(&A, 2), Err(Replay::Seen));
        assert_eq!(table.check(&C, 1), Err(Replay::Seen));
    }
}
