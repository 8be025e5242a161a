//! The extract: one snapshotter per account kind, each turning WeChat API
//! pages into the account's raw table (SPEC §4) as a polars DataFrame.
//!
//! Extractors call the network through [`crate::wechat`] and never write
//! anything: the pipeline hands their tables to [`crate::load`].

pub mod official_account;
pub mod progress;

pub use progress::{ExtractProgress, NoProgress};

use polars::prelude::DataFrame;

/// One account's raw table, as extracted.
#[derive(Debug, Clone)]
pub struct RawTable {
    /// The warehouse table it belongs to (`followers`, …).
    pub table: &'static str,
    /// The column holding the member id (`openid`, `external_userid`).
    pub member_col: &'static str,
    /// The column holding when the member joined.
    pub joined_col: &'static str,
    pub frame: DataFrame,
}

/// Where an account kind's raw table lives and which columns feed the
/// `identities` table: what `merge` needs to read a raw partition back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawShape {
    /// The warehouse table (`followers`, …).
    pub table: &'static str,
    /// The column holding the member id.
    pub member_col: &'static str,
    /// The column holding when the member joined.
    pub joined_col: &'static str,
}
