//! `unionsnap serve JOB.toml`: stay up and run the job on its cron schedule.
//!
//! - The schedule is the job's `schedule` (cron with seconds, the `cron`
//!   crate), evaluated in the job's `timezone`; the snapshot date of a run is
//!   the local date of its scheduled time.
//! - Never two runs at once: runs are awaited one after the other. A run that
//!   outlasts the interval makes the loop skip the times it missed (logged)
//!   and wait for the next one, rather than start runs back to back.
//! - Tokens stay warm: one [`Runner`] (so one set of API clients) lives as
//!   long as the process.
//! - Shutdown (SIGTERM/SIGINT cancels the token given to [`serve`]): while
//!   waiting, the loop ends at once; during a run, the pipeline abandons the
//!   accounts still extracting, writes those that finished, and the loop
//!   ends. Either way `serve` returns and the process exits 0.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::ops::runner::Runner;
use crate::ops::RunEnd;

/// Runs finished by [`serve`] in this process.
static RUNS_FINISHED: AtomicU64 = AtomicU64::new(0);

/// How many runs [`serve`] has finished in this process: the binary's
/// threads hand back the memory they kept once after each.
pub fn runs_finished() -> u64 {
    RUNS_FINISHED.load(Ordering::Acquire)
}

/// Why `serve` cannot start: the job has no schedule.
pub type ServeError = crate::job::JobError;

/// What a `serve` did before it stopped.
#[derive(Debug, Default)]
pub struct ServeSummary {
    /// Runs started (and finished: a run is always awaited).
    pub runs: u64,
    /// Runs whose exit code would have been 0.
    pub succeeded: u64,
    /// A shutdown ended the loop (rather than a schedule without future times).
    pub shutdown: bool,
}

/// Runs `runner`'s job on its schedule until `shutdown` is cancelled.
pub async fn serve(
    runner: &mut Runner,
    shutdown: CancellationToken,
) -> Result<ServeSummary, ServeError> {
    let schedule = runner.job.schedule_to_serve()?.clone();
    // The same token stops the loop and the run in progress.
    runner.context.cancel = shutdown.clone();
    let timezone = runner.job.timezone;
    let mut summary = ServeSummary::default();
    tracing::info!(job = %runner.job.name, schedule = schedule.source(), timezone = timezone.name(), "serving");
    if let Some(warning) = runner.job.schedule_warning() {
        tracing::warn!(job = %runner.job.name, "{warning}");
        eprintln!("warning: {warning}");
    }
    let mut last_scheduled: Option<DateTime<chrono_tz::Tz>> = None;
    loop {
        let now = Utc::now().with_timezone(&timezone);
        if let Some(previous) = last_scheduled {
            let missed = schedule
                .after(&previous)
                .take_while(|t| *t <= now)
                .take(10_000)
                .count();
            if missed > 0 {
                tracing::warn!(
                    missed,
                    "the last run outlasted the schedule's interval; skipping the times it missed"
                );
            }
        }
        let Some(next) = schedule.after(&now).next() else {
            tracing::info!("the schedule has no future time; stopping");
            return Ok(summary);
        };
        tracing::info!(next_run = %next.to_rfc3339(), "waiting for the next scheduled run");
        let wait = (next.with_timezone(&Utc) - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        tokio::select! {
            () = shutdown.cancelled() => {
                tracing::info!("shutdown requested while waiting; stopping");
                summary.shutdown = true;
                return Ok(summary);
            }
            () = tokio::time::sleep(wait) => {}
        }
        last_scheduled = Some(next);
        let end: RunEnd = runner.run(next.date_naive()).await;
        RUNS_FINISHED.fetch_add(1, Ordering::Release);
        summary.runs += 1;
        if end.exit_code == 0 {
            summary.succeeded += 1;
        }
        if let Some(error) = &end.error {
            eprintln!("error: {error}");
        }
        tracing::info!(
            runs = summary.runs,
            succeeded = summary.succeeded,
            outcome = end.outcome.as_str(),
            "run finished"
        );
        if shutdown.is_cancelled() {
            tracing::info!("shutdown requested during the run; the accounts that finished are written; stopping");
            summary.shutdown = true;
            return Ok(summary);
        }
    }
}
