//! Vacuum of the whole output: every table's files that no reader may still
//! need go, after the retention period ([`super::delta::vacuum`]). Run
//! beside the crawl of every run that commits (it has the lease of its date
//! then, and its round trips hide behind WeChat's) and by `unionsnap vacuum
//! JOB`.
//!
//! The cutoff is taken once, as a vacuum starts, and a run's vacuum spares
//! the files the run writes while it goes on (named after its run id), even
//! with a retention of zero, and the crawl state of the run's own date.
//!
//! Spared whatever their age: the files any snapshot marker names, and the
//! partitions runs landed and have not committed yet (`_state/.../landed.json`).
//!
//! First, the crawl state of a date that never committed expires: it holds
//! raw ids, and a date nobody has run for `UNIONSNAP_STATE_RETENTION`
//! (default 7 days) since its last write is dropped whole — checkpoints,
//! segments and landed records; its landed partitions then go as orphans.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::NaiveDate;
use std::time::{Duration, SystemTime};

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;

use super::commit::TableStates;
use super::delta::vacuum::{candidates, delete, Vacuumed};
use super::delta::Table;
use super::state::{delete_date_state, landed_of, STATE};
use super::{commit, layout, LoadError, Store};
use crate::job::OutputLocation;

/// The retention period: `UNIONSNAP_VACUUM_RETENTION` (a duration like
/// "24h" or "30m", checked by [`crate::job::EnvSettings`]) or 24 h.
pub fn retention() -> Duration {
    crate::job::EnvSettings::current().vacuum_retention
}

/// The paths (relative to the output root) vacuum never deletes among
/// files of `dates` (all dates: None): the files of their snapshot markers
/// and of every landed, uncommitted partition.
pub async fn spared(
    store: &Store,
    dates: Option<&BTreeSet<NaiveDate>>,
) -> Result<HashSet<String>, LoadError> {
    let mut keep = HashSet::new();
    // One marker a date: read several at a time (years of daily history).
    let dates = match dates {
        Some(dates) => dates.iter().copied().collect(),
        None => commit::complete_dates(store).await?,
    };
    // (A stream of futures, not a stream mapped by a closure: the run
    // spawns its vacuum, and such a closure's future is not provably Send.)
    let reads: Vec<_> = (dates.into_iter())
        .map(|date| commit::read_manifest(store, date))
        .collect();
    let mut markers = futures::stream::iter(reads).buffer_unordered(16);
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
            keep.extend(landed.files().into_iter().map(|f| f.path));
        }
    }
    Ok(keep)
}

/// Deletes the crawl state (`_state/snapshot_date=D/`) of every date but
/// `running` whose newest state object is older than `retention`; returns
/// those dates.
pub async fn expire_state(
    store: &Store,
    output: &OutputLocation,
    retention: Duration,
    running: Option<chrono::NaiveDate>,
) -> Result<Vec<chrono::NaiveDate>, LoadError> {
    let prefix = Path::from(STATE);
    let folders = store
        .list_with_delimiter(Some(&prefix))
        .await
        .map_err(|source| LoadError::store(&prefix, source))?
        .common_prefixes;
    let now = chrono::Utc::now();
    let mut expired = Vec::new();
    for folder in folders {
        let Some(date) = layout::snapshot_date_of(&folder) else {
            continue;
        };
        if Some(date) == running {
            continue;
        }
        let objects: Vec<_> = store
            .list(Some(&folder))
            .try_collect()
            .await
            .map_err(|source| LoadError::store(&folder, source))?;
        let newest = objects.iter().map(|o| o.last_modified).max();
        let idle = newest.and_then(|at| (now - at).to_std().ok());
        if idle.is_some_and(|idle| idle > retention) {
            delete_date_state(store, output, date).await?;
            tracing::warn!(snapshot_date = %date, idle = %humantime::format_duration(Duration::from_secs(idle.unwrap_or_default().as_secs())),
                "the crawl state of a date that never committed expired (it held raw ids); a re-run of that date starts over");
            expired.push(date);
        }
    }
    Ok(expired)
}

/// The run a vacuum is part of: the crawl state of its date, and the files
/// it writes, are spared whatever their age.
#[derive(Debug, Clone)]
pub struct Running {
    pub date: chrono::NaiveDate,
    pub run_id: String,
}

/// The cutoff of a vacuum with `retention` that starts now.
pub fn cutoff(retention: Duration) -> SystemTime {
    SystemTime::now()
        .checked_sub(retention)
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Vacuums every table of the output of what was replaced, or written and
/// never committed, before `cutoff` ([`cutoff`]); returns what went, by
/// table. The crawl state of dates idle past `UNIONSNAP_STATE_RETENTION`
/// goes first, but that of the `running` run's date. `read` holds the
/// tables' states if they were read already, as the vacuum started.
pub async fn vacuum_output(
    store: &Store,
    output: &OutputLocation,
    cutoff: SystemTime,
    running: Option<&Running>,
    read: &TableStates,
) -> Result<BTreeMap<String, Vacuumed>, LoadError> {
    expire_state(
        store,
        output,
        crate::job::EnvSettings::current().state_retention,
        running.map(|r| r.date),
    )
    .await?;
    let own_run = running.map(|r| r.run_id.as_str());
    // The tables are gone through at once: their log reads and listings
    // overlap.
    let found: Vec<_> = (layout::ALL_TABLES.into_iter())
        .map(|table| async move {
            let (delta_table, state) = (Table::open(store, table), read.get(table).cloned());
            let found = candidates(store, &delta_table, cutoff, own_run, state).await;
            (table, found)
        })
        .collect();
    let found: Vec<_> = futures::stream::iter(found)
        .buffered(layout::ALL_TABLES.len())
        .collect()
        .await;
    let mut by_table = Vec::new();
    for (table, found) in found {
        by_table.push((table, found?));
    }
    // Only the candidates' dates can have marked files at stake (a file of
    // one date is in that date's marker alone); every marker is read only
    // when a candidate is outside any date's partition.
    let dates: Option<BTreeSet<NaiveDate>> = (by_table.iter())
        .flat_map(|(_, found)| found.iter())
        .map(|object| layout::snapshot_date_of(&object.location))
        .collect();
    let keep = spared(store, dates.as_ref()).await?;
    let keep = &keep;
    let deletes: Vec<_> = (by_table.into_iter())
        .map(|(table, found)| async move {
            let vacuumed = delete(store, output, table, found, keep, cutoff, own_run).await;
            (table, vacuumed)
        })
        .collect();
    let mut vacuums = futures::stream::iter(deletes).buffered(layout::ALL_TABLES.len());
    let mut done = BTreeMap::new();
    while let Some((table, vacuumed)) = vacuums.next().await {
        let vacuumed = vacuumed?;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;
    use object_store::ObjectStoreExt;

    use super::*;

    fn date(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, day).unwrap()
    }

    async fn followers_file(store: &Store, day: u32, run_id: &str) -> super::commit::ManifestFile {
        let path = layout::account_file(layout::FOLLOWERS, date(day), "a", run_id);
        let mut rows = polars::df!("openid" => [run_id]).unwrap();
        super::commit::write_file(store, layout::FOLLOWERS, path, &mut rows)
            .await
            .unwrap()
    }

    /// A run killed between its table commits and its marker leaves the
    /// date's marker naming files the latest version removed: the vacuum
    /// finds them among its candidates and reads that date's marker, which
    /// spares them, while it deletes what nothing names.
    #[tokio::test]
    async fn files_a_marker_names_outlive_a_vacuum_at_zero_retention() {
        use super::super::delta::{Change, Fence, Replace};

        let store: Store = Arc::new(InMemory::new());
        let output = OutputLocation::Url(url::Url::parse("memory:///").unwrap());
        let fence = Fence { epoch: 1 };
        let marked = followers_file(&store, 21, "r1").await;
        let mut writer = super::commit::SnapshotWriter::begin(store.clone(), date(21), "r1");
        writer.add_file(marked.clone());
        writer.commit("acme", vec![], fence).await.unwrap();
        let newer = followers_file(&store, 21, "r2").await;
        let change = Change {
            date: date(21),
            replace: Replace::Date,
            files: std::slice::from_ref(&newer),
            fence,
            run_id: "r2",
        };
        Table::open(&store, layout::FOLLOWERS)
            .commit(change)
            .await
            .unwrap();
        let orphan = followers_file(&store, 22, "r3").await;

        tokio::time::sleep(Duration::from_millis(5)).await;
        let done = vacuum_output(
            &store,
            &output,
            cutoff(Duration::ZERO),
            None,
            &Default::default(),
        )
        .await
        .unwrap();
        assert_eq!(done[layout::FOLLOWERS].files, 1, "{done:?}");
        let exists = |path: &str| {
            let path = Path::from(path);
            let store = store.clone();
            async move { store.head(&path).await.is_ok() }
        };
        assert!(
            exists(&marked.path).await,
            "the marker of the 21st names it"
        );
        assert!(exists(&newer.path).await, "the latest version holds it");
        assert!(!exists(&orphan.path).await, "nothing names it");
    }

    #[tokio::test]
    async fn the_state_of_a_date_idle_past_the_retention_expires() {
        let store: Store = Arc::new(InMemory::new());
        let output = OutputLocation::Url(url::Url::parse("memory:///").unwrap());
        let checkpoint = Path::from("_state/snapshot_date=2026-11-21/account_id=a/checkpoint.json");
        store.put(&checkpoint, "{}".into()).await.unwrap();

        let kept = expire_state(&store, &output, Duration::from_secs(3600), None)
            .await
            .unwrap();
        assert!(kept.is_empty());
        assert!(store.head(&checkpoint).await.is_ok());

        tokio::time::sleep(Duration::from_millis(20)).await;
        // A run of that very date keeps it.
        let running = "2026-11-21".parse().ok();
        let kept = expire_state(&store, &output, Duration::from_millis(10), running)
            .await
            .unwrap();
        assert!(kept.is_empty());
        assert!(store.head(&checkpoint).await.is_ok());
        let expired = expire_state(&store, &output, Duration::from_millis(10), None)
            .await
            .unwrap();
        assert_eq!(
            expired,
            ["2026-11-21".parse::<chrono::NaiveDate>().unwrap()]
        );
        assert!(store.head(&checkpoint).await.is_err());
    }
}
