//! The operator's side of the commands: one run with its exit code, logs and
//! metrics ([`runner`]), the cron loop ([`serve`]), `merge` ([`merge`]),
//! Prometheus text ([`metrics`]), `validate --online` ([`preflight`]) and the
//! demo ([`demo`]). `main.rs` parses the arguments and dispatches here.

use std::path::Path;

use anyhow::Context;
use chrono::NaiveDate;

use crate::{load, report};

#[cfg(feature = "simulator")]
pub mod demo;
pub mod merge;
pub mod metrics;
pub mod preflight;
pub mod runner;
pub mod serve;

/// The process exit codes (README "Exit codes", `unionsnap --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Every account snapshotted and the snapshot committed (or, for a
    /// shard, its accounts landed).
    Ok = 0,
    /// Any other failure.
    Failure = 1,
    /// A bad job file, argument or environment setting: nothing was written.
    Usage = 2,
    /// Some accounts failed or ran out of quota; nothing was committed.
    Partial = 3,
    /// Another run holds the lease, or this one lost it: nothing committed.
    LeaseHeld = 4,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Writes the self-contained HTML report of the snapshot of `date` (the
/// latest complete one if `None`) to `path`.
pub async fn write_html_report(
    store: &load::Store,
    date: Option<NaiveDate>,
    path: &Path,
) -> anyhow::Result<()> {
    let data = report::read_report(store, date).await?;
    let page = report::render_html(&data)?;
    std::fs::write(path, page)
        .with_context(|| format!("cannot write the HTML report {}", path.display()))?;
    eprintln!("HTML report: {}", path.display());
    Ok(())
}
