//! Late ticks: expiry waits for the frames that queued up while the node was not run.
//!
//! A driver runs the node's timers when their deadline passes and reads its sockets in turn.
//! When the process was not run for a while (stopped, starved of CPU, a host under heavy
//! load), the deadline has long passed when it runs again, and the heartbeats its peers sent
//! meanwhile wait unread in the socket buffers. Expiring services at that moment would drop
//! healthy peers whose frames are already there: the drivers here run timers at the top of a
//! round, before reading, and a firmware loop may do the same.
//!
//! So when a tick comes more than [`LATE_TICK_MS`] after the deadline the node asked for,
//! expiry is held back for [`EXPIRY_HOLD_MS`]: the driver reads the backlog first, and the
//! services that are still silent after it expire then. A hold is granted at most once per
//! `ttl`, so a driver whose ticks are always late (a coarse main loop) still expires
//! services, at most one hold later. Counted in `expiry_holds`. Part of the remedies of the
//! feature `loss-recovery`; without it a late tick expires at once, as the reference does.

use super::Core;
use super::hold::LOSS_RECOVERY;
use crate::policy::Policy;
use crate::stats::bump;
use crate::time::Instant;

/// A tick this many milliseconds after its deadline means the node was not run meanwhile.
pub(crate) const LATE_TICK_MS: u64 = 100;

/// How long expiry waits after a late tick, for the driver to read what queued up.
pub(crate) const EXPIRY_HOLD_MS: u64 = 100;

/// The state of the hold: empty (zero bytes) without the feature `loss-recovery`, so the
/// firmware's node does not grow for it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ExpiryHold {
    /// When a hold was last granted, in milliseconds; 0 when never (a tick can be late only
    /// after its deadline plus [`LATE_TICK_MS`], so never at 0).
    #[cfg(feature = "loss-recovery")]
    granted_at_ms: u64,
    /// Set while the timers of a held tick run.
    #[cfg(feature = "loss-recovery")]
    on: bool,
}

impl ExpiryHold {
    /// No hold, in `const` contexts.
    pub(super) const NONE: Self = Self {
        #[cfg(feature = "loss-recovery")]
        granted_at_ms: 0,
        #[cfg(feature = "loss-recovery")]
        on: false,
    };

    /// Whether expiry waits now.
    pub(super) fn is_on(&self) -> bool {
        #[cfg(feature = "loss-recovery")]
        return self.on;
        #[cfg(not(feature = "loss-recovery"))]
        false
    }

    /// Grants a hold at `now` unless one was granted less than `ttl_ms` ago; true when
    /// granted.
    #[cfg_attr(not(feature = "loss-recovery"), allow(unused_variables))]
    fn grant(&mut self, now: Instant, ttl_ms: u64) -> bool {
        #[cfg(feature = "loss-recovery")]
        {
            let now_ms = now.as_millis();
            if self.granted_at_ms != 0 && now_ms.saturating_sub(self.granted_at_ms) < ttl_ms {
                return false;
            }
            self.granted_at_ms = now_ms;
            self.on = true;
            true
        }
        #[cfg(not(feature = "loss-recovery"))]
        false
    }

    /// The held tick's timers ran.
    fn end(&mut self) {
        #[cfg(feature = "loss-recovery")]
        {
            self.on = false;
        }
    }
}

impl<P: Policy, const SERVICES: usize, const DATA: usize, const EVENTS: usize>
    Core<P, SERVICES, DATA, EVENTS>
{
    /// At the start of a tick: holds expiry back for the timers of this tick when it comes
    /// late and no hold was granted within the last `ttl`. True when held.
    pub(super) fn hold_expiry_if_late(&mut self, now: Instant) -> bool {
        if !LOSS_RECOVERY {
            return false;
        }
        let Some(due) = self.next_deadline() else {
            return false;
        };
        if now.saturating_millis_since(due) <= LATE_TICK_MS {
            return false;
        }
        let ttl = self.ttl().ms;
        if !self.expiry_hold.grant(now, ttl) {
            return false;
        }
        bump(&mut self.stats.expiry_holds);
        true
    }

    /// At the end of a held tick: expiry is checked again once the hold is over.
    pub(super) fn end_expiry_hold(&mut self, now: Instant) {
        self.expiry_hold.end();
        let check = now.saturating_add_millis(EXPIRY_HOLD_MS);
        if self.expiry_check_at.is_none_or(|at| at > check) {
            self.expiry_check_at = Some(check);
        }
    }
}
