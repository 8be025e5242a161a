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
use std::time::{Duration, SystemTime};

use chrono::NaiveDate;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

use super::commit::TableStates;
use super::delta::vacuum::{delete, unnamed, Reach, Vacuumed};
use super::delta::Table;
use super::state::{delete_date_state, landed_of, STATE};
use super::store::{delete_if_exists, list_all};
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
        let objects = list_all(store, &folder).await?;
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

/// Which dates' partitions a vacuum goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// Every date (`unionsnap vacuum`).
    Whole,
    /// The dates in the journal (a run's own vacuum): those runs wrote files
    /// under since a vacuum last found them clean, and the running date.
    /// Every date the first time, while no whole sweep has gone before the
    /// journal.
    Journaled,
}

/// Notes in the vacuum's journal that a data file is written at `path`,
/// under its date's partition (nothing for a path outside any date).
pub async fn journal(store: &Store, path: &Path) -> Result<(), LoadError> {
    let Some(date) = layout::snapshot_date_of(path) else {
        return Ok(());
    };
    put_empty(store, &layout::journal_entry(date)).await
}

/// Puts an empty object at `path` (the journal's entries and its mark).
async fn put_empty(store: &Store, path: &Path) -> Result<(), LoadError> {
    store
        .put(path, PutPayload::default())
        .await
        .map_err(|source| LoadError::store(path, source))?;
    Ok(())
}

/// The journal: its dates, each with when a run last wrote under it, and
/// whether a whole sweep has gone before it.
async fn read_journal(store: &Store) -> Result<(BTreeMap<NaiveDate, SystemTime>, bool), LoadError> {
    let objects = list_all(store, &Path::from(layout::JOURNAL)).await?;
    let started = objects
        .iter()
        .any(|o| o.location == layout::journal_started());
    let dates = (objects.iter())
        .filter_map(|o| {
            Some((
                layout::snapshot_date_of(&o.location)?,
                o.last_modified.into(),
            ))
        })
        .collect();
    Ok((dates, started))
}

/// Vacuums the tables of the output of what was replaced, or written and
/// never committed, before `cutoff` ([`cutoff`]), through the partitions of
/// the dates `sweep` says; returns what went, by table. The crawl state of
/// dates idle past `UNIONSNAP_STATE_RETENTION` goes first, but that of the
/// `running` run's date. `read` holds the tables' states if they were read
/// already, as the vacuum started.
///
/// A date leaves the journal when the vacuum went through it, found no file
/// in it that no version names, and no run wrote under it for the
/// retention period (so no run still writing it can be missed).
pub async fn vacuum_output(
    store: &Store,
    output: &OutputLocation,
    cutoff: SystemTime,
    running: Option<&Running>,
    read: &TableStates,
    sweep: Sweep,
) -> Result<BTreeMap<String, Vacuumed>, LoadError> {
    expire_state(
        store,
        output,
        crate::job::EnvSettings::current().state_retention,
        running.map(|r| r.date),
    )
    .await?;
    let (journal, started) = read_journal(store).await?;
    let dates: Option<BTreeSet<NaiveDate>> = (sweep == Sweep::Journaled && started).then(|| {
        (journal.keys().copied())
            .chain(running.map(|r| r.date))
            .collect()
    });
    let reach = Reach {
        cutoff,
        own_run: running.map(|r| r.run_id.as_str()),
        dates: dates.as_ref(),
    };
    // The tables are gone through at once: their log reads and listings
    // overlap.
    let found: Vec<_> = (layout::ALL_TABLES.into_iter())
        .map(|table| async move {
            let (delta_table, state) = (
                Table::open(store, table),
                read.get(table).map(|read| read.state.clone()),
            );
            let found = unnamed(store, &delta_table, state, reach).await;
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
    // Only the dates of the files it may delete can have marked files at
    // stake (a file of one date is in that date's marker alone); every
    // marker is read only when such a file is outside any date's partition.
    let marked: Option<BTreeSet<NaiveDate>> = (by_table.iter())
        .flat_map(|(_, found)| found.iter().filter(|f| f.expired))
        .map(|f| layout::snapshot_date_of(&f.object.location))
        .collect();
    let keep = spared(store, marked.as_ref()).await?;
    let keep = &keep;
    let deletes: Vec<_> = (by_table.into_iter())
        .map(|(table, found)| async move {
            let vacuumed = delete(store, output, table, found, keep, reach).await;
            (table, vacuumed)
        })
        .collect();
    let mut vacuums = futures::stream::iter(deletes).buffered(layout::ALL_TABLES.len());
    let mut done = BTreeMap::new();
    let mut left = BTreeSet::new();
    while let Some((table, vacuumed)) = vacuums.next().await {
        let (vacuumed, unclean) = vacuumed?;
        left.extend(unclean);
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
    for (date, written) in journal {
        if Some(date) == running.map(|r| r.date) || left.contains(&date) || written >= cutoff {
            continue;
        }
        // Read again just before it goes: a run that started a file of the
        // date while this vacuum went on put the entry again.
        let entry = layout::journal_entry(date);
        let still_old = (store.head(&entry).await)
            .is_ok_and(|meta| SystemTime::from(meta.last_modified) < cutoff);
        if still_old {
            delete_if_exists(store, &entry)
                .await
                .map_err(|source| LoadError::store(&entry, source))?;
        }
    }
    if !started {
        put_empty(store, &layout::journal_started()).await?;
    }
    Ok(done)
}

/// Every object under the output's table folders, for tests and `history`.
pub async fn table_objects(store: &Store, table: &str) -> Result<Vec<String>, LoadError> {
    let objects = list_all(store, &Path::from(table)).await?;
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
            Sweep::Journaled,
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

    /// A run's own vacuum goes through the dates in the journal only, once a
    /// whole sweep has gone before it; a date leaves the journal once it
    /// holds nothing that no version names and no run wrote under it for
    /// the retention period.
    #[tokio::test]
    async fn a_runs_vacuum_goes_through_the_dates_runs_wrote() {
        let store: Store = Arc::new(InMemory::new());
        let output = OutputLocation::Url(url::Url::parse("memory:///").unwrap());
        let exists = |path: Path| {
            let store = store.clone();
            async move { store.head(&path).await.is_ok() }
        };
        let vacuum = |retention: Duration, sweep: Sweep| {
            let (store, output) = (store.clone(), output.clone());
            async move {
                let at = cutoff(retention);
                vacuum_output(&store, &output, at, None, &Default::default(), sweep)
                    .await
                    .unwrap()
            }
        };
        followers_file(&store, 21, "r1").await;
        assert!(
            exists(layout::journal_entry(date(21))).await,
            "written: in the journal"
        );
        // Before any whole sweep, every date is gone through, and the journal
        // starts.
        let unjournaled = layout::account_file(layout::FOLLOWERS, date(20), "a", "r0");
        store.put(&unjournaled, "old".into()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let done = vacuum(Duration::ZERO, Sweep::Journaled).await;
        assert_eq!(done[layout::FOLLOWERS].files, 2, "{done:?}");
        assert!(exists(layout::journal_started()).await);
        assert!(
            !exists(layout::journal_entry(date(21))).await,
            "the 21st is clean"
        );

        // From then on, only the journal's dates.
        store.put(&unjournaled, "old".into()).await.unwrap();
        let orphan = followers_file(&store, 22, "r2").await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Within the retention, the orphan stays and so does its date.
        let done = vacuum(Duration::from_secs(3600), Sweep::Journaled).await;
        assert_eq!(done[layout::FOLLOWERS].files, 0, "{done:?}");
        assert!(exists(layout::journal_entry(date(22))).await);
        let done = vacuum(Duration::ZERO, Sweep::Journaled).await;
        assert_eq!(done[layout::FOLLOWERS].files, 1, "{done:?}");
        assert!(!exists(Path::from(orphan.path)).await);
        assert!(!exists(layout::journal_entry(date(22))).await);
        assert!(
            exists(unjournaled.clone()).await,
            "the 20th is not in the journal"
        );
        // A whole sweep goes through every date.
        let done = vacuum(Duration::ZERO, Sweep::Whole).await;
        assert_eq!(done[layout::FOLLOWERS].files, 1, "{done:?}");
        assert!(!exists(unjournaled).await);
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
