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
