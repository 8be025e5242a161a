//! One run of a job for one snapshot date: extract every account, transform,
//! load, commit — and the outcome that becomes the process exit code.
//!
//! Accounts are snapshotted concurrently and independently: an account that
//! fails (its quota is used up, its permission is missing) does not stop the
//! others. Each account's crawl is checkpointed in the output store
//! (`_state/`), so a re-run of the date resumes it; an account whose
//! partition an earlier run already wrote is not crawled again. The snapshot
//! is committed (derived tables, then the manifest) only when every account
//! succeeded.

use chrono::NaiveDate;
use polars::prelude::*;
use tracing::Instrument;

use crate::extract::checkpoint::{Checkpoint, CrawlStore, StateError};
use crate::extract::known::KnownFollowers;
use crate::extract::official_account::{self, CrawlError};
use crate::extract::{self, ExtractError, RawTable};
use crate::job::{Account, AccountKind, AccountSpec, Job, Refresh};
use crate::load::followers::{self as followers_load, CarryOver};
use crate::load::lease::{lease_ttl, Lease, LeaseError, LeaseHeld};
use crate::load::state::{self, StateStore};
use crate::load::{self, layout, LoadError, Manifest, ManifestAccount, SnapshotWriter, Store};
use crate::transform::privacy::Pseudonymizer;
use crate::transform::{self, AccountRef};
use crate::wechat::official_account::{BATCHGET_PATH, USER_GET_PATH};
use crate::wechat::{ApiError, OfficialAccountClient, WeChatHttp};

use std::collections::BTreeMap;

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
}

impl RunSummary {
    /// True when the snapshot was committed.
    pub fn is_complete(&self) -> bool {
        self.manifest.is_some()
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
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    LeaseHeld(#[from] LeaseHeld),
    #[error(transparent)]
    Extract(#[from] ExtractError),
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

impl From<CrawlError> for RunError {
    fn from(error: CrawlError) -> Self {
        match error {
            CrawlError::Api(e) => RunError::Api(e),
            CrawlError::State(e) => RunError::State(e),
            CrawlError::Rows(e) => RunError::Transform(e),
        }
    }
}

/// One account's part of the snapshot.
struct AccountSnapshot {
    file: load::commit::ManifestFile,
    /// The account's rows of `identities`.
    identities: DataFrame,
    /// (openid, unionid) as WeChat gave them, for idconvert: Official
    /// Account and Mini Program members only, and only when ids are not
    /// pseudonymized (idconvert needs the real ones).
    pairs: Option<DataFrame>,
}

/// Runs `job` for `opts.date`, holding the date's lease (exit 4 when another
/// run holds it).
pub async fn run(job: &Job, opts: &RunOptions) -> Result<RunSummary, RunError> {
    let store = load::open(&job.output)?;
    let lease = match Lease::acquire(&store, opts.date, &opts.run_id, lease_ttl()).await {
        Ok(lease) => lease,
        Err(LeaseError::Held(held)) => return Err(RunError::LeaseHeld(held)),
        Err(LeaseError::Load(error)) => return Err(error.into()),
    };
    let result = run_leased(job, opts, store).await;
    lease.release().await;
    result
}

async fn run_leased(job: &Job, opts: &RunOptions, store: Store) -> Result<RunSummary, RunError> {
    // The previous complete snapshot: the identity cache of `refresh = "new"`
    // and what `changes` compares against.
    let previous = load::history::previous_manifest(&store, opts.date).await?;
    let mut writer = SnapshotWriter::begin(store.clone(), opts.date).await?;
    let http = WeChatHttp::new(&job.api)?;

    // WeCom accounts linked through idconvert go last: they need the
    // (openid, unionid) pairs of every other account of the run.
    let previous = previous.as_ref();
    let first = futures::future::join_all(
        job.accounts
            .iter()
            .filter(|a| !extract::needs_idconvert(a))
            .map(|account| {
                snapshot_account(job, &store, &http, account, opts.date, previous, None)
            }),
    )
    .await;
    let pairs = extract::learned_pairs(
        job.accounts
            .iter()
            .filter(|a| !extract::needs_idconvert(a))
            .zip(&first)
            .filter_map(|(account, result)| {
                let pairs = result.as_ref().ok()?.pairs.as_ref()?;
                Some((account.kind(), pairs))
            }),
    );
    let linked = futures::future::join_all(
        job.accounts
            .iter()
            .filter(|a| extract::needs_idconvert(a))
            .map(|account| {
                snapshot_account(
                    job,
                    &store,
                    &http,
                    account,
                    opts.date,
                    previous,
                    Some(&pairs),
                )
            }),
    )
    .await;
    let (mut first, mut linked) = (first.into_iter(), linked.into_iter());
    let snapshots: Vec<Result<AccountSnapshot, RunError>> = job
        .accounts
        .iter()
        .filter_map(|account| {
            if extract::needs_idconvert(account) {
                linked.next()
            } else {
                first.next()
            }
        })
        .collect();

    let mut outcomes = Vec::new();
    let mut identities = Vec::new();
    for (account, result) in job.accounts.iter().zip(snapshots) {
        match result {
            Ok(snapshot) => {
                writer.add_file(snapshot.file);
                outcomes.push(AccountOutcome::Snapshotted {
                    account_id: account.id.clone(),
                    members: snapshot.identities.height() as i64,
                });
                identities.push(snapshot.identities.lazy());
            }
            Err(error) if error.is_account_failure() => {
                tracing::error!(account_id = %account.id, %error, "account failed");
                outcomes.push(AccountOutcome::Failed {
                    account_id: account.id.clone(),
                    quota: error.is_quota(),
                    error: error.to_string(),
                });
            }
            Err(error) => return Err(error),
        }
    }

    let complete = outcomes
        .iter()
        .all(|o| matches!(o, AccountOutcome::Snapshotted { .. }));
    if !complete {
        return Ok(RunSummary {
            date: opts.date,
            run_id: opts.run_id.clone(),
            accounts: outcomes,
            manifest: None,
            audience: None,
        });
    }

    let accounts: Vec<AccountRef> = job
        .accounts
        .iter()
        .map(|a| AccountRef {
            account_id: a.id.clone(),
            account_kind: a.kind().as_str().to_string(),
        })
        .collect();
    let identities = transform::identities(identities)?.collect()?;
    let previous_identities = match &previous {
        Some(manifest) => {
            tracing::info!(previous_date = %manifest.snapshot_date, "changes since the previous complete snapshot");
            Some(load::history::identities_of(&store, manifest).await?)
        }
        None => None,
    };
    let mut derived = transform::derive_since(&accounts, identities, previous_identities)?;
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
    writer
        .write_date_table(layout::CHANGES, &mut derived.changes)
        .await?;

    let manifest_accounts = accounts
        .iter()
        .zip(&outcomes)
        .map(|(a, outcome)| ManifestAccount {
            account_id: a.account_id.clone(),
            account_kind: a.account_kind.clone(),
            members: match outcome {
                AccountOutcome::Snapshotted { members, .. } => members.to_owned(),
                AccountOutcome::Failed { .. } => 0,
            },
        })
        .collect();
    let manifest = writer
        .commit(
            &job.name,
            &opts.run_id,
            manifest_accounts,
            &layout::ALL_TABLES,
        )
        .await?;
    // The date is complete: its crawl state has served its purpose.
    state::delete_date_state(&store, opts.date).await?;
    Ok(RunSummary {
        date: opts.date,
        run_id: opts.run_id.clone(),
        accounts: outcomes,
        manifest: Some(manifest),
        audience: Some(derived.audience),
    })
}

/// Snapshots one account (in a tracing span carrying its id).
async fn snapshot_account(
    job: &Job,
    store: &Store,
    http: &WeChatHttp,
    account: &Account,
    date: NaiveDate,
    previous: Option<&Manifest>,
    pairs: Option<&BTreeMap<String, String>>,
) -> Result<AccountSnapshot, RunError> {
    let span = tracing::info_span!("account", account_id = %account.id);
    snapshot_account_in_span(job, store, http, account, date, previous, pairs)
        .instrument(span)
        .await
}

async fn snapshot_account_in_span(
    job: &Job,
    store: &Store,
    http: &WeChatHttp,
    account: &Account,
    date: NaiveDate,
    previous: Option<&Manifest>,
    pairs: Option<&BTreeMap<String, String>>,
) -> Result<AccountSnapshot, RunError> {
    let refresh = match &account.spec {
        AccountSpec::OfficialAccount { refresh, .. }
        | AccountSpec::ThirdPartyOfficialAccount { refresh, .. } => *refresh,
        AccountSpec::Wecom { .. } | AccountSpec::AppLogins { .. } => {
            let raw = match pairs {
                Some(pairs) => {
                    extract::extract_idconvert(account, http, job.api.concurrency, pairs).await?
                }
                None => extract::extract_raw(account, http, job.api.concurrency).await?,
            };
            return write_raw(job, store, account, date, raw).await;
        }
    };
    let Some(client) = extract::official_account_client(account, http) else {
        unreachable!("an Official Account has a client")
    };
    let result =
        snapshot_official_account(job, store, &client, account, refresh, date, previous).await;
    tracing::info!(account_id = %account.id, calls = %client.stats(), "WeChat calls");
    result
}

/// Writes the raw table of a WeCom or app-login account: `privacy.drop`ped
/// columns removed, ids pseudonymized if so configured.
async fn write_raw(
    job: &Job,
    store: &Store,
    account: &Account,
    date: NaiveDate,
    raw: RawTable,
) -> Result<AccountSnapshot, RunError> {
    let mut frame = raw.frame;
    for name in &job.privacy.drop {
        if frame.get_column_index(name).is_some() {
            frame = frame.drop(name)?;
        }
    }
    // idconvert needs WeChat's own ids: kept aside before pseudonymizing.
    let pseudonymizer = Pseudonymizer::for_job(&job.privacy);
    let pairs = (account.kind() == AccountKind::MiniProgram && pseudonymizer.is_none())
        .then(|| frame.select(["openid", "unionid"]).ok())
        .flatten();
    if let Some(p) = &pseudonymizer {
        frame = p.frame(frame)?;
    }
    let path = layout::account_file(raw.table, date, &account.id);
    let file = load::commit::write_file(store, raw.table, path, &mut frame).await?;
    let identities = transform::member_identities(
        &account.id,
        account.kind().as_str(),
        frame.lazy(),
        raw.member_col,
        raw.joined_col,
    )
    .collect()?;
    tracing::info!(account_id = %account.id, rows = file.rows, members = identities.height(), "account snapshotted");
    Ok(AccountSnapshot {
        file,
        identities,
        pairs,
    })
}

async fn snapshot_official_account(
    job: &Job,
    store: &Store,
    client: &OfficialAccountClient,
    account: &Account,
    refresh: Refresh,
    date: NaiveDate,
    previous: Option<&Manifest>,
) -> Result<AccountSnapshot, RunError> {
    let state = StateStore::new(store.clone(), date, &account.id);
    let partition = layout::account_file(layout::FOLLOWERS, date, &account.id).to_string();
    let checkpoint = match state.load_checkpoint().await? {
        Some(checkpoint) => {
            tracing::info!(
                account_id = %account.id,
                pages = checkpoint.pages,
                profiled = checkpoint.profiled,
                complete = checkpoint.complete,
                "resuming from the checkpoint of an earlier run"
            );
            checkpoint
        }
        None => {
            let cache_date = match refresh {
                Refresh::New => previous
                    .filter(|m| {
                        m.files
                            .iter()
                            .any(|f| f.path == previous_partition(m.snapshot_date, &account.id))
                    })
                    .map(|m| m.snapshot_date),
                Refresh::Full => None,
            };
            Checkpoint::new(refresh.as_str(), cache_date)
        }
    };

    let pseudonymizer = Pseudonymizer::for_job(&job.privacy);
    if checkpoint.complete {
        let (followers, bytes) = followers_load::read_identities(store, &partition).await?;
        let rows = followers.height() as u64;
        return Ok(AccountSnapshot {
            file: load::commit::ManifestFile {
                table: layout::FOLLOWERS.to_string(),
                path: partition,
                rows,
                bytes,
            },
            pairs: id_pairs(&followers, pseudonymizer.is_some()),
            identities: account_identities(account, followers)?,
        });
    }

    let cache_path = checkpoint
        .cache_date
        .map(|d| previous_partition(d, &account.id));
    let mut known = match &cache_path {
        Some(path) => Some(KnownFollowers::new(
            &followers_load::read_openids(store, path).await?,
            pseudonymizer.clone(),
        )),
        None => None,
    };
    // The quota is read beside the crawl, not before it: the plan only
    // warns, and two calls of latency should not delay the critical path.
    let known_len = known.as_ref().map_or(0, |k| k.len());
    let (_, crawl) = tokio::join!(
        plan_quota(client, previous, &account.id, known_len),
        official_account::crawl(
            client,
            job.api.concurrency,
            &state,
            checkpoint,
            known.as_mut()
        ),
    );
    let crawl = crawl?;
    let carry = match (&cache_path, &known) {
        (Some(path), Some(known)) => Some(CarryOver {
            path: path.clone(),
            known,
        }),
        _ => None,
    };
    let written = followers_load::write_followers(
        store,
        date,
        &account.id,
        &state,
        crawl.segments,
        carry,
        &job.privacy,
    )
    .await?;
    tracing::info!(
        account_id = %account.id,
        listed = crawl.listed,
        carried_over = crawl.carried_over,
        followers = written.file.rows,
        "account snapshotted"
    );
    let mut done = state.load_checkpoint().await?.unwrap_or_default();
    done.complete = true;
    state.save_checkpoint(&done).await?;
    state.delete_crawl_data().await?;
    Ok(AccountSnapshot {
        file: written.file,
        pairs: id_pairs(&written.identities, pseudonymizer.is_some()),
        identities: account_identities(account, written.identities)?,
    })
}

/// The (openid, unionid) columns of followers, unless they are pseudonyms.
fn id_pairs(followers: &DataFrame, pseudonymized: bool) -> Option<DataFrame> {
    if pseudonymized {
        return None;
    }
    followers.select(["openid", "unionid"]).ok()
}

fn previous_partition(date: NaiveDate, account_id: &str) -> String {
    layout::account_file(layout::FOLLOWERS, date, account_id).to_string()
}

fn account_identities(account: &Account, followers: DataFrame) -> PolarsResult<DataFrame> {
    transform::member_identities(
        &account.id,
        account.kind().as_str(),
        followers.lazy(),
        "openid",
        "subscribe_time",
    )
    .collect()
}

/// Reads today's remaining user/get and batchget quota and says when the
/// crawl will likely not finish today. The crawl goes ahead either way: what
/// it fetches is kept, and the next run finishes it.
async fn plan_quota(
    client: &OfficialAccountClient,
    previous: Option<&Manifest>,
    account_id: &str,
    known: usize,
) {
    let expected = previous
        .and_then(|m| m.accounts.iter().find(|a| a.account_id == account_id))
        .map(|a| a.members.max(0) as u64);
    for (path, per_call) in [(USER_GET_PATH, 10_000u64), (BATCHGET_PATH, 100)] {
        match client.quota(path).await {
            Ok(quota) => {
                let needed = expected.map(|n| {
                    let to_fetch = if path == BATCHGET_PATH {
                        n.saturating_sub(known as u64)
                    } else {
                        n
                    };
                    to_fetch.div_ceil(per_call) + 1
                });
                match needed {
                    Some(needed) if quota.remain < needed => tracing::warn!(
                        account_id, endpoint = path, remain = quota.remain, needed,
                        "today's quota will likely run out before the crawl finishes; what is fetched is kept and the next run continues"
                    ),
                    _ => tracing::info!(account_id, endpoint = path, remain = quota.remain, daily_limit = quota.daily_limit, "quota"),
                }
            }
            Err(error) => {
                tracing::warn!(account_id, endpoint = path, %error, "cannot read the quota; crawling anyway")
            }
        }
    }
}
