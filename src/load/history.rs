//! The complete snapshots before a date: what `changes` compares against.
//!
//! "The previous snapshot" of SPEC §5 is the latest earlier date that has a
//! manifest — a date whose run stopped half-way (exit 3) has no manifest and is
//! skipped, exactly as a warehouse reader that follows the commit protocol
//! skips it.

use chrono::NaiveDate;

use super::{commit, LoadError, Manifest, ManifestFile, Store};

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

/// The file of `account_id`'s partition of the raw `table` that `manifest`
/// names, if it has one.
pub fn account_file<'m>(
    manifest: &'m Manifest,
    table: &str,
    account_id: &str,
) -> Option<&'m ManifestFile> {
    let folder = format!("/account_id={account_id}/");
    manifest
        .files
        .iter()
        .find(|f| f.table == table && f.path.contains(&folder))
}

/// The manifest of the latest complete snapshot before `date`, or `None`
/// when `date` is the first.
///
/// The day before is read first: a job run once a day finds it there with
/// one read, where a listing of every date's marker grows with the history
/// (a year of daily dates sent the first WeChat call 47 to 98 ms after the
/// start instead of 10 to 19; on S3 it is a listing of every date). Only
/// when that day is not complete are the markers listed.
pub async fn previous_manifest(
    store: &Store,
    date: NaiveDate,
) -> Result<Option<Manifest>, LoadError> {
    if let Some(day_before) = date.pred_opt() {
        if let Some(manifest) = commit::read_manifest(store, day_before).await? {
            return Ok(Some(manifest));
        }
    }
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

/// One committed snapshot, as `unionsnap history` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SnapshotEntry {
    pub snapshot_date: NaiveDate,
    pub run_id: String,
    pub epoch: i64,
    pub committed_at: chrono::DateTime<chrono::Utc>,
    pub accounts: usize,
    /// The Delta version of every table holding the date.
    pub tables: std::collections::BTreeMap<String, i64>,
    /// Rows of the date in every table.
    pub rows: std::collections::BTreeMap<String, u64>,
}

/// Every committed snapshot, oldest first.
pub async fn snapshots(store: &Store) -> Result<Vec<SnapshotEntry>, LoadError> {
    let mut entries = Vec::new();
    for date in commit::complete_dates(store).await? {
        let Some(manifest) = commit::read_manifest(store, date).await? else {
            continue;
        };
        let mut rows = std::collections::BTreeMap::new();
        for file in &manifest.files {
            *rows.entry(file.table.clone()).or_insert(0) += file.rows;
        }
        entries.push(SnapshotEntry {
            snapshot_date: manifest.snapshot_date,
            run_id: manifest.run_id,
            epoch: manifest.epoch,
            committed_at: manifest.committed_at,
            accounts: manifest.accounts.len(),
            tables: manifest.tables,
            rows,
        });
    }
    Ok(entries)
}

/// How `history` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryFormat {
    Text,
    Json,
    Csv,
}

/// `entries` as text (a line a snapshot), JSON (an array) or CSV (a row per
/// snapshot and table).
pub fn render(entries: &[SnapshotEntry], format: HistoryFormat) -> String {
    let mut out = String::new();
    match format {
        HistoryFormat::Json => {
            out = serde_json::to_string_pretty(entries).unwrap_or_else(|_| "[]".to_string());
            out.push('\n');
        }
        HistoryFormat::Csv => {
            out.push_str("snapshot_date,run_id,epoch,committed_at,table,version,rows\n");
            for e in entries {
                for (table, rows) in &e.rows {
                    let version = e.tables.get(table).map_or(String::new(), |v| v.to_string());
                    out.push_str(&format!(
                        "{},{},{},{},{table},{version},{rows}\n",
                        e.snapshot_date,
                        e.run_id,
                        e.epoch,
                        e.committed_at.to_rfc3339()
                    ));
                }
            }
        }
        HistoryFormat::Text => {
            if entries.is_empty() {
                out.push_str("no committed snapshot\n");
            }
            for e in entries {
                out.push_str(&format!(
                    "{}  run {}  committed {}  {} account(s)\n",
                    e.snapshot_date,
                    e.run_id,
                    e.committed_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    e.accounts
                ));
                for (table, rows) in &e.rows {
                    let version = e
                        .tables
                        .get(table)
                        .map_or("-".to_string(), |v| format!("v{v}"));
                    out.push_str(&format!("    {table:<10} {version:>6}  {rows:>12} rows\n"));
                }
            }
        }
    }
    out
}

/// A point in a warehouse's history: `--as-of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// A version of the `audience` table: the snapshot its run committed.
    Version(i64),
    /// What was committed at this time (each table's latest version then).
    Time(chrono::DateTime<chrono::Utc>),
}

impl std::str::FromStr for AsOf {
    type Err = String;

    /// A version number, or a UTC time: RFC 3339, `YYYY-MM-DD HH:MM:SS` or
    /// `YYYY-MM-DD` (its midnight).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(version) = text.parse::<i64>() {
            return Ok(AsOf::Version(version));
        }
        if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
            return Ok(AsOf::Time(time.with_timezone(&chrono::Utc)));
        }
        for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
            if let Ok(time) = chrono::NaiveDateTime::parse_from_str(text, format) {
                return Ok(AsOf::Time(time.and_utc()));
            }
        }
        if let Ok(day) = text.parse::<NaiveDate>() {
            return Ok(AsOf::Time(day.and_time(chrono::NaiveTime::MIN).and_utc()));
        }
        Err(format!(
            "--as-of {text:?} is neither a version of the audience table nor a time (2026-11-21T08:00:00Z, \"2026-11-21 08:00:00\" UTC, 2026-11-21)"
        ))
    }
}

/// One commit of a table, from its log entry's `commitInfo`.
#[derive(Debug, Clone)]
struct Commit {
    version: i64,
    timestamp_ms: i64,
    run_id: Option<String>,
    snapshot_date: Option<String>,
}

/// The commits of `table` whose log entries are still there, oldest first.
async fn commits(store: &Store, table: &str) -> Result<Vec<Commit>, LoadError> {
    use object_store::ObjectStoreExt;
    let prefix = object_store::path::Path::from(format!("{table}/_delta_log"));
    let objects = super::store::list_all(store, &prefix).await?;
    let mut out = Vec::new();
    for object in objects {
        let Some(name) = object.location.filename() else {
            continue;
        };
        let Some(version) = name
            .strip_suffix(".json")
            .and_then(|v| v.parse::<i64>().ok())
        else {
            continue;
        };
        let bytes = store
            .get(&object.location)
            .await
            .map_err(|source| LoadError::store(&object.location, source))?
            .bytes()
            .await
            .map_err(|source| LoadError::store(&object.location, source))?;
        let info = String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find_map(|action| action.get("commitInfo").cloned())
            .unwrap_or_default();
        let text = |key: &str| info.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        out.push(Commit {
            version,
            timestamp_ms: info
                .get("timestamp")
                .and_then(|v| v.as_i64())
                .unwrap_or_else(|| object.last_modified.timestamp_millis()),
            run_id: text("unionsnap_run_id"),
            snapshot_date: text("unionsnap_snapshot_date"),
        });
    }
    out.sort_by_key(|c| c.version);
    Ok(out)
}

/// The snapshot of `date` as it stood at `as_of`, as a marker would name
/// it: each table's version then and its files of the date. `None` when
/// nothing of the date was committed by then.
pub async fn manifest_as_of(
    store: &Store,
    date: NaiveDate,
    as_of: AsOf,
) -> Result<Option<Manifest>, LoadError> {
    use super::delta::Table;
    use super::layout;
    let audience = commits(store, layout::AUDIENCE).await?;
    let (cutoff_ms, run_id) = match as_of {
        AsOf::Time(time) => (time.timestamp_millis(), None),
        AsOf::Version(version) => match audience.iter().find(|c| c.version == version) {
            Some(commit) if commit.snapshot_date.as_deref() == Some(&date.to_string()) => {
                (commit.timestamp_ms, commit.run_id.clone())
            }
            Some(_) => {
                return Err(LoadError::Delta {
                    table: layout::AUDIENCE.to_string(),
                    detail: format!("version {version} is not a commit of snapshot {date}"),
                })
            }
            None => {
                return Err(LoadError::Delta {
                    table: layout::AUDIENCE.to_string(),
                    detail: format!("no version {version} (its log entry may have expired)"),
                })
            }
        },
    };
    let mut tables = std::collections::BTreeMap::new();
    let mut files = Vec::new();
    let mut committed_at = None;
    let mut snapshot_run = run_id.clone();
    for table in layout::ALL_TABLES {
        let history = if table == layout::AUDIENCE {
            audience.clone()
        } else {
            commits(store, table).await?
        };
        // The version the run committed, else the latest one by then.
        let by_run = run_id.as_ref().and_then(|run| {
            history
                .iter()
                .rev()
                .find(|c| c.run_id.as_ref() == Some(run))
        });
        let chosen = by_run.or_else(|| history.iter().rev().find(|c| c.timestamp_ms <= cutoff_ms));
        let Some(commit) = chosen else { continue };
        let delta = Table::open(store, table);
        let Some(state) = delta.state(Some(commit.version)).await? else {
            continue;
        };
        let of_date = delta.files_of(&state, date);
        if of_date.is_empty() {
            continue;
        }
        tables.insert(table.to_string(), commit.version);
        files.extend(of_date);
        if table == layout::AUDIENCE {
            committed_at = chrono::DateTime::from_timestamp_millis(commit.timestamp_ms);
            snapshot_run = snapshot_run.or_else(|| commit.run_id.clone());
        }
    }
    if !tables.contains_key(layout::AUDIENCE) {
        return Ok(None);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Some(Manifest {
        format_version: commit::MANIFEST_FORMAT_VERSION,
        job: String::new(),
        snapshot_date: date,
        run_id: snapshot_run.unwrap_or_default(),
        committed_at: committed_at.unwrap_or_default(),
        epoch: 0,
        accounts: Vec::new(),
        tables,
        files,
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;
    use object_store::ObjectStoreExt;

    use super::*;
    use crate::load::layout;

    fn date(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, day).unwrap()
    }

    /// A store whose dates `days` have a marker.
    async fn with_markers(days: &[u32]) -> Store {
        let store: Store = Arc::new(InMemory::new());
        for &day in days {
            let manifest = Manifest {
                format_version: commit::MANIFEST_FORMAT_VERSION,
                job: "job".into(),
                snapshot_date: date(day),
                run_id: format!("run-{day}"),
                committed_at: chrono::Utc::now(),
                epoch: 1,
                accounts: Vec::new(),
                tables: Default::default(),
                files: Vec::new(),
            };
            let bytes = serde_json::to_vec(&manifest).unwrap();
            store
                .put(&layout::manifest_file(date(day)), bytes.into())
                .await
                .unwrap();
        }
        store
    }

    async fn previous_day(store: &Store, day: u32) -> Option<u32> {
        use chrono::Datelike;
        let manifest = previous_manifest(store, date(day)).await.unwrap();
        manifest.map(|m| m.snapshot_date.day())
    }

    #[tokio::test]
    async fn the_previous_snapshot_is_the_latest_complete_date_before() {
        let store = with_markers(&[3, 10, 11, 14, 20]).await;
        // The day before, read directly.
        assert_eq!(previous_day(&store, 12).await, Some(11));
        assert_eq!(previous_day(&store, 21).await, Some(20));
        // A gap: the markers are listed, and later dates never count.
        assert_eq!(previous_day(&store, 13).await, Some(11));
        assert_eq!(previous_day(&store, 10).await, Some(3));
        assert_eq!(previous_day(&store, 30).await, Some(20));
        // A re-run of a complete date compares with the one before it.
        assert_eq!(previous_day(&store, 11).await, Some(10));
        // Nothing earlier: a first snapshot.
        assert_eq!(previous_day(&store, 3).await, None);
        assert_eq!(previous_day(&store, 1).await, None);
    }

    #[tokio::test]
    async fn a_day_before_without_its_marker_is_not_complete() {
        // A run of the 11th stopped half-way: its files are there, its
        // marker is not; the 10th is the previous complete snapshot.
        let store = with_markers(&[10]).await;
        let half_way = layout::account_file(layout::FOLLOWERS, date(11), "a", "run-11");
        store.put(&half_way, "x".into()).await.unwrap();
        assert_eq!(previous_day(&store, 12).await, Some(10));
    }
}
