//! The node's one source of randomness, seeded by the caller.
//!
//! SplitMix64 expands the seed into the state of a xoshiro256** generator. Both are tiny,
//! well studied and need no dependency; the core never draws entropy itself, so a run is
//! reproduced exactly from its seed.

/// A seeded pseudo-random generator (xoshiro256**).
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: [u64; 4],
}

impl Rng {
    /// A generator of an empty node, seeded when it starts (all zero bits).
    pub(crate) const fn unseeded() -> Self {
        Self { state: [0; 4] }
    }

    /// A generator whose whole sequence is determined by `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        // SplitMix64's first four outputs, from one copy of the step instead of four (smaller
        // on a microcontroller; the same values), and without zeroing an array first (which
        // linked compiler-builtins' `__aeabi_memclr8` on a Cortex-M).
        let mut split = seed;
        Self {
            state: core::array::from_fn(|_| {
                split = split.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = split;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            }),
        }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = &mut self.state;
        let result = s1.wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = *s1 << 17;
        *s2 ^= *s0;
        *s3 ^= *s1;
        *s1 ^= *s2;
        *s0 ^= *s3;
        *s2 ^= t;
        *s3 = s3.rotate_left(45);
        result
    }

    /// A uniform integer in `0..bound` without modulo bias (Lemire's method); 0 when
    /// `bound` is 0.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(bound);
            // The low half decides rejection; the high half is the value.
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// A uniform integer in `low..=high` (`low` when `high < low`).
    pub(crate) fn inclusive(&mut self, low: u64, high: u64) -> u64 {
        match high.checked_sub(low).and_then(|span| span.checked_add(1)) {
            Some(span) => low.saturating_add(self.below(span)),
            None if high >= low => self.next_u64(),
            None => low,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeding_is_splitmix64() {
        // SplitMix64's published first outputs for the seed 0.
        assert_eq!(
            Rng::new(0).state,
            [
                0xE220_A839_7B1D_CDAF,
                0x6E78_9E6A_A1B9_65F4,
                0x06C4_5D18_8009_454F,
                0xF88B_B8A8_724C_81EC,
            ]
        );
        // The loop gives what four calls of the step gave.
        for seed in [1, 42, u64::MAX, 0x5eed_c105] {
            let mut split = seed;
            let mut step = || {
                split = split.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = split;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            };
            assert_eq!(Rng::new(seed).state, [step(), step(), step(), step()]);
        }
    }

    #[test]
    fn same_seed_gives_the_same_sequence() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn bounded_draws_stay_in_range_and_cover_it() {
        let mut rng = Rng::new(7);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let v = rng.below(10) as usize;
            seen[v] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800 && n < 1200), "{seen:?}");
        for _ in 0..1000 {
            let v = rng.inclusive(110_000, 140_000);
            assert!((110_000..=140_000).contains(&v));
        }
        assert_eq!(rng.inclusive(5, 5), 5);
        assert_eq!(rng.inclusive(6, 5), 6);
        let _ = rng.inclusive(0, u64::MAX);
        assert_eq!(rng.below(0), 0);
    }
}
