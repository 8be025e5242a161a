//! The identity cache of `refresh = "new"`: the OpenIDs of the previous
//! complete snapshot. An OpenID→UnionID pair never changes, so a follower
//! already known needs no user/info call; their row is carried over.
//!
//! The index keeps the previous OpenIDs once, as a polars string column, and
//! maps a 64-bit hash of each to its row; a hash shared by two OpenIDs goes to
//! a small exact side table, so lookups are exact. A bitmap marks the rows the
//! current list contains: those rows are carried over, in order.

use std::collections::HashMap;

use polars::prelude::*;

use crate::transform::privacy::Pseudonymizer;

use super::openid_hash::{OpenidHasher, PrehashedState};

/// The previous snapshot's OpenIDs of one account, and which of them the
/// current crawl has listed.
pub struct KnownFollowers {
    openids: StringChunked,
    by_hash: HashMap<u64, u32, PrehashedState>,
    collisions: HashMap<String, u32>,
    hasher: OpenidHasher,
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
    /// Indexes the `openid` column of the previous snapshot's followers.
    pub fn new(openids: &StringChunked, pseudonymizer: Option<Pseudonymizer>) -> Self {
        let openids = openids.rechunk().into_owned();
        let hasher = OpenidHasher::random();
        let mut by_hash =
            HashMap::with_capacity_and_hasher(openids.len(), PrehashedState::default());
        let mut collisions = HashMap::new();
        for (row, openid) in openids.iter().enumerate() {
            let Some(openid) = openid else { continue };
            let row = row as u32;
            let hash = hasher.hash64(openid);
            if let Some(&first) = by_hash.get(&hash) {
                if openids.get(first as usize) != Some(openid) {
                    collisions.entry(openid.to_string()).or_insert(row);
                }
            } else {
                by_hash.insert(hash, row);
            }
        }
        let words = openids.len().div_ceil(64);
        KnownFollowers {
            openids,
            by_hash,
            collisions,
            hasher,
            pseudonymizer,
            listed: vec![0; words],
            listed_count: 0,
        }
    }

    /// Followers in the previous snapshot.
    pub fn len(&self) -> usize {
        self.openids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.openids.is_empty()
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
        let hash = self.hasher.hash64(openid);
        match self.by_hash.get(&hash) {
            Some(&row) if self.openids.get(row as usize) == Some(openid) => Some(row),
            Some(_) => self.collisions.get(openid).copied(),
            None => None,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_previous_rows_and_marks_each_once() {
        let openids: StringChunked = ["oA", "oB", "oC"].iter().copied().collect();
        let mut known = KnownFollowers::new(&openids, None);
        assert_eq!(known.row_of("oB"), Some(1));
        assert_eq!(known.row_of("oZ"), None);
        assert!(known.mark_listed(1));
        assert!(!known.mark_listed(1), "a second listing is a duplicate");
        let mask: Vec<Option<bool>> = known.listed_mask(0, 3).iter().collect();
        assert_eq!(mask, [Some(false), Some(true), Some(false)]);
        assert_eq!(known.listed_count(), 1);
    }
}
