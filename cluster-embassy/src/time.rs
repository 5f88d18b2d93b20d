//! Time: embassy-time's [`Instant`](embassy_time::Instant) (ticks since boot) to the core's
//! [`Instant`](cluster_core::Instant) (milliseconds) and back.

use cluster_core::Instant;
use embassy_time::Instant as EmbassyInstant;

/// The core's instant for an embassy instant: whole milliseconds since boot, rounded down.
#[must_use]
pub fn core_instant(at: EmbassyInstant) -> Instant {
    Instant::from_millis(at.as_millis())
}

/// The embassy instant for a core deadline: rounded up to the next tick, so that a timer
/// never fires before the deadline; saturating far in the future.
#[must_use]
pub fn embassy_instant(at: Instant) -> EmbassyInstant {
    EmbassyInstant::try_from_millis(at.as_millis()).unwrap_or(EmbassyInstant::MAX)
}

/// Now, on the core's clock.
pub(crate) fn now() -> Instant {
    core_instant(EmbassyInstant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_convert_in_whole_milliseconds() {
        assert_eq!(
            core_instant(EmbassyInstant::from_micros(1_999)),
            Instant::from_millis(1)
        );
        let deadline = Instant::from_millis(2_000);
        assert_eq!(
            embassy_instant(deadline),
            EmbassyInstant::from_millis(2_000)
        );
        assert!(
            core_instant(embassy_instant(deadline)) >= deadline,
            "a deadline is never early"
        );
    }

    #[test]
    fn far_deadlines_saturate() {
        assert_eq!(
            embassy_instant(Instant::from_millis(u64::MAX)),
            EmbassyInstant::MAX
        );
    }
}
