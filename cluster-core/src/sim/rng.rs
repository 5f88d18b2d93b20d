//! The simulator's randomness: SplitMix64 to expand seeds, xoshiro256** to draw.
//!
//! The simulator has its own generator (the node's is crate-private and belongs to the
//! node): every random choice of a run (latency, jitter, loss, duplication, reordering, join
//! times, node seeds) comes from the run's one `u64` seed, split into independent streams so
//! that, for example, adding loss does not change the nodes' seeds.

/// One step of SplitMix64: a well-mixed 64-bit value from `x`.
#[must_use]
pub const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of independent stream `stream` of run `seed`.
#[must_use]
pub const fn derive_seed(seed: u64, stream: u64) -> u64 {
    splitmix64(seed ^ splitmix64(stream.wrapping_mul(0xA076_1D64_78BD_642F)))
}

/// The seed handed to [`Node::new`](crate::Node::new) for node `index` of run `run_seed`, in
/// its `incarnation` (0 at the first join, one more at each restart).
#[must_use]
pub const fn node_seed(run_seed: u64, index: usize, incarnation: u32) -> u64 {
    let node = derive_seed(run_seed, 0x4E4F_4445_0000_0000 | index as u64);
    derive_seed(node, incarnation as u64)
}

/// A seeded pseudo-random generator (xoshiro256**); its whole sequence follows from the seed.
#[derive(Debug, Clone)]
pub struct SimRng {
    state: [u64; 4],
}

impl SimRng {
    /// A generator seeded with `seed` (expanded with SplitMix64).
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            let v = splitmix64(x);
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            v
        };
        Self {
            state: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
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

    /// A uniform integer in `0..bound` (0 when `bound` is 0), without modulo bias.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(bound);
            #[allow(clippy::cast_possible_truncation)]
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// A uniform integer in `low..=high` (`low` when `high <= low`).
    pub fn inclusive(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        match (high - low).checked_add(1) {
            Some(span) => low + self.below(span),
            None => self.next_u64(),
        }
    }

    /// True with probability `p` (0 never draws: a loss-free link costs no randomness).
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        #[allow(clippy::cast_precision_loss)]
        let unit = (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        unit < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_streams_are_reproducible_and_distinct() {
        let mut a = SimRng::new(5);
        let mut b = SimRng::new(5);
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(derive_seed(1, 1), derive_seed(1, 2));
        assert_ne!(node_seed(1, 0, 0), node_seed(1, 1, 0));
        assert_ne!(node_seed(1, 0, 0), node_seed(1, 0, 1));
        assert_eq!(node_seed(9, 3, 2), node_seed(9, 3, 2));
    }

    #[test]
    fn draws_stay_in_range() {
        let mut rng = SimRng::new(1);
        for _ in 0..1000 {
            assert!((3..=7).contains(&rng.inclusive(3, 7)));
        }
        assert_eq!(rng.inclusive(4, 4), 4);
        assert!(!rng.chance(0.0));
        assert!(rng.chance(1.0));
        let hits = (0..10_000).filter(|_| rng.chance(0.1)).count();
        assert!((800..1200).contains(&hits), "{hits}");
    }
}
