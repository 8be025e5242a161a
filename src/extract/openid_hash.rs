//! Hashes of OpenIDs for the crawl's in-memory indexes (the duplicate check
//! of a listing, the identity cache): xxh3 with a seed drawn per process, and
//! hash maps keyed by such hashes that do not hash them a second time.
//!
//! Over a million OpenIDs this is a tenth of the CPU the standard library's
//! SipHash took (two 64-bit SipHashes per OpenID, then a third for the set).

use std::hash::{BuildHasherDefault, Hasher};

use xxhash_rust::xxh3::{xxh3_128_with_seed, xxh3_64_with_seed};

/// xxh3 of OpenIDs under a random seed.
#[derive(Debug, Clone, Copy)]
pub struct OpenidHasher {
    seed: u64,
}

impl OpenidHasher {
    pub fn random() -> Self {
        OpenidHasher {
            seed: rand::random(),
        }
    }

    pub fn hash64(&self, openid: &str) -> u64 {
        xxh3_64_with_seed(openid.as_bytes(), self.seed)
    }

    pub fn hash128(&self, openid: &str) -> u128 {
        xxh3_128_with_seed(openid.as_bytes(), self.seed)
    }
}

/// The hasher of maps whose keys are already uniform hashes (`u64`, `u128`):
/// it keeps their low 64 bits.
#[derive(Debug, Default, Clone, Copy)]
pub struct Prehashed(u64);

/// `BuildHasher` for [`Prehashed`] keys.
pub type PrehashedState = BuildHasherDefault<Prehashed>;

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    /// Not used by `u64`/`u128` keys; folds other input so any key works.
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn hashes_are_seeded_and_stable_within_a_hasher() {
        let (a, b) = (OpenidHasher::random(), OpenidHasher::random());
        assert_eq!(a.hash128("oA"), a.hash128("oA"));
        assert_ne!(a.hash128("oA"), a.hash128("oB"));
        assert_ne!(a.hash64("oA"), b.hash64("oA"), "a seed per hasher");
    }

    #[test]
    fn a_prehashed_set_holds_distinct_keys() {
        let hasher = OpenidHasher::random();
        let mut set: HashSet<u128, PrehashedState> = HashSet::default();
        for i in 0..10_000 {
            assert!(set.insert(hasher.hash128(&format!("o{i}"))));
        }
        assert!(!set.insert(hasher.hash128("o42")));
        assert_eq!(set.len(), 10_000);
    }
}
