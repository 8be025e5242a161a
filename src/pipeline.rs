//! One run of a job for one snapshot date: extract every account, transform,
//! load, commit — and the outcome that becomes the process exit code.
//!
//! Accounts are extracted concurrently and independently: an account that
//! fails (its quota is used up, its permission is missing) does not stop the
//! others. Their raw partitions are written, but the snapshot is only
//! committed (derived tables + manifest) when every account succeeded.
//!
//! [`commit_snapshot`] — derived tables and manifest from the accounts' raw
//! tables — is the step `run` ends with and `merge` consists of (a sharded
//! run stops before it). A [`RunContext`] carries what outlives one run in
//! `serve`: the API clients (warm tokens), the shutdown signal, the shard
//! and the progress bars.
//!
//! On shutdown ([`RunContext::cancel`]) the extraction of every account still
//! running is abandoned at once: its in-flight API calls (reads, safe to
//! drop) are dropped and nothing of it is written. Accounts that had finished
//! are written whole; the date is committed only if every account had
//! finished, otherwise it stays without a manifest and a re-run completes it.

use chrono::NaiveDate;
use polars::prelude::*;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::clients::Clients;
use crate::extract::{self, ExtractProgress, NoProgress, RawShape, RawTable};
use crate::job::{Account, AccountSpec, Job};
use crate::load::{self, layout, LoadError, ManifestAccount, ManifestFile, SnapshotWriter};
use crate::progress::Progress;
use crate::shard::Shard;
use crate::transform::{self, AccountRef};
use crate::wechat::{ApiError, OfficialAccountClient};

/// The `error` of an account whose extraction a shutdown abandoned.
pub const INTERRUPTED: &str = "interrupted by shutdown before it finished; re-run the date";

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub date: NaiveDate,
    pub run_id: String,
}

/// How one account fared.
#[derive(Debug, Clone)]
pub enum AccountOutcome {
    Snapshotted {
        account_id: String,
        members: i64,
    },
    Failed {
        account_id: String,
        error: String,
        quota: bool,
    },
}

/// The outcome of a run that got as far as the warehouse.
#[derive(Debug)]
pub struct RunSummary {
    pub date: NaiveDate,
    pub run_id: String,
    pub accounts: Vec<AccountOutcome>,
    /// Present when every account succeeded and the snapshot was committed.
    pub manifest: Option<load::Manifest>,
    pub audience: Option<DataFrame>,
    /// Every file this run wrote, with its rows and bytes.
    pub files: Vec<ManifestFile>,
    /// A shutdown abandoned at least one account.
    pub interrupted: bool,
}

impl RunSummary {
    /// True when the snapshot was committed.
    pub fn is_complete(&self) -> bool {
        self.manifest.is_some()
    }

    /// True when every account was snapshotted (committed or not: a sharded
    /// run never commits).
    pub fn all_succeeded(&self) -> bool {
        self.failed_accounts().is_empty()
    }

    pub fn failed_accounts(&self) -> Vec<&str> {
        self.accounts
            .iter()
            .filter_map(|o| match o {
                AccountOutcome::Failed { account_id, .. } => Some(account_id.as_str()),
                AccountOutcome::Snapshotted { .. } => None,
            })
            .collect()
    }
}

/// A failure that stops the whole run (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("transform failed: {0}")]
    Transform(#[from] PolarsError),
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// What outlives one run: the API clients, the shutdown signal, the shard
/// and the progress bars.
pub struct RunContext {
    pub clients: Clients,
    /// Cancelled on SIGTERM/SIGINT: stop extracting, write what finished.
    pub cancel: CancellationToken,
    /// `--shard I/N`: write raw partitions only; `merge` commits the date.
    pub shard: Option<Shard>,
    /// Per-account bars (on a terminal only).
    pub progress: Option<Progress>,
}

impl RunContext {
    /// Fresh clients, never cancelled, not sharded, no bars.
    pub fn new(job: &Job) -> Result<RunContext, ApiError> {
        Ok(RunContext {
            clients: Clients::new(job)?,
            cancel: CancellationToken::new(),
            shard: None,
            progress: None,
        })
    }
}

/// Runs `job` for `opts.date` with fresh clients.
pub async fn run(job: &Job, opts: &RunOptions) -> Result<RunSummary, RunError> {
    let context = RunContext::new(job)?;
    run_with(job, opts, &context).await
}

/// Runs `job` for `opts.date` with the clients, shutdown signal and shard of
/// `context`.
pub async fn run_with(
    job: &Job,
    opts: &RunOptions,
    context: &RunContext,
) -> Result<RunSummary, RunError> {
    let shard = context.shard.map(|s| s.to_string());
    let span = tracing::info_span!(
        "run",
        run_id = %opts.run_id,
        snapshot_date = %opts.date,
        shard = shard.as_deref().unwrap_or("-"),
    );
    run_in_span(job, opts, context).instrument(span).await
}

async fn run_in_span(
    job: &Job,
    opts: &RunOptions,
    context: &RunContext,
) -> Result<RunSummary, RunError> {
    let store = load::open(&job.output)?;
    let mut writer = SnapshotWriter::begin(store, opts.date).await?;

    let extracted = futures::future::join_all(
        job.accounts
            .iter()
            .map(|account| extract_until_cancelled(job, context, account)),
    )
    .await;

    let mut outcomes = Vec::new();
    let mut landed = Vec::new();
    let mut interrupted = false;
    for (account, result) in job.accounts.iter().zip(extracted) {
        match result {
            Ok(mut raw) => {
                drop_private_columns(&mut raw.frame, &job.privacy.drop)?;
                writer
                    .write_account_table(raw.table, &account.id, &mut raw.frame)
                    .await?;
                let shape = RawShape {
                    table: raw.table,
                    member_col: raw.member_col,
                    joined_col: raw.joined_col,
                };
                let members = account_identities(account, shape, raw.frame)?;
                outcomes.push(AccountOutcome::Snapshotted {
                    account_id: account.id.clone(),
                    members: members.identities.height() as i64,
                });
                landed.push(members);
            }
            Err(Extraction::Interrupted) => {
                interrupted = true;
                tracing::warn!(account_id = %account.id, "account interrupted by shutdown; nothing of it written");
                outcomes.push(AccountOutcome::Failed {
                    account_id: account.id.clone(),
                    quota: false,
                    error: INTERRUPTED.to_string(),
                });
            }
            Err(Extraction::Failed(error)) if error.is_fatal() => return Err(error.into()),
            Err(Extraction::Failed(error)) => {
                tracing::error!(account_id = %account.id, %error, "account failed");
                outcomes.push(AccountOutcome::Failed {
                    account_id: account.id.clone(),
                    quota: error.is_quota(),
                    error: error.to_string(),
                });
            }
        }
    }

    let complete = outcomes
        .iter()
        .all(|o| matches!(o, AccountOutcome::Snapshotted { .. }));
    if !complete || context.shard.is_some() {
        return Ok(RunSummary {
            date: opts.date,
            run_id: opts.run_id.clone(),
            accounts: outcomes,
            manifest: None,
            audience: None,
            files: writer.files().to_vec(),
            interrupted,
        });
    }

    let committed = commit_snapshot(job, &opts.run_id, writer, landed).await?;
    Ok(RunSummary {
        date: opts.date,
        run_id: opts.run_id.clone(),
        accounts: outcomes,
        files: committed.manifest.files.clone(),
        manifest: Some(committed.manifest),
        audience: Some(committed.audience),
        interrupted,
    })
}

/// One account's members in the `identities` shape, from its raw table
/// (just extracted, or read back from the store by `merge`).
#[derive(Debug, Clone)]
pub struct LandedAccount {
    pub account: AccountRef,
    pub identities: DataFrame,
}

/// Builds `account`'s identities from its raw table of the given shape.
pub fn account_identities(
    account: &Account,
    shape: RawShape,
    raw: DataFrame,
) -> PolarsResult<LandedAccount> {
    let kind = account.kind().as_str();
    let identities = transform::member_identities(
        &account.id,
        kind,
        raw.lazy(),
        shape.member_col,
        shape.joined_col,
    )
    .collect()?;
    Ok(LandedAccount {
        account: AccountRef {
            account_id: account.id.clone(),
            account_kind: kind.to_string(),
        },
        identities,
    })
}

/// Where an account's raw table lives and which columns it keys on.
pub fn raw_shape(account: &Account) -> RawShape {
    match &account.spec {
        AccountSpec::OfficialAccount { .. } => extract::official_account::SHAPE,
    }
}

/// What [`commit_snapshot`] committed.
#[derive(Debug)]
pub struct Committed {
    pub manifest: load::Manifest,
    pub audience: DataFrame,
}

/// The step `run` ends with and `merge` consists of: from the identities of
/// every account of the job (`landed`, in job order), write the derived tables
/// (identities, people, audience, overlap), delete the date's files that
/// `writer` does not list, and write the manifest last.
pub async fn commit_snapshot(
    job: &Job,
    run_id: &str,
    mut writer: SnapshotWriter,
    landed: Vec<LandedAccount>,
) -> Result<Committed, RunError> {
    let accounts: Vec<AccountRef> = landed.iter().map(|l| l.account.clone()).collect();
    let manifest_accounts = landed
        .iter()
        .map(|l| ManifestAccount {
            account_id: l.account.account_id.clone(),
            account_kind: l.account.account_kind.clone(),
            members: l.identities.height() as i64,
        })
        .collect();
    let parts = landed.into_iter().map(|l| l.identities.lazy()).collect();
    let identities = transform::identities(parts)?.collect()?;
    let mut derived = transform::derive(&accounts, identities)?;
    writer
        .write_date_table(layout::IDENTITIES, &mut derived.identities)
        .await?;
    writer
        .write_date_table(layout::PEOPLE, &mut derived.people)
        .await?;
    writer
        .write_date_table(layout::AUDIENCE, &mut derived.audience)
        .await?;
    writer
        .write_date_table(layout::OVERLAP, &mut derived.overlap)
        .await?;
    let manifest = writer
        .commit(&job.name, run_id, manifest_accounts, &layout::ALL_TABLES)
        .await?;
    Ok(Committed {
        manifest,
        audience: derived.audience,
    })
}

/// Why an account has no raw table.
enum Extraction {
    Failed(ApiError),
    Interrupted,
}

async fn extract_until_cancelled(
    job: &Job,
    context: &RunContext,
    account: &Account,
) -> Result<RawTable, Extraction> {
    if context.cancel.is_cancelled() {
        return Err(Extraction::Interrupted);
    }
    tokio::select! {
        // A shutdown wins over an extraction that is just finishing: the
        // process promised to stop.
        biased;
        () = context.cancel.cancelled() => Err(Extraction::Interrupted),
        result = extract_account(job, context, account) => result.map_err(Extraction::Failed),
    }
}

async fn extract_account(
    job: &Job,
    context: &RunContext,
    account: &Account,
) -> Result<RawTable, ApiError> {
    let span = tracing::info_span!("account", account_id = %account.id);
    async move {
        match &account.spec {
            AccountSpec::OfficialAccount { appid, secret, .. } => {
                let client = match context.clients.official_account(&account.id) {
                    Some(client) => client.clone(),
                    None => OfficialAccountClient::new(
                        context.clients.http().clone(),
                        &account.id,
                        appid,
                        secret.clone(),
                    ),
                };
                let bar = context
                    .progress
                    .as_ref()
                    .map(|p| p.account(&account.id, client.call_stats().clone()));
                let progress: &dyn ExtractProgress = match &bar {
                    Some(bar) => bar,
                    None => &NoProgress,
                };
                let calls_before = client.stats().total_calls();
                let result = extract::official_account::snapshot_with_progress(
                    &client,
                    job.api.concurrency,
                    progress,
                )
                .await;
                if let Some(bar) = &bar {
                    bar.finish(result.is_ok());
                }
                let raw = result?;
                let stats = client.stats();
                tracing::info!(
                    account_id = %account.id,
                    followers = raw.frame.height(),
                    calls = stats.total_calls().saturating_sub(calls_before),
                    "account snapshotted"
                );
                Ok(raw)
            }
        }
    }
    .instrument(span)
    .await
}

/// `privacy.drop`: free-text columns never to write.
fn drop_private_columns(frame: &mut DataFrame, drop: &[String]) -> PolarsResult<()> {
    for name in drop {
        if frame.get_column_index(name).is_some() {
            *frame = frame.drop(name)?;
        }
    }
    Ok(())
}
