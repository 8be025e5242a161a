//! The transform: pure polars functions, DataFrame in → DataFrame out. No I/O.
//!
//! From the raw per-account tables (followers, …) it derives the tables of
//! SPEC §4 whose numbers SPEC §5 defines:
//!
//! - [`identities`]: one row per (account, member), the only input of the dedupe;
//! - [`people`]: one row per person, keyed by UnionID, or `account_id/member_id`
//!   for members whose UnionID is unknown (they can never be matched, so each is
//!   a person of their own — counted, never dropped);
//! - [`audience`]: members, resolved, exclusive people per account, plus the `*`
//!   row with the deduplicated totals;
//! - [`overlap`]: people shared by every pair of accounts;
//! - [`changes`]: members who joined or left each account since the previous
//!   complete snapshot, and the `joined`/`left` counts of `audience`;
//! - [`carried_people`]: today's `people` from the previous snapshot's and
//!   the day's `changes`, when those are all that differ;
//! - [`upset`]: the size of every exclusive intersection of accounts (the
//!   report's UpSet plot; not a stored table).
//!
//! Everything is expressed as lazy queries; `sql/` states the same logic in SQL.

mod audience;
mod carried;
mod changes;
mod identities;
pub mod privacy;
mod upset;

pub use audience::{audience, overlap, sum_audience, sum_overlap, ALL_ACCOUNTS};
pub use carried::{carried_people, sorted_by_person};
pub use changes::{
    change_counts, changes, changes_of, count_changes, fill_changes, no_changes, people_changes,
    JOINED, LEFT,
};
pub use identities::{identities, member_identities, people, person_id, unique_member_identities};
pub use upset::{upset, ACCOUNT_SEPARATOR};

use polars::prelude::*;

/// An account as the transform sees it: its id and kind. Accounts with no
/// members still get an `audience` row and `overlap` pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRef {
    pub account_id: String,
    pub account_kind: String,
}

/// The derived tables of one snapshot date.
#[derive(Debug, Clone)]
pub struct Derived {
    pub identities: DataFrame,
    pub people: DataFrame,
    pub audience: DataFrame,
    pub overlap: DataFrame,
    /// Empty on a first snapshot.
    pub changes: DataFrame,
}

/// Derives the tables of a first snapshot (no earlier complete snapshot:
/// `joined`/`left` are null, `changes` is empty).
pub fn derive(accounts: &[AccountRef], identities: DataFrame) -> PolarsResult<Derived> {
    derive_since(accounts, identities, None)
}

/// Derives `people`, `audience`, `overlap` and `changes` from `identities`
/// and the `identities` of the previous complete snapshot, if there is one.
pub fn derive_since(
    accounts: &[AccountRef],
    identities: DataFrame,
    previous: Option<DataFrame>,
) -> PolarsResult<Derived> {
    let people = people(identities.clone().lazy()).collect()?;
    let mut audience = audience(accounts, &identities, &people)?;
    let overlap = overlap(accounts, &people)?;
    let changes = match previous {
        None => no_changes(),
        Some(previous) => {
            let changes = changes(previous.clone().lazy(), identities.clone().lazy())?.collect()?;
            audience = count_changes(
                audience,
                previous.lazy(),
                people.clone().lazy(),
                changes.clone().lazy(),
            )?;
            changes
        }
    };
    Ok(Derived {
        identities,
        people,
        audience,
        overlap,
        changes,
    })
}

/// The timestamp type of every table: UTC microseconds (SPEC §4).
pub fn timestamp_type() -> DataType {
    DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_changes;
