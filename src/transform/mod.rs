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
//! - [`overlap`]: people shared by every pair of accounts.
//!
//! Everything is expressed as lazy queries; `sql/` states the same logic in SQL.

mod audience;
mod identities;

pub use audience::{audience, overlap, ALL_ACCOUNTS};
pub use identities::{identities, member_identities, people, person_id};

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
}

/// Derives `people`, `audience` and `overlap` from `identities`.
pub fn derive(accounts: &[AccountRef], identities: DataFrame) -> PolarsResult<Derived> {
    let people = people(identities.clone().lazy()).collect()?;
    let audience = audience(accounts, identities.clone().lazy(), people.clone().lazy())?;
    let overlap = overlap(accounts, identities.clone().lazy())?;
    Ok(Derived {
        identities,
        people,
        audience,
        overlap,
    })
}

/// The timestamp type of every table: UTC microseconds (SPEC §4).
pub fn timestamp_type() -> DataType {
    DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
}

#[cfg(test)]
mod tests;
