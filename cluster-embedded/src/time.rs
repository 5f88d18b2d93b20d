//! Time: smoltcp's [`Instant`](smoltcp::time::Instant) (microseconds, signed) to the core's
//! [`Instant`](cluster_core::Instant) (milliseconds, unsigned) and back.

use cluster_core::Instant;
use smoltcp::time::Instant as NetInstant;

/// The core's instant for a smoltcp instant: whole milliseconds, rounded down; instants
/// before smoltcp's epoch count as the epoch.
#[must_use]
pub fn core_instant(now: NetInstant) -> Instant {
    // Divided unsigned: a signed 64-bit division would link its own helper on a Cortex-M.
    Instant::from_millis(u64::try_from(now.total_micros()).map_or(0, |us| us / 1000))
}

/// The smoltcp instant for a core deadline (saturating far in the future).
#[must_use]
pub fn net_instant(at: Instant) -> NetInstant {
    NetInstant::from_millis(i64::try_from(at.as_millis()).unwrap_or(i64::MAX / 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_convert_in_whole_milliseconds() {
        assert_eq!(
            core_instant(NetInstant::from_micros(1_999)),
            Instant::from_millis(1)
        );
        assert_eq!(core_instant(NetInstant::from_millis(-5)), Instant::ZERO);
        assert_eq!(core_instant(NetInstant::from_micros(-999)), Instant::ZERO);
        assert_eq!(
            core_instant(NetInstant::from_micros(i64::MAX)),
            Instant::from_millis(i64::MAX as u64 / 1000)
        );
        assert_eq!(
            net_instant(Instant::from_millis(1_500)),
            NetInstant::from_millis(1_500)
        );
        let deadline = Instant::from_millis(2_000);
        assert!(
            core_instant(net_instant(deadline)) >= deadline,
            "a deadline is never early"
        );
    }

    #[test]
    fn far_deadlines_saturate() {
        let far = net_instant(Instant::from_millis(u64::MAX));
        assert!(far > NetInstant::from_secs(1_i64 << 40));
    }
}
