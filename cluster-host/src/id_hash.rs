//! [`IdHash`]: the hash of the engine's maps keyed by ids this node made itself (its own
//! queries' ids). Those keys are short and never chosen by a peer, so the maps do not need
//! the flooding resistance of the standard library's keyed SipHash, whose cost showed in the
//! query round trip's profile (four hashes of the id per query); FNV-1a suffices.

use std::hash::{BuildHasherDefault, Hasher};

/// A [`BuildHasher`](std::hash::BuildHasher) of [`FnvHasher`]s, for `HashMap`s whose keys this
/// node made itself.
pub(crate) type IdHash = BuildHasherDefault<FnvHasher>;

/// 64-bit FNV-1a.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FnvHasher(u64);

impl Default for FnvHasher {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for FnvHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// A length prefix (every slice, `str` and id key writes one) in one step, not eight:
    /// byte strings still hash as FNV-1a.
    fn write_usize(&mut self, n: usize) {
        self.0 ^= n as u64;
        self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::hash::BuildHasher;

    #[test]
    fn the_published_fnv_1a_vectors_and_a_map_keyed_by_ids() {
        let hash = |bytes: &[u8]| {
            let mut hasher = FnvHasher::default();
            hasher.write(bytes);
            hasher.finish()
        };
        assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash(b"foobar"), 0x8594_4171_f739_67e8);
        assert_ne!(
            IdHash::default().hash_one("q1"),
            IdHash::default().hash_one("q2")
        );
        let mut map: HashMap<String, u32, IdHash> = HashMap::default();
        for n in 0..100 {
            map.insert(format!("id{n}"), n);
        }
        assert!((0..100).all(|n| map.get(&format!("id{n}")) == Some(&n)));
    }
}
