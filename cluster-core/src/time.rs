//! Time as the core sees it: milliseconds passed in by the caller.

use core::time::Duration;

/// A point in time: milliseconds since an arbitrary epoch chosen by the caller.
///
/// The core never reads a clock; every input carries `now`. A `u64` of milliseconds does not
/// wrap for 584 million years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Instant(u64);

impl Instant {
    /// The epoch.
    pub const ZERO: Self = Self(0);

    /// The instant `ms` milliseconds after the epoch.
    #[must_use]
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch.
    #[must_use]
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + duration`, rounded up to whole milliseconds, or `None` on overflow.
    #[must_use]
    pub fn checked_add(self, duration: Duration) -> Option<Self> {
        self.0.checked_add(millis_ceil(duration)).map(Self)
    }

    /// `self + ms`, saturating.
    #[must_use]
    // Out of line on microcontrollers: a 64-bit saturating add is about 14 bytes of Thumb-2
    // at every call site. Inlined on hosts.
    #[cfg_attr(target_os = "none", inline(never))]
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub const fn saturating_add_millis(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// `self - ms`, saturating at the epoch.
    #[must_use]
    pub const fn saturating_sub_millis(self, ms: u64) -> Self {
        Self(self.0.saturating_sub(ms))
    }

    /// Milliseconds from `earlier` to `self`, or 0 when `earlier` is later.
    #[must_use]
    pub const fn saturating_millis_since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The time from `earlier` to `self`, or zero when `earlier` is later.
    #[must_use]
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.saturating_millis_since(earlier))
    }
}

/// A duration in whole milliseconds, rounded up so that no timer fires early.
#[must_use]
pub(crate) fn millis_ceil(duration: Duration) -> u64 {
    // In 64 bits, saturating: the same value as `as_millis` (128 bits) rounded up and clamped
    // to `u64::MAX`, without 128-bit arithmetic.
    let nanos = duration.subsec_nanos();
    let part = u64::from(nanos.div_ceil(1_000_000));
    duration.as_secs().saturating_mul(1000).saturating_add(part)
}

/// Whole seconds of a millisecond count, rounded down, as the reference counts ages and the
/// discovery rate limit (spec 5.7 `last_seen`, 5.5).
#[must_use]
pub(crate) const fn whole_secs(ms: u64) -> u64 {
    ms / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up_to_the_next_millisecond() {
        assert_eq!(millis_ceil(Duration::from_micros(1)), 1);
        assert_eq!(millis_ceil(Duration::from_millis(5)), 5);
        assert_eq!(millis_ceil(Duration::from_micros(5_001)), 6);
        assert_eq!(millis_ceil(Duration::MAX), u64::MAX);
    }

    proptest::proptest! {
        #[test]
        fn milliseconds_are_the_128_bit_count_rounded_up_and_clamped(
            secs in proptest::prop_oneof![
                0..=u64::MAX,
                0..=20_000_000_000_000_000u64,
                18_446_744_073_709_551u64..=18_446_744_073_709_552u64,
            ],
            nanos in proptest::prop_oneof![0..1_000_000_000u32, 0..3u32, 999_999_998..1_000_000_000u32],
        ) {
            let duration = Duration::new(secs, nanos);
            let ms = duration.as_millis() + u128::from(!nanos.is_multiple_of(1_000_000));
            let expected = u64::try_from(ms).unwrap_or(u64::MAX);
            proptest::prop_assert_eq!(millis_ceil(duration), expected);
        }
    }

    #[test]
    fn instants_saturate_instead_of_wrapping() {
        let t = Instant::from_millis(10);
        assert_eq!(t.saturating_millis_since(Instant::from_millis(20)), 0);
        assert_eq!(t.saturating_sub_millis(20), Instant::ZERO);
        assert_eq!(
            Instant::from_millis(u64::MAX).checked_add(Duration::from_millis(1)),
            None
        );
    }

    #[test]
    fn whole_seconds_round_down() {
        assert_eq!(whole_secs(999), 0);
        assert_eq!(whole_secs(1000), 1);
        assert_eq!(whole_secs(600_999), 600);
    }
}
