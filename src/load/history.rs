//! The complete snapshots before a date: what `changes` compares against.
//!
//! "The previous snapshot" of SPEC §5 is the latest earlier date that has a
//! manifest — a date whose run stopped half-way (exit 3) has no manifest and is
//! skipped, exactly as a warehouse reader that follows the commit protocol
//! skips it.

use chrono::NaiveDate;

use super::{commit, LoadError, Manifest, Store};

/// The path of `table`'s file in a manifest of a date-partitioned table.
pub fn table_file<'m>(manifest: &'m Manifest, table: &str) -> Result<&'m str, LoadError> {
    manifest
        .files
        .iter()
        .find(|f| f.table == table)
        .map(|f| f.path.as_str())
        .ok_or_else(|| LoadError::MissingTable {
            date: manifest.snapshot_date,
            table: table.to_string(),
        })
}

/// The manifest of the latest complete snapshot before `date`, or `None`
/// when `date` is the first.
pub async fn previous_manifest(
    store: &Store,
    date: NaiveDate,
) -> Result<Option<Manifest>, LoadError> {
    let dates = commit::complete_dates(store).await?;
    for previous in dates.into_iter().rev().filter(|d| *d < date) {
        // A manifest can disappear between the listing and this read, when a
        // re-run of that date starts: that date is no longer complete.
        if let Some(manifest) = commit::read_manifest(store, previous).await? {
            return Ok(Some(manifest));
        }
    }
    Ok(None)
}
