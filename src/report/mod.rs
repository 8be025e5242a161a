//! The audience report, read back from the warehouse: what analysts see first.
//!
//! It reads only complete snapshots (those with a manifest), so it shows
//! exactly what a warehouse query over the same date would.
//!
//! - this file: reading a snapshot and the terminal summary (`--format text`);
//! - [`formats`]: the summary as JSON or CSV;
//! - [`data`], [`charts`], [`html`]: the self-contained HTML report with its
//!   plotters charts (`--html FILE`).

pub mod charts;
pub mod data;
pub mod formats;
pub mod html;
pub mod reconciliation;

pub use data::{read_report, ReportData};
pub use formats::{render_csv, render_json, Format};
pub use html::render_html;

use chrono::NaiveDate;
use polars::prelude::*;

use crate::load::{self, layout, LoadError, Manifest, Store};

/// The tables of one complete snapshot that the report shows.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub manifest: Manifest,
    pub audience: DataFrame,
    pub overlap: DataFrame,
    /// The Official Accounts' `reconciliation` rows, by account id (none
    /// without Official Accounts, or before the table existed).
    pub reconciliation: Vec<(String, crate::extract::oa_counts::Reconciled)>,
}

/// A failure to produce the report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("no complete snapshot in this output yet (no _manifests/snapshot_date=*/manifest.json); run `unionsnap run JOB.toml` first")]
    NoSnapshot,
    #[error("snapshot {0} is not complete (no manifest): it is still running, or its last run failed or stopped on quota; re-run it")]
    Incomplete(NaiveDate),
    #[error("manifest of {date} lists no {table} file")]
    MissingTable { date: NaiveDate, table: String },
    #[error("{0}")]
    Table(#[from] PolarsError),
    #[error(transparent)]
    Chart(#[from] charts::ChartError),
}

/// `date`, or the latest complete date.
async fn date_or_latest(store: &Store, date: Option<NaiveDate>) -> Result<NaiveDate, ReportError> {
    match date {
        Some(date) => Ok(date),
        None => load::complete_dates(store)
            .await?
            .last()
            .copied()
            .ok_or(ReportError::NoSnapshot),
    }
}

/// Reads the snapshot of `date`, or of the latest complete date.
pub async fn read_snapshot(
    store: &Store,
    date: Option<NaiveDate>,
) -> Result<Snapshot, ReportError> {
    let date = date_or_latest(store, date).await?;
    let manifest = load::read_manifest(store, date)
        .await?
        .ok_or(ReportError::Incomplete(date))?;
    snapshot_of(store, manifest).await
}

/// Reads the snapshot of `date` (default: the latest complete one) as it
/// stood at `as_of`: the Delta versions of then, read from the tables.
pub async fn read_snapshot_as_of(
    store: &Store,
    date: Option<NaiveDate>,
    as_of: load::history::AsOf,
) -> Result<Snapshot, ReportError> {
    let date = date_or_latest(store, date).await?;
    let manifest = load::history::manifest_as_of(store, date, as_of)
        .await?
        .ok_or(ReportError::Incomplete(date))?;
    snapshot_of(store, manifest).await
}

/// The audience and overlap of the snapshot `manifest` names.
async fn snapshot_of(store: &Store, manifest: load::Manifest) -> Result<Snapshot, ReportError> {
    let date = manifest.snapshot_date;
    let table = |name: &str| {
        manifest
            .files
            .iter()
            .find(|f| f.table == name)
            .map(|f| f.path.clone())
            .ok_or_else(|| ReportError::MissingTable {
                date,
                table: name.to_string(),
            })
    };
    let audience = load::read_file(store, &table(layout::AUDIENCE)?).await?;
    let overlap = load::read_file(store, &table(layout::OVERLAP)?).await?;
    let reconciliation = reconciliation::read_rows(store, &manifest).await?;
    Ok(Snapshot {
        manifest,
        audience,
        overlap,
        reconciliation,
    })
}

pub(crate) fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn cell(v: Option<i64>) -> String {
    v.map(thousands).unwrap_or_else(|| "-".to_string())
}

/// The snapshot's summary in `format`.
pub fn render(snapshot: &Snapshot, format: Format) -> Result<String, PolarsError> {
    match format {
        Format::Text => render_text(snapshot),
        Format::Json => render_json(snapshot),
        Format::Csv => render_csv(snapshot),
    }
}

/// The terminal summary: one line per account, the deduplicated totals, the
/// overlap of each pair of accounts, and WeChat's own counts beside ours.
pub fn render_text(snapshot: &Snapshot) -> Result<String, PolarsError> {
    let a = &snapshot.audience;
    let ids = a.column("account_id")?.str()?;
    let kinds = a.column("account_kind")?.str()?;
    let num = |name: &str| -> PolarsResult<Vec<Option<i64>>> {
        Ok(a.column(name)?.i64()?.iter().collect())
    };
    let (members, resolved, unresolved, exclusive) = (
        num("members")?,
        num("resolved")?,
        num("unresolved")?,
        num("exclusive_people")?,
    );
    let (resolved_people, unique_people, duplicates) = (
        num("resolved_people")?,
        num("unique_people")?,
        num("duplicate_memberships")?,
    );
    let header = [
        "account",
        "kind",
        "members",
        "resolved",
        "unresolved",
        "exclusive",
    ];
    let mut rows: Vec<[String; 6]> = Vec::new();
    let mut star = None;
    for i in 0..a.height() {
        let id = ids.get(i).unwrap_or("");
        if id == crate::transform::ALL_ACCOUNTS {
            star = Some(i);
            continue;
        }
        rows.push([
            id.to_string(),
            kinds.get(i).unwrap_or("").to_string(),
            cell(members[i]),
            cell(resolved[i]),
            cell(unresolved[i]),
            cell(exclusive[i]),
        ]);
    }
    if let Some(i) = star {
        rows.push([
            "all accounts".to_string(),
            String::new(),
            cell(members[i]),
            cell(resolved[i]),
            cell(unresolved[i]),
            String::new(),
        ]);
    }
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i < 2 {
                out.push_str(&format!("{c:<w$}  "));
            } else {
                out.push_str(&format!("{c:>w$}  "));
            }
        }
        out.trim_end().to_string()
    };
    let m = &snapshot.manifest;
    let mut out = format!(
        "unionsnap audience — job {} — snapshot {} (complete, committed {})\n\n",
        m.job,
        m.snapshot_date,
        m.committed_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    out.push_str(&line(&header.map(String::from)));
    out.push('\n');
    out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
    out.push('\n');
    for (i, row) in rows.iter().enumerate() {
        if star.is_some() && i + 1 == rows.len() {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
            out.push('\n');
        }
        out.push_str(&line(row));
        out.push('\n');
    }
    if let Some(i) = star {
        out.push_str(&format!(
            "\nunique people:          {:>12}   (resolved people {} + unresolved members {})\n",
            cell(unique_people[i]),
            cell(resolved_people[i]),
            cell(unresolved[i]),
        ));
        out.push_str(&format!(
            "duplicate memberships:  {:>12}   (gross memberships {} − unique people)\n",
            cell(duplicates[i]),
            cell(members[i]),
        ));
    }
    let o = &snapshot.overlap;
    if o.height() > 0 {
        out.push_str("\npeople shared by two accounts:\n");
        let (aa, bb, shared) = (
            o.column("account_a")?.str()?,
            o.column("account_b")?.str()?,
            o.column("shared_people")?.i64()?,
        );
        for i in 0..o.height() {
            out.push_str(&format!(
                "  {} ∩ {}: {}\n",
                aa.get(i).unwrap_or(""),
                bb.get(i).unwrap_or(""),
                cell(shared.get(i))
            ));
        }
    }
    out.push_str(&reconciliation::render_text(&snapshot.reconciliation));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(-1234567), "-1,234,567");
    }
}
