//! One run as the operator sees it: the pipeline, then its log lines, its
//! exit code, and its metrics (`--metrics-file`, `--pushgateway`). `unionsnap
//! run` makes one; `unionsnap serve` keeps a [`Runner`] for its whole life so
//! that the API clients (warm tokens) and the metrics carry over from run to run.

use std::path::PathBuf;
use std::time::Instant;

use chrono::{NaiveDate, Utc};

use crate::job::Job;
use crate::load::LoadError;
use crate::load::RunTag;
use crate::ops::metrics::{self, Metrics};
use crate::pipeline::{self, AccountOutcome, RunContext, RunError, RunSummary};

use super::{Exit, RunEnd, RunOutcome};
use crate::shard::Shard;

/// Where a run's metrics go.
#[derive(Debug, Clone, Default)]
pub struct MetricsSinks {
    /// `--metrics-file`: rewritten whole after every run.
    pub file: Option<PathBuf>,
    /// `--pushgateway`: the Pushgateway's base URL.
    pub pushgateway: Option<url::Url>,
}

/// Runs a job, again and again if asked, with the same clients and metrics.
pub struct Runner {
    pub job: Job,
    pub context: RunContext,
    pub metrics: Metrics,
    pub sinks: MetricsSinks,
}

impl Runner {
    pub fn new(job: Job, context: RunContext, sinks: MetricsSinks) -> Runner {
        let metrics = Metrics::new(&job.name, context.shard);
        Runner {
            job,
            context,
            metrics,
            sinks,
        }
    }

    /// One snapshot of `date`, then its log lines and metrics.
    pub async fn run(&mut self, date: NaiveDate) -> RunEnd {
        let tag = RunTag {
            date,
            run_id: new_run_id(),
        };
        let job = &self.job;
        tracing::info!(job = %job.name, snapshot_date = %date, run_id = %tag.run_id,
            shard = %self.context.shard.map_or("-".to_string(), |s| s.to_string()),
            accounts = job.accounts.len(), output = %job.output, "run starts");
        let started = Instant::now();
        let result = pipeline::run_with(job, &tag, &self.context).await;
        let end = self.judge(&tag, result, started);
        self.publish(&end).await;
        end
    }

    /// Records `end` and writes/pushes the metrics. A metrics failure is
    /// logged, never turned into a failed snapshot.
    pub async fn publish(&mut self, end: &RunEnd) {
        if self.sinks.file.is_none() && self.sinks.pushgateway.is_none() {
            return;
        }
        if let Err(error) = self.metrics.record(end) {
            tracing::error!(%error, "cannot record the run's metrics");
            return;
        }
        let text = match self.metrics.render(&self.context.clients.stats()) {
            Ok(text) => text,
            Err(error) => {
                tracing::error!(%error, "cannot encode the metrics");
                return;
            }
        };
        if let Some(path) = &self.sinks.file {
            match metrics::write_file(path, &text) {
                Ok(()) => tracing::info!(path = %path.display(), "metrics written"),
                Err(error) => tracing::error!(%error, "metrics not written"),
            }
        }
        if let Some(base) = &self.sinks.pushgateway {
            let url = crate::secret::redact_url(&self.metrics.push_url(base));
            match metrics::push(&self.metrics, base, text, end.outcome.is_success()).await {
                Ok(()) => tracing::info!(%url, "metrics pushed"),
                Err(error) => tracing::error!(%url, %error, "metrics not pushed"),
            }
        }
    }

    fn judge(
        &self,
        tag: &RunTag,
        result: Result<RunSummary, RunError>,
        started: Instant,
    ) -> RunEnd {
        let (job, date, run_id) = (&self.job.name, tag.date, &tag.run_id);
        let summary = match result {
            Ok(summary) => summary,
            Err(RunError::LeaseHeld(held)) => {
                eprintln!("error: {held}");
                return RunEnd::failed(Exit::LeaseHeld, None, started);
            }
            Err(RunError::Load(lost @ LoadError::LeaseLost { .. })) => {
                tracing::error!(job = %job, snapshot_date = %date, run_id, error = %lost, "run fenced off");
                eprintln!("error: {lost}");
                return RunEnd::failed(Exit::LeaseHeld, None, started);
            }
            Err(error) => {
                tracing::error!(job = %job, snapshot_date = %date, run_id, %error, "run failed");
                return RunEnd::failed(Exit::Failure, Some(error.to_string()), started);
            }
        };
        for outcome in &summary.accounts {
            if let AccountOutcome::Failed {
                account_id, error, ..
            } = outcome
            {
                eprintln!("account {account_id} failed: {error}");
            }
        }
        let (exit, outcome) = if summary.is_complete() {
            tracing::info!(job = %job, snapshot_date = %date, run_id, "snapshot committed");
            (Exit::Ok, RunOutcome::Complete)
        } else if self.context.shard.is_some() && summary.all_succeeded() {
            tracing::info!(job = %job, snapshot_date = %date, run_id,
                "shard landed: raw partitions written; `unionsnap merge` commits the date once every shard has landed");
            (Exit::Ok, RunOutcome::Landed)
        } else {
            eprintln!(
                "snapshot {date} is partial: {} failed; the other accounts are landed, nothing is committed; re-run to finish",
                summary.failed_accounts().join(", ")
            );
            let outcome = if summary.interrupted {
                RunOutcome::Interrupted
            } else {
                RunOutcome::Partial
            };
            (Exit::Partial, outcome)
        };
        RunEnd::new(exit, outcome, Some(summary), started)
    }
}

/// A run id: UTC start time and 32 random bits, e.g. `20261121T023000Z-9f3a1c2b`.
pub fn new_run_id() -> String {
    format!(
        "{}-{:08x}",
        Utc::now().format("%Y%m%dT%H%M%SZ"),
        rand::random::<u32>()
    )
}

/// The accounts of `shard`, balanced by their size in the latest complete
/// snapshot before `date` (see [`crate::shard`]).
pub async fn shard_accounts(
    job: &Job,
    shard: Shard,
    date: NaiveDate,
) -> Result<Vec<String>, LoadError> {
    let store = crate::load::open(&job.output)?;
    let mut sizes = std::collections::BTreeMap::new();
    if let Some(manifest) = crate::load::history::previous_manifest(&store, date).await? {
        for account in manifest.accounts {
            sizes.insert(account.account_id, account.members);
        }
    }
    let ids: Vec<&str> = job.accounts.iter().map(|a| a.id.as_str()).collect();
    Ok(crate::shard::accounts_of(shard, &ids, &sizes)
        .into_iter()
        .map(str::to_owned)
        .collect())
}
