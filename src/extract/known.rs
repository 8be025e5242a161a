//! The identity cache of `refresh = "new"`: the OpenIDs of the previous
//! complete snapshot. An OpenID→UnionID pair never changes, so a follower
//! already known needs no user/info call; their row is carried over.
//!
//! The index keeps no OpenIDs, only a 128-bit hash of each (xxh3, seeded per
//! process), one per row, and a hash table of row numbers placed by the first
//! half of their hash and matched on the whole of it. A lookup is exact but
//! for a 128-bit collision (odds of about n·m/2¹²⁸ over a crawl: nil), the
//! standard of the listing's own duplicate check. That is 16 bytes per
//! previous follower plus 5 per slot of the table (1.14 to 2.3 slots per
//! row, as its size is a power of two): 22 to 28 bytes, where a map from the
//! first half to the row beside the second halves took 27 to 47, and the
//! OpenIDs themselves ~60. A bitmap marks the rows the current list
//! contains: those rows are carried over, in order.

use hashbrown::HashTable;
use polars::prelude::*;

use crate::transform::privacy::Pseudonymizer;

use super::openid_hash::OpenidHasher;

/// The previous snapshot's OpenIDs of one account, and which of them the
/// current crawl has listed.
pub struct KnownFollowers {
    /// Each row's hash (0 for a row without an OpenID, which is not
    /// indexed).
    hashes: Vec<u128>,
    /// The indexed rows (the first of an OpenID listed twice), placed by
    /// the first half of their hash.
    rows: HashTable<u32>,
    hasher: OpenidHasher,
    /// Which bits of the first half place a row (all of them but in tests,
    /// which force rows to share their place).
    first_mask: u64,
    /// When ids are pseudonymized, the cache holds pseudonyms: listed
    /// OpenIDs are looked up by theirs.
    pseudonymizer: Option<Pseudonymizer>,
    listed: Vec<u64>,
    listed_count: u64,
}

impl std::fmt::Debug for KnownFollowers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownFollowers")
            .field("known", &self.len())
            .field("listed", &self.listed_count)
            .finish()
    }
}

impl KnownFollowers {
    /// An index to [`Self::add`] the `openid` column to a slice at a time
    /// (so the column is never whole in memory), with room for `capacity`.
    pub fn empty(capacity: usize, pseudonymizer: Option<Pseudonymizer>) -> Self {
        Self::with_first_mask(capacity, pseudonymizer, u64::MAX)
    }

    fn with_first_mask(
        capacity: usize,
        pseudonymizer: Option<Pseudonymizer>,
        first_mask: u64,
    ) -> Self {
        KnownFollowers {
            hashes: Vec::with_capacity(capacity),
            rows: HashTable::with_capacity(capacity),
            hasher: OpenidHasher::random(),
            first_mask,
            pseudonymizer,
            listed: Vec::with_capacity(capacity.div_ceil(64)),
            listed_count: 0,
        }
    }

    /// Indexes the next rows of the `openid` column (rows are numbered on
    /// from those added before).
    pub fn add(&mut self, openids: &StringChunked) {
        for openid in openids.iter() {
            let row = self.hashes.len() as u32;
            let Some(openid) = openid else {
                self.hashes.push(0);
                continue;
            };
            let hash = self.hasher.hash128(openid);
            self.hashes.push(hash);
            let (hashes, mask) = (&self.hashes, self.first_mask);
            let place = |&row: &u32| first_half(hashes[row as usize], mask);
            // The same OpenID again: the first row stands.
            if self
                .rows
                .find(first_half(hash, mask), |&r| hashes[r as usize] == hash)
                .is_none()
            {
                self.rows.insert_unique(first_half(hash, mask), row, place);
            }
        }
        self.listed.resize(self.hashes.len().div_ceil(64), 0);
    }

    /// Followers in the previous snapshot.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The previous row of `openid`, if it was a follower then.
    pub fn row_of(&self, openid: &str) -> Option<u32> {
        let pseudonym;
        let openid = match &self.pseudonymizer {
            Some(p) => {
                pseudonym = p.id(openid);
                pseudonym.as_str()
            }
            None => openid,
        };
        let hash = self.hasher.hash128(openid);
        let hashes = &self.hashes;
        (self.rows)
            .find(first_half(hash, self.first_mask), |&row| {
                hashes[row as usize] == hash
            })
            .copied()
    }

    /// Marks `row` as listed again; false when it already was (the OpenID
    /// appeared twice in the list).
    pub fn mark_listed(&mut self, row: u32) -> bool {
        let (word, bit) = (row as usize / 64, row % 64);
        let mask = 1u64 << bit;
        if self.listed[word] & mask != 0 {
            return false;
        }
        self.listed[word] |= mask;
        self.listed_count += 1;
        true
    }

    /// Known followers listed again so far.
    pub fn listed_count(&self) -> u64 {
        self.listed_count
    }

    /// One bool per previous row: listed again (carry the row over) or not.
    pub fn listed_mask(&self, offset: usize, len: usize) -> BooleanChunked {
        (offset..offset + len)
            .map(|row| self.listed[row / 64] & (1u64 << (row % 64)) != 0)
            .collect()
    }
}

/// Where a hash places its row in the table: its first half, masked.
fn first_half(hash: u128, mask: u64) -> u64 {
    (hash as u64) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_previous_rows_and_marks_each_once() {
        let openids: StringChunked = ["oA", "oB", "oC"].iter().copied().collect();
        let mut known = KnownFollowers::empty(openids.len(), None);
        known.add(&openids);
        assert_eq!(known.row_of("oB"), Some(1));
        assert_eq!(known.row_of("oZ"), None);
        assert!(known.mark_listed(1));
        assert!(!known.mark_listed(1), "a second listing is a duplicate");
        let mask: Vec<Option<bool>> = known.listed_mask(0, 3).iter().collect();
        assert_eq!(mask, [Some(false), Some(true), Some(false)]);
        assert_eq!(known.listed_count(), 1);
    }

    #[test]
    fn rows_sharing_the_first_half_of_their_hash_are_still_found() {
        // Two bits of first half: 4 places for 1,000 OpenIDs, so nearly
        // every row shares its place with hundreds of others.
        let openids: StringChunked = (0..1_000)
            .map(|i| (i % 97 != 0).then(|| format!("o{i}")))
            .collect();
        // Added in three slices, as a run reads the column.
        let mut known = KnownFollowers::with_first_mask(0, None, 0b11);
        for (offset, len) in [(0, 300), (300, 1), (301, 699)] {
            known.add(&openids.slice(offset, len));
        }
        for i in 0..1_000u32 {
            let expected = (i % 97 != 0).then_some(i);
            assert_eq!(known.row_of(&format!("o{i}")), expected, "o{i}");
        }
        assert_eq!(known.row_of("o1000"), None);
        assert_eq!(known.len(), 1_000);
    }

    #[test]
    fn an_openid_twice_keeps_its_first_row() {
        let openids: StringChunked = ["oA", "oB", "oA"].iter().copied().collect();
        let mut known = KnownFollowers::with_first_mask(0, None, 0b1);
        known.add(&openids);
        assert_eq!(known.row_of("oA"), Some(0));
        assert_eq!(known.row_of("oB"), Some(1));
    }
}
