//! The operator's side of the commands: one run with its exit code, logs and
//! metrics ([`runner`]), the cron loop ([`serve`]), `merge` ([`merge`]),
//! Prometheus text ([`metrics`]), `validate --online` ([`preflight`]) and the
//! demo ([`demo`]). `main.rs` parses the arguments and dispatches here.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};

use crate::pipeline::RunSummary;
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

/// How a run ended, as `unionsnap_runs_total{outcome=...}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RunOutcome {
    /// Every account snapshotted, the date committed (or merged).
    Complete,
    /// A sharded run whose accounts all landed (the merge commits).
    Landed,
    /// Some accounts failed: no manifest (exit 3).
    Partial,
    /// A shutdown abandoned accounts.
    Interrupted,
    /// The run stopped on an error (exit 1).
    Failed,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Complete => "complete",
            RunOutcome::Landed => "landed",
            RunOutcome::Partial => "partial",
            RunOutcome::Interrupted => "interrupted",
            RunOutcome::Failed => "failed",
        }
    }

    /// Complete and landed runs did what was asked of them.
    pub fn is_success(self) -> bool {
        matches!(self, RunOutcome::Complete | RunOutcome::Landed)
    }
}

/// How one run (or merge) ended: what its log lines, exit code and metrics
/// are made of.
#[derive(Debug)]
pub struct RunEnd {
    /// The process exit code it deserves ([`Exit`]).
    pub exit_code: u8,
    pub outcome: RunOutcome,
    /// Present unless the run stopped on an error.
    pub summary: Option<RunSummary>,
    /// The error that stopped it, as text (secrets never appear in errors).
    pub error: Option<String>,
    pub duration: Duration,
    pub finished_at: DateTime<Utc>,
}

impl RunEnd {
    /// A run that got as far as `summary`, started at `started`.
    pub fn new(
        exit: Exit,
        outcome: RunOutcome,
        summary: Option<RunSummary>,
        started: Instant,
    ) -> RunEnd {
        RunEnd {
            exit_code: exit.code(),
            outcome,
            summary,
            error: None,
            duration: started.elapsed(),
            finished_at: Utc::now(),
        }
    }

    /// A run stopped by an error (`error`, when it is worth reporting).
    pub fn failed(exit: Exit, error: Option<String>, started: Instant) -> RunEnd {
        RunEnd {
            error,
            ..RunEnd::new(exit, RunOutcome::Failed, None, started)
        }
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
