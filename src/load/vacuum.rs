//! Vacuum of the whole output: every table's files that no reader may still
//! need go, after the retention period ([`super::delta::vacuum`]). Run at
//! the end of every committed run and by `unionsnap vacuum JOB`.
//!
//! Spared whatever their age: the files any snapshot marker names, and the
//! partitions runs landed and have not committed yet (`_state/.../landed.json`).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;

use super::delta::vacuum::{vacuum, Vacuumed};
use super::delta::Table;
use super::state::{landed_of, STATE};
use super::{commit, layout, LoadError, Store};
use crate::job::OutputLocation;

/// The retention period: `UNIONSNAP_VACUUM_RETENTION` (a duration like
/// "24h" or "30m", checked by [`crate::job::EnvSettings`]) or 24 h.
pub fn retention() -> Duration {
    crate::job::EnvSettings::current().vacuum_retention
}

/// The paths (relative to the output root) vacuum never deletes: the files
/// of every snapshot marker and every landed, uncommitted partition.
pub async fn spared(store: &Store) -> Result<HashSet<String>, LoadError> {
    let mut keep = HashSet::new();
    // One marker a date: read several at a time (years of daily history).
    let dates = commit::complete_dates(store).await?;
    let mut markers = futures::stream::iter(dates)
        .map(|date| commit::read_manifest(store, date))
        .buffer_unordered(16);
    while let Some(marker) = markers.next().await {
        if let Some(manifest) = marker? {
            keep.extend(manifest.files.into_iter().map(|f| f.path));
        }
    }
    let prefix = Path::from(STATE);
    let dates: Vec<_> = store
        .list_with_delimiter(Some(&prefix))
        .await
        .map_err(|source| LoadError::store(&prefix, source))?
        .common_prefixes;
    for folder in dates {
        let Some(date) = layout::snapshot_date_of(&folder) else {
            continue;
        };
        for landed in landed_of(store, date).await?.into_values() {
            keep.insert(landed.path);
        }
    }
    Ok(keep)
}

/// Vacuums every table of the output; returns what went, by table.
pub async fn vacuum_output(
    store: &Store,
    output: &OutputLocation,
    retention: Duration,
) -> Result<BTreeMap<String, Vacuumed>, LoadError> {
    let keep = spared(store).await?;
    let mut done = BTreeMap::new();
    for table in layout::ALL_TABLES {
        let vacuumed = vacuum(store, output, &Table::open(store, table), &keep, retention).await?;
        if vacuumed.files > 0 {
            tracing::info!(
                table,
                files = vacuumed.files,
                bytes = vacuumed.bytes,
                "vacuumed"
            );
        }
        done.insert(table.to_string(), vacuumed);
    }
    Ok(done)
}

/// Every object under the output's table folders, for tests and `history`.
pub async fn table_objects(store: &Store, table: &str) -> Result<Vec<String>, LoadError> {
    let prefix = Path::from(table);
    let objects: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|source| LoadError::store(&prefix, source))?;
    Ok(objects
        .into_iter()
        .map(|o| o.location.to_string())
        .collect())
}
