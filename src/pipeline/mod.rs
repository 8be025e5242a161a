//! One run of a job for one snapshot date: extract every account, transform,
//! load, commit — and the outcome that becomes the process exit code.
//!
//! Accounts are snapshotted concurrently and independently, each in a tokio
//! task of its own (one account's CPU-bound steps never stall another's
//! crawl, and they use every core): an account that fails (its quota is used
//! up, its permission is missing) does not stop the others. Each Official
//! Account's crawl is checkpointed in the output store (`_state/`), so a
//! re-run of the date resumes it; an account whose partition an earlier run
//! landed (since the date's last commit) is not crawled again. The snapshot
//! is committed (derived tables, fenced Delta commits, the marker last) only
//! when every account succeeded, and never by a sharded run (`merge` commits
//! those). `--accounts` ([`RunContext::only`]) replaces only its accounts'
//! raw partitions and keeps the date's other committed accounts.
//!
//! - `account_run`: one account's snapshot, per kind;
//! - `finish`: [`commit_snapshot`], the step `run` ends with and `merge`
//!   consists of (derive, commit, vacuum);
//! - [`derive`]: the derived tables a bucket group at a time, over
//!   identities spilled to local disk (bounded memory).
//!
//! A [`RunContext`] carries what outlives one run in `serve`: the API clients
//! (warm tokens), the shutdown signal, the shard and the progress bars. On
//! shutdown the accounts still running are abandoned at once: their in-flight
//! API calls (reads) are dropped, what their crawl saved stays in `_state/`
//! for the next run, and the date is not committed.

mod account_run;
pub mod bars;
pub mod clients;
mod crawl_state;
pub mod derive;
mod finish;
pub mod followers;

pub use finish::{
    account_identities, commit_snapshot, read_back, Committed, LandedAccount, StartedEarly,
};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use polars::prelude::*;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::extract::checkpoint::StateError;
use crate::extract::oa_counts::Reconciled;
use crate::extract::official_account::CrawlError;
use crate::extract::{self, ExtractError};
use crate::job::{Account, Job};
use crate::load::lease::{lease_ttl, Lease, LeaseError, LeaseHeld};
use crate::load::{self, LoadError, ManifestFile, RunTag, SnapshotWriter, Store};
use crate::shard::Shard;
use crate::wechat::ApiError;
use bars::Progress;
use clients::Clients;

use account_run::{AccountFiles, AccountSnapshot, WrittenFiles};

/// The `error` of an account whose extraction a shutdown abandoned.
pub const INTERRUPTED: &str = "interrupted by shutdown before it finished; re-run the date";

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
    pub accounts: Vec<AccountOutcome>,
    /// Present when every account succeeded and the snapshot was committed.
    pub manifest: Option<load::Manifest>,
    pub audience: Option<DataFrame>,
    /// Every file this run wrote, with its rows and bytes.
    pub files: Vec<ManifestFile>,
    /// A shutdown abandoned at least one account.
    pub interrupted: bool,
    /// Per Official Account this run crawled: its follower count beside
    /// WeChat's (account id, figures).
    pub reconciliation: Vec<(String, Reconciled)>,
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

/// A failure that stops the whole run (exit 1), or, for the account-level
/// ones ([`RunError::is_account_failure`]), one account.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("transform failed: {0}")]
    Transform(#[from] PolarsError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    LeaseHeld(#[from] LeaseHeld),
    #[error(transparent)]
    Extract(#[from] ExtractError),
    /// A task of the run panicked (a bug) or was cancelled.
    #[error("{0}")]
    Task(String),
}

impl RunError {
    /// An error that fails one account (the run goes on, exit 3), as opposed
    /// to one that stops the run (exit 1).
    fn is_account_failure(&self) -> bool {
        match self {
            RunError::Api(error) => !error.is_fatal(),
            RunError::Extract(error) => !error.is_fatal(),
            _ => false,
        }
    }

    fn is_quota(&self) -> bool {
        match self {
            RunError::Api(error) => error.is_quota(),
            RunError::Extract(error) => error.is_quota(),
            _ => false,
        }
    }
}

impl From<LeaseError> for RunError {
    fn from(error: LeaseError) -> Self {
        match error {
            LeaseError::Held(held) => RunError::LeaseHeld(held),
            LeaseError::Load(error) => RunError::Load(error),
        }
    }
}

impl From<derive::DeriveError> for RunError {
    fn from(error: derive::DeriveError) -> Self {
        match error {
            derive::DeriveError::Load(error) => RunError::Load(error),
            derive::DeriveError::Polars(error) => RunError::Transform(error),
        }
    }
}

impl From<CrawlError> for RunError {
    fn from(error: CrawlError) -> Self {
        match error {
            CrawlError::Api(e) => RunError::Api(e),
            CrawlError::State(e) => RunError::State(e),
            CrawlError::Rows(e) => RunError::Transform(e),
            CrawlError::Task(e) => RunError::Task(e),
        }
    }
}

/// What outlives one run: the API clients, the shutdown signal, the shard
/// and the progress bars (clones share them).
#[derive(Clone)]
pub struct RunContext {
    pub clients: Clients,
    /// Cancelled on SIGTERM/SIGINT: stop extracting, write what finished.
    pub cancel: CancellationToken,
    /// `--shard I/N`: write raw partitions only; `merge` commits the date.
    pub shard: Option<Shard>,
    /// `--accounts`: snapshot only these accounts and replace only their
    /// raw partitions of the date; the date's other committed accounts are
    /// kept (their raw partitions read back for the derived tables).
    pub only: Option<Vec<String>>,
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
            only: None,
            progress: None,
        })
    }
}

/// Runs `job` for `run.date` with fresh clients.
pub async fn run(job: &Job, run: &RunTag) -> Result<RunSummary, RunError> {
    let context = RunContext::new(job)?;
    run_with(job, run, &context).await
}

/// Runs `job` for `run.date` with the clients, shutdown signal and shard of
/// `context`, holding the date's lease (exit 4 when another run holds it).
pub async fn run_with(
    job: &Job,
    run: &RunTag,
    context: &RunContext,
) -> Result<RunSummary, RunError> {
    let span = run_span(run, context.shard);
    async {
        // Spill and copy files of killed runs hold ids: gone before this
        // one adds its own.
        load::scratch::sweep_leftovers();
        let (store, uploads) = load::store::open_for_run(&job.output, run.clone())?;
        // Shards of one date run at once by design: each holds its own lease.
        let scope = context
            .shard
            .map(|s| format!("shard-{}-of-{}", s.index, s.count));
        let lease =
            Lease::acquire(&store, run.date, scope.as_deref(), &run.run_id, lease_ttl()).await?;
        abort_stale_uploads(uploads.as_deref(), &store).await;
        let result = run_leased(job, run, context, store, &lease).await;
        lease.release().await;
        result
    }
    .instrument(span)
    .await
}

/// The span every line of a run (or a merge) is logged in: its run id, date
/// and shard (`-` when not sharded). Tasks a run spawns take it along
/// (`in_current_span`).
pub(crate) fn run_span(run: &RunTag, shard: Option<Shard>) -> tracing::Span {
    let shard = shard.map(|s| s.to_string());
    tracing::info_span!(
        "run",
        run_id = %run.run_id,
        snapshot_date = %run.date,
        shard = shard.as_deref().unwrap_or("-"),
    )
}

/// Aborts the multipart uploads killed runs left (S3; see
/// [`load::uploads`]). A failure is only logged: the bucket's lifecycle rule
/// is the backstop, and the run's own work does not depend on it.
pub(crate) async fn abort_stale_uploads(uploads: Option<&load::store::RecordedS3>, store: &Store) {
    let Some(uploads) = uploads else { return };
    let held = |date, run_id: String| async move {
        load::lease::run_holds_a_lease(store, date, &run_id).await
    };
    match uploads.abort_stale(held).await {
        Ok(0) => {}
        Ok(aborted) => tracing::info!(aborted, "aborted the uploads of runs that were killed"),
        Err(error) => tracing::warn!(%error, "could not look for the uploads of killed runs"),
    }
}

async fn run_leased(
    job: &Job,
    tag: &RunTag,
    context: &RunContext,
    store: Store,
    lease: &Lease,
) -> Result<RunSummary, RunError> {
    // The previous complete snapshot (the identity cache of `refresh =
    // "new"` and what `changes` compares against) and the date's own, if
    // any (what this run's partitions are based on, and what a partial run
    // keeps of the other accounts), read at once.
    let (previous, current) = tokio::try_join!(
        load::history::previous_manifest(&store, tag.date),
        load::read_manifest(&store, tag.date),
    )?;
    // A run that may commit (a shard does not) starts the commit's parts
    // that need none of its accounts now, beside the crawl.
    let early = context.shard.is_none().then(|| {
        StartedEarly::start(
            &store,
            &job.output,
            tag.date,
            &tag.run_id,
            previous.as_ref(),
            job.accounts
                .iter()
                .all(|a| a.refresh() == Some(crate::job::Refresh::New)),
        )
    });
    let mut writer = SnapshotWriter::begin(store.clone(), tag.date, &tag.run_id);
    let run = Arc::new(account_run::AccountRun {
        job: Arc::new(job.clone()),
        store: store.clone(),
        context: context.clone(),
        date: tag.date,
        run_id: tag.run_id.clone(),
        base: current.as_ref().map(|m| m.run_id.clone()),
        previous: previous.clone(),
    });
    let previous = previous.as_ref();
    let selected: Vec<&Account> = job
        .accounts
        .iter()
        .filter(|a| {
            context
                .only
                .as_ref()
                .is_none_or(|only| only.contains(&a.id))
        })
        .collect();

    // WeCom accounts linked through idconvert go last: they need the
    // (openid, unionid) pairs of every other account of the run.
    let (direct, to_link): (Vec<&Account>, Vec<&Account>) =
        selected.iter().partition(|a| !extract::needs_idconvert(a));
    let first = snapshot_all(&run, &direct, None).await;
    let pairs: BTreeMap<String, String> =
        extract::learned_pairs(direct.iter().zip(&first).filter_map(|(account, result)| {
            let pairs = result.as_ref()?.as_ref().ok()?.pairs.as_ref()?;
            Some((account.kind(), pairs))
        }));
    let linked = snapshot_all(&run, &to_link, Some(Arc::new(pairs))).await;
    let (mut first, mut linked) = (first.into_iter(), linked.into_iter());
    let snapshots: Vec<Option<Result<AccountSnapshot, RunError>>> = selected
        .iter()
        .filter_map(|account| {
            if extract::needs_idconvert(account) {
                linked.next()
            } else {
                first.next()
            }
        })
        .collect();

    // Every account's identities have landed (or it failed, or was
    // interrupted); a crawled Official Account's files may still be
    // completing. A run that may commit, and whose accounts all landed,
    // derives its tables meanwhile, and completes them only if every
    // account's files are written.
    let mut landed = Vec::new();
    let mut files = Vec::new();
    for result in snapshots {
        files.push(result.map(|result| {
            result.map(|snapshot| {
                let members = snapshot.landed.members();
                landed.push(snapshot.landed);
                (members, snapshot.files)
            })
        }));
    }
    let all_landed = files.iter().all(|f| matches!(f, Some(Ok(_))));
    let mut early = early.filter(|_| all_landed);
    let derived = async {
        let early = early.as_mut()?;
        if let Some(only) = &context.only {
            // A partial run: the date's other committed accounts stay as
            // they are, and take their part in the derived tables; those
            // the job no longer has go, as a whole run would drop them.
            let mut replaced = only.clone();
            if let Some(current) = &current {
                replaced.extend(
                    current
                        .accounts
                        .iter()
                        .filter(|a| !job.accounts.iter().any(|j| j.id == a.account_id))
                        .map(|a| a.account_id.clone()),
                );
            }
            writer.replace_only(replaced);
            let all = with_kept_accounts(job, &store, current.as_ref(), landed, previous.is_some());
            landed = match all.await {
                Ok(all) => all,
                Err(error) => return Some(Err(error)),
            };
        }
        Some(finish::derive_tables(&writer, landed, early).await)
    };
    let (derived, written) = tokio::join!(derived, written_files(files, &context.cancel));

    let mut outcomes = Vec::new();
    let mut account_files = Vec::new();
    let mut interrupted = false;
    let mut reconciliation = Vec::new();
    for (account, result) in selected.iter().zip(written) {
        match result {
            Some(Ok((members, written))) => {
                account_files.extend(written.files);
                if let Some(reconciled) = written.reconciled {
                    reconciliation.push((account.id.clone(), reconciled));
                }
                outcomes.push(AccountOutcome::Snapshotted {
                    account_id: account.id.clone(),
                    members,
                });
            }
            None => {
                interrupted = true;
                tracing::warn!(account_id = %account.id, "account interrupted by shutdown; its crawl state is kept for the next run");
                outcomes.push(AccountOutcome::Failed {
                    account_id: account.id.clone(),
                    quota: false,
                    error: INTERRUPTED.to_string(),
                });
            }
            Some(Err(error)) if error.is_account_failure() => {
                tracing::error!(account_id = %account.id, %error, "account failed");
                outcomes.push(AccountOutcome::Failed {
                    account_id: account.id.clone(),
                    quota: error.is_quota(),
                    error: error.to_string(),
                });
            }
            Some(Err(error)) => {
                if let Some(Ok(derived)) = derived {
                    derived.abort().await;
                }
                return Err(error);
            }
        }
    }
    for file in account_files {
        writer.add_file(file);
    }

    let complete = outcomes
        .iter()
        .all(|o| matches!(o, AccountOutcome::Snapshotted { .. }));
    let (early, derived) = match (early, derived, complete) {
        (Some(early), Some(derived), true) => (early, derived?),
        (_, derived, _) => {
            if let Some(Ok(derived)) = derived {
                derived.abort().await;
            }
            return Ok(RunSummary {
                accounts: outcomes,
                manifest: None,
                audience: None,
                files: writer.files().to_vec(),
                interrupted,
                reconciliation,
            });
        }
    };
    let committed = finish::commit_derived(job, lease, writer, derived, early).await?;
    Ok(RunSummary {
        accounts: outcomes,
        files: committed.manifest.files.clone(),
        manifest: Some(committed.manifest),
        audience: Some(committed.audience),
        interrupted,
        reconciliation,
    })
}

/// The accounts' `files` once written: those still completing are awaited
/// together, until the shutdown signal (then they are `None`, and stopped).
async fn written_files(
    files: Vec<Option<Result<(i64, AccountFiles), RunError>>>,
    cancel: &CancellationToken,
) -> Vec<Option<Result<(i64, WrittenFiles), RunError>>> {
    let writing = files.into_iter().map(|f| async move {
        let (members, files) = match f? {
            Ok(landed) => landed,
            Err(error) => return Some(Err(error)),
        };
        let written = match files {
            AccountFiles::Written(written) => Ok(written),
            completing => tokio::select! {
                biased;
                () = cancel.cancelled() => return None,
                written = completing.written() => written,
            },
        };
        Some(written.map(|written| (members, written)))
    });
    futures::future::join_all(writing).await
}

/// `landed` (the accounts a partial run snapshotted) with, in job order, the
/// other accounts of the job that the date's committed snapshot holds, read
/// back from their raw partitions.
async fn with_kept_accounts(
    job: &Job,
    store: &Store,
    current: Option<&load::Manifest>,
    mut landed: Vec<LandedAccount>,
    with_changes: bool,
) -> Result<Vec<LandedAccount>, RunError> {
    let Some(current) = current else {
        return Ok(landed);
    };
    let mut all = Vec::with_capacity(job.accounts.len());
    for account in &job.accounts {
        if let Some(index) = landed
            .iter()
            .position(|l| l.account.account_id == account.id)
        {
            all.push(landed.remove(index));
            continue;
        }
        let table = extract::raw_shape(account).table;
        let Some(file) = load::account_file(current, table, &account.id) else {
            continue;
        };
        let groups = load::account_file(current, load::layout::GROUP_MEMBERS, &account.id);
        let groups = groups.map(|file| file.path.as_str());
        let mut kept = finish::read_back(store, account, &file.path, groups, with_changes).await?;
        kept.unlicensed_staff_left_out = current
            .accounts
            .iter()
            .find(|a| a.account_id == account.id)
            .map_or(0, |a| a.unlicensed_staff_left_out);
        all.push(kept);
    }
    Ok(all)
}

/// Snapshots `accounts` at once, each in a task of its own, so that one
/// account's CPU-bound steps (decoding answers, encoding Parquet) never stall
/// another's crawl, until the shutdown signal: accounts not finished by then
/// are `None` (their tasks are stopped). A shutdown wins over an account that
/// is just finishing, as the process promised to stop.
async fn snapshot_all(
    run: &Arc<account_run::AccountRun>,
    accounts: &[&Account],
    pairs: Option<Arc<BTreeMap<String, String>>>,
) -> Vec<Option<Result<AccountSnapshot, RunError>>> {
    let mut results: Vec<Option<Result<AccountSnapshot, RunError>>> =
        accounts.iter().map(|_| None).collect();
    let cancel = &run.context.cancel;
    if cancel.is_cancelled() {
        return results;
    }
    let mut tasks = JoinSet::new();
    let mut index_of = HashMap::new();
    for (index, account) in accounts.iter().enumerate() {
        let (run, account, pairs) = (run.clone(), (*account).clone(), pairs.clone());
        let task = tasks
            .spawn(async move { run.snapshot(&account, pairs.as_deref()).await }.in_current_span());
        index_of.insert(task.id(), index);
    }
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => {
                tasks.shutdown().await;
                return results;
            }
            joined = tasks.join_next_with_id() => {
                let Some(joined) = joined else { return results };
                let (id, result) = match joined {
                    Ok((id, result)) => (id, result),
                    Err(error) => (error.id(), Err(RunError::Task(format!(
                        "the snapshot of an account stopped: {error}"
                    )))),
                };
                results[index_of[&id]] = Some(result);
            }
        }
    }
}
