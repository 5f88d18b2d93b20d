//! Payloads kept past their sends: a retransmitted query's ([`retry`](super::retry)) and the
//! remembered answers ([`answered`](super::answered)). They share the payload pool with the
//! sends, which come first: when the pool is full, a new send takes the place of the oldest
//! remembered answer, then of the query that retransmits next (counted in
//! `holds_reclaimed`).

use super::Core;
use crate::policy::Policy;
use crate::stats::bump;

/// Whether the remedies for heavy loss are built in (feature `loss-recovery`). Each remedy's
/// entry points return at once without it, and the optimiser removes the rest: a `cfg!`
/// constant instead of `#[cfg]` items, so that both builds type-check the same code.
pub(super) const LOSS_RECOVERY: bool = cfg!(feature = "loss-recovery");

impl<P: Policy, const SERVICES: usize, const DATA: usize, const EVENTS: usize>
    Core<P, SERVICES, DATA, EVENTS>
{
    /// Frees a slot of the payload pool, when every slot is taken, by giving up kept
    /// payloads. Does nothing when a slot is free or no payload is kept.
    pub(super) fn make_payload_room(&mut self) {
        while self.payloads.free() == 0 {
            if self.release_answer_hold() || self.release_retry_hold() {
                bump(&mut self.stats.holds_reclaimed);
            } else {
                return;
            }
        }
    }
}
