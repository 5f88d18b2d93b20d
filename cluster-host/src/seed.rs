//! The node's seed, from the OS (STYLE 3: adapters seed from the OS).

/// 64 random bits from the operating system's generator. Falls back to the hash of the time
/// and process id, seeded by std's per-process random keys, if the OS generator fails.
#[must_use]
pub fn os_seed() -> u64 {
    match getrandom::u64() {
        Ok(seed) => seed,
        Err(_) => {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
                h.write_u128(t.as_nanos());
            }
            h.finish()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeds_differ() {
        assert_ne!(super::os_seed(), super::os_seed());
    }
}
