//! One account's snapshot, per kind: the streaming, checkpointed crawl of an
//! Official Account (own AppSecret or third-party), or the raw table of a
//! WeCom corp or an app-login import.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use polars::prelude::*;
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use super::followers::{self as followers_load, Carried, CarryOver, FollowersWriter};
use crate::extract::checkpoint::{Checkpoint, CrawlStore, StateError};
use crate::extract::idconvert::IdMemory;
use crate::extract::known::KnownFollowers;
use crate::extract::oa_counts::{self, Reconciled, TagMembers, WeChatCounts};
use crate::extract::official_account;
use crate::extract::{self, ExtractProgress, NoProgress, RawTable};
use crate::job::{Account, AccountKind, Job, Refresh};
use crate::load::read::LocalCopy;
use crate::load::state::{Landed, StateStore};
use crate::load::{self, layout, Manifest, ManifestFile, Store};
use crate::transform::privacy::TablePrivacy;
use crate::wechat::official_account::{BATCHGET_PATH, USER_GET_PATH};
use crate::wechat::{ApiError, OfficialAccountClient};

use super::derive;
use super::finish::{account_identities, LandedAccount};
use super::{RunContext, RunError};
use crate::transform;

/// What every account of one run shares (owned: each account runs in a
/// task of its own).
pub(super) struct AccountRun {
    pub job: Arc<Job>,
    pub store: Store,
    pub context: RunContext,
    pub date: NaiveDate,
    pub run_id: String,
    /// The run id of the date's snapshot marker when this run started: what
    /// the partitions it lands are based on ([`Landed::base`]).
    pub base: Option<String>,
    /// The previous complete snapshot (identity cache, changes).
    pub previous: Option<Manifest>,
}

/// One account's part of the snapshot, as soon as its rows of `identities`
/// have landed: the derivation can start while its files are completed.
pub(super) struct AccountSnapshot {
    /// The account's rows of `identities`.
    pub landed: LandedAccount,
    /// (openid, unionid) as WeChat gave them, for idconvert: Official
    /// Account and Mini Program members only, and only when ids are not
    /// pseudonymized (idconvert needs the real ones).
    pub pairs: Option<DataFrame>,
    /// Its files, written or being completed.
    pub files: AccountFiles,
}

/// An account's files and what came with them.
pub(super) struct WrittenFiles {
    /// The account's raw file, and its `id_links` (or `group_members`,
    /// `tags`, `reconciliation`) files if it has them.
    pub files: Vec<ManifestFile>,
    /// An Official Account's follower count beside WeChat's, when this run
    /// crawled it.
    pub reconciled: Option<Reconciled>,
}

/// The files of an account whose identities have landed.
pub(super) enum AccountFiles {
    Written(WrittenFiles),
    /// A crawled Official Account's: its followers partition still being
    /// encoded (the followers carried over come last), then its counts and
    /// the crawl state, in a task of its own; stopped if dropped.
    Completing(AbortOnDropHandle<Result<WrittenFiles, RunError>>),
}

impl AccountFiles {
    /// The files, once written.
    pub async fn written(self) -> Result<WrittenFiles, RunError> {
        match self {
            AccountFiles::Written(files) => Ok(files),
            AccountFiles::Completing(task) => match task.await {
                Ok(result) => result,
                Err(error) => Err(RunError::Task(format!(
                    "the completion of an account's files stopped: {error}"
                ))),
            },
        }
    }
}

impl AccountRun {
    /// Snapshots one account (in a tracing span carrying its id). `pairs` is
    /// given to WeCom accounts linked through idconvert.
    pub async fn snapshot(
        self: &Arc<Self>,
        account: &Account,
        pairs: Option<&BTreeMap<String, String>>,
    ) -> Result<AccountSnapshot, RunError> {
        let span = tracing::info_span!("account", account_id = %account.id);
        self.snapshot_in_span(account, pairs).instrument(span).await
    }

    async fn snapshot_in_span(
        self: &Arc<Self>,
        account: &Account,
        pairs: Option<&BTreeMap<String, String>>,
    ) -> Result<AccountSnapshot, RunError> {
        let (job, http) = (&*self.job, self.context.clients.http());
        let refresh = match account.refresh() {
            Some(refresh) => refresh,
            None => {
                let raw = match pairs {
                    Some(pairs) => {
                        // With pseudonymized ids there is no memory to
                        // read or write (it would hold WeChat's own ids).
                        let remember = !TablePrivacy::for_job(&job.privacy).pseudonymizes();
                        let memory = match remember {
                            true => Some(self.previous_id_links(account).await?),
                            false => None,
                        };
                        extract::extract_idconvert(
                            account,
                            http,
                            job.api.concurrency,
                            pairs,
                            memory,
                            self.date,
                        )
                        .await?
                    }
                    None => extract::extract_raw(account, http, job.api.concurrency).await?,
                };
                return write_raw(self, account, raw).await;
            }
        };
        let client = match self.context.clients.official_account(&account.id) {
            Some(client) => client.clone(),
            None => extract::official_account_client(account, http).ok_or_else(|| {
                RunError::Api(ApiError::InvalidRequest {
                    account_id: account.id.clone(),
                    endpoint: "extract",
                    detail: "no client for an Official Account (a bug)".to_string(),
                })
            })?,
        };
        let bar = self
            .context
            .progress
            .as_ref()
            .map(|p| p.account(&account.id, client.call_stats().clone()));
        let progress: &dyn ExtractProgress = match &bar {
            Some(bar) => bar,
            None => &NoProgress,
        };
        let result = snapshot_official_account(self, &client, account, refresh, progress).await;
        if let Some(bar) = &bar {
            bar.finish(result.is_ok());
        }
        tracing::info!(account_id = %account.id, calls = %client.stats(), "WeChat calls");
        result
    }

    /// The `id_links` of `account` in the previous complete snapshot: the
    /// version that snapshot names, never whatever is at a path now (empty
    /// when it has none).
    async fn previous_id_links(&self, account: &Account) -> Result<IdMemory, RunError> {
        let file = self
            .previous
            .as_ref()
            .and_then(|previous| load::account_file(previous, layout::ID_LINKS, &account.id));
        Ok(match file {
            Some(file) => IdMemory::from_frame(&load::read_file(&self.store, &file.path).await?)?,
            None => IdMemory::default(),
        })
    }
}

/// Writes the raw table of a WeCom or app-login account: `privacy.drop`ped
/// columns removed, ids pseudonymized if so configured.
async fn write_raw(
    run: &AccountRun,
    account: &Account,
    raw: RawTable,
) -> Result<AccountSnapshot, RunError> {
    let (job, store, date) = (&*run.job, &run.store, run.date);
    let privacy = TablePrivacy::for_job(&job.privacy);
    // idconvert needs WeChat's own ids: kept aside before pseudonymizing.
    let pairs = (account.kind() == AccountKind::MiniProgram
        && !privacy.pseudonymizes()
        && links_contacts(job))
    .then(|| raw.frame.select(["openid", "unionid"]).ok())
    .flatten();
    let mut frame = privacy.apply(raw.frame)?;
    let path = layout::account_file(raw.table, date, &account.id, &run.run_id);
    let file = load::commit::write_file(store, raw.table, path, &mut frame).await?;
    let mut files = vec![file.clone()];
    if let Some(mut links) = raw.id_links {
        let path = layout::account_file(layout::ID_LINKS, date, &account.id, &run.run_id);
        files.push(load::commit::write_file(store, layout::ID_LINKS, path, &mut links).await?);
    }
    // Group members go through the same privacy as contacts: the same
    // external_userid gets the same pseudonym, so the two meet in one member.
    let group_members = match raw.group_members {
        Some(members) => {
            let mut members = privacy.apply(members)?;
            let table = layout::GROUP_MEMBERS;
            let path = layout::account_file(table, date, &account.id, &run.run_id);
            files.push(load::commit::write_file(store, table, path, &mut members).await?);
            Some(members)
        }
        None => None,
    };
    let left_out = raw.unlicensed_staff_left_out;
    StateStore::new(store.clone(), date, &account.id)
        .save_landed(&Landed {
            unlicensed_staff_left_out: left_out,
            also: files[1..].iter().map(Into::into).collect(),
            ..Landed::new(&run.run_id, run.base.as_deref(), &file)
        })
        .await?;
    let mut landed = LandedAccount::new(account, run.previous.is_some())?;
    landed.unlicensed_staff_left_out = left_out;
    landed.push_with_groups(extract::raw_shape(account), frame, group_members)?;
    let landed = landed.finish()?;
    tracing::info!(account_id = %account.id, rows = file.rows, members = landed.members(), "account snapshotted");
    Ok(AccountSnapshot {
        landed,
        pairs,
        files: AccountFiles::Written(WrittenFiles {
            files,
            reconciled: None,
        }),
    })
}

async fn snapshot_official_account(
    run: &Arc<AccountRun>,
    client: &OfficialAccountClient,
    account: &Account,
    refresh: Refresh,
    progress: &dyn ExtractProgress,
) -> Result<AccountSnapshot, RunError> {
    let (job, store, date, previous) = (&*run.job, &run.store, run.date, run.previous.as_ref());
    let state = StateStore::new(store.clone(), date, &account.id);
    let fresh = || {
        let cache_path = match refresh {
            Refresh::New => previous.and_then(|m| previous_partition(m, &account.id)),
            Refresh::Full => None,
        };
        Checkpoint::new(refresh, cache_path)
    };
    let mut checkpoint = match state.load_checkpoint().await? {
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
        None => fresh(),
    };

    let privacy = TablePrivacy::for_job(&job.privacy);
    let mut landing = Landing {
        landed: LandedAccount::new(account, previous.is_some())?,
        pairs: IdPairs::wanted(!privacy.pseudonymizes() && links_contacts(job)),
        shape: extract::raw_shape(account),
        changes: None,
    };
    if checkpoint.complete {
        // The partition an earlier run landed, if no commit of the date
        // came since (then it is an earlier generation's: crawl again).
        match state.load_landed().await? {
            Some(landed) if landed.base == run.base => {
                tracing::info!(account_id = %account.id, path = %landed.partition.path, "the partition an earlier run landed is taken as it is");
                followers_load::for_each_identities(store, &landed.partition.path, |rows| {
                    landing.push(rows)
                })
                .await?;
                let (landed_account, pairs) = landing.finish()?;
                return Ok(AccountSnapshot {
                    landed: landed_account,
                    pairs,
                    files: AccountFiles::Written(WrittenFiles {
                        files: landed.files(),
                        reconciled: None,
                    }),
                });
            }
            _ => {
                tracing::info!(account_id = %account.id, "the earlier run's partition is not this generation's: crawling again");
                checkpoint = fresh();
            }
        }
    }

    let cache_path = checkpoint.cache_path.clone();
    // The crawl tells who joined and who left when its cache is the
    // partition of the snapshot `changes` compares with (a crawl resumed
    // from an earlier run may hold another).
    let compared = previous.and_then(|m| previous_partition(m, &account.id));
    if cache_path.is_some() && cache_path == compared {
        landing.changes = Some(CrawledChanges::default());
    }
    // Read while the crawl starts listing (see `official_account::crawl`),
    // from a local copy of the partition that the carry-over reads next.
    let pseudonymizer = privacy.pseudonymizer().cloned();
    let (copied, copy) = oneshot::channel();
    let read_known = async {
        let Some(path) = &cache_path else {
            return Ok::<_, RunError>(None);
        };
        let mut known = KnownFollowers::empty(previous_rows(previous, &account.id), pseudonymizer);
        let local = LocalCopy::fetch(store, path).await?;
        followers_load::for_each_openids(&local, |openids| known.add(openids))?;
        // The carry-over is gone if the partition's writer stopped.
        let _ = copied.send(local);
        Ok(Some(known))
    };
    // The partition is written while the crawl runs: each segment the crawl
    // saves goes on to the followers file and the identity spill, in a task
    // of its own (after those an earlier run of the date saved), and so do
    // the followers carried over, as soon as the whole list is read.
    let followers = FollowersWriter::create(store, date, &account.id, &run.run_id, privacy).await?;
    let (segments, saved_segments) = mpsc::channel(SEGMENTS_IN_FLIGHT);
    let (listed, listed_known) = oneshot::channel();
    let carry = cache_path.is_some().then_some(PendingCarry {
        previous: copy,
        known: listed_known,
    });
    let landing = tokio::spawn(
        land_segments(
            state.clone(),
            checkpoint.segments,
            saved_segments,
            carry,
            followers,
            landing,
        )
        .in_current_span(),
    );
    // Aborted if this account is abandoned (a shutdown drops this future).
    let landing = AbortOnDropHandle::new(landing);
    let tee = TeeStore {
        state: &state,
        segments,
    };
    // The quota is read beside the crawl, not before it: the plan only
    // warns, and two calls of latency should not delay the critical path.
    let known_len = if cache_path.is_some() {
        previous_rows(previous, &account.id)
    } else {
        0
    };
    let crawl = async {
        let crawl = official_account::crawl(
            client,
            job.api.concurrency,
            &tee,
            checkpoint,
            read_known,
            listed,
            progress,
        )
        .await;
        // Logged as the crawl ends: its partition may still be taking the
        // last rows.
        if let Ok(crawl) = &crawl {
            tracing::info!(account_id = %account.id, listed = crawl.listed, segments = crawl.segments, "crawl finished");
        }
        crawl
    };
    let (_, counts, crawl) = tokio::join!(
        plan_quota(client, previous, &account.id, known_len),
        oa_counts::fetch(client, date),
        crawl,
    );
    drop(tee);
    let landed = match landing.await {
        Ok(landed) => landed,
        Err(error) => Err(RunError::Task(format!(
            "the writer of the followers partition stopped: {error}"
        ))),
    };
    let (followers, landing, crawl) = match (crawl, landed) {
        (Ok(crawl), Ok((followers, landing))) => (followers, landing, crawl),
        // The segment writer's own error explains a crawl it stopped.
        (_, Err(error)) => return Err(error),
        (Err(error), Ok((followers, _))) => {
            followers.abort().await;
            return Err(error);
        }
    };
    let (landed, pairs) = landing.finish()?;
    // The identities have landed: the rest is the followers partition's
    // last row groups (the followers carried over, encoded on one core),
    // the counts and the crawl state, while the derivation starts.
    let (run, account) = (run.clone(), account.clone());
    let completing = async move {
        let tag_members = followers.tag_members().cloned();
        let file = followers.finish().await?;
        tracing::info!(
            account_id = %account.id,
            carried_over = crawl.carried_over,
            followers = file.rows,
            "account snapshotted"
        );
        let (also, reconciled) =
            write_counts(&run, &account, &counts, tag_members.as_ref()).await?;
        state
            .save_landed(&Landed {
                also: also.iter().map(Into::into).collect(),
                ..Landed::new(&run.run_id, run.base.as_deref(), &file)
            })
            .await?;
        let mut done = state.load_checkpoint().await?.unwrap_or_default();
        done.complete = true;
        state.save_checkpoint(&done).await?;
        state.delete_crawl_data().await?;
        let mut files = vec![file];
        files.extend(also);
        Ok(WrittenFiles {
            files,
            reconciled: Some(reconciled),
        })
    };
    let completing = tokio::spawn(completing.in_current_span());
    Ok(AccountSnapshot {
        landed,
        pairs,
        files: AccountFiles::Completing(AbortOnDropHandle::new(completing)),
    })
}

/// The accounts carrying followers over at once, process-wide: one per two
/// cores.
fn carry_over_turn() -> &'static tokio::sync::Semaphore {
    static TURNS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    TURNS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new((cores / 2).max(1))
    })
}

/// Writes an Official Account's `tags` and `reconciliation` files (WeChat's
/// own counts beside ours; no personal ids in either) and warns when the
/// difference exceeds the job's tolerance.
async fn write_counts(
    run: &AccountRun,
    account: &Account,
    counts: &WeChatCounts,
    tag_members: Option<&TagMembers>,
) -> Result<(Vec<ManifestFile>, Reconciled), RunError> {
    let (store, date) = (&run.store, run.date);
    // Our members of the day WeChat's figure is of, when that day has a
    // complete snapshot: then it is the previous one, which the run read
    // (and pinned) as it started.
    let members = (run.previous.as_ref())
        .filter(|previous| previous.snapshot_date == counts.ref_date)
        .and_then(|previous| {
            previous
                .accounts
                .iter()
                .find(|a| a.account_id == account.id)
        })
        .map(|a| a.members);
    let reconciled = Reconciled::new(counts, members, run.job.reconciliation_tolerance);
    match reconciled.within_tolerance {
        Some(false) => tracing::warn!(
            account_id = %account.id,
            ref_date = %reconciled.ref_date,
            members = reconciled.members,
            wechat_cumulate_user = reconciled.wechat_cumulate_user,
            difference = reconciled.difference,
            tolerance = %run.job.reconciliation_tolerance,
            "our follower count differs from WeChat's by more than the tolerance: the snapshot of that day may be incomplete"
        ),
        Some(true) => tracing::info!(account_id = %account.id, ref_date = %reconciled.ref_date,
            difference = reconciled.difference, "follower count reconciled with WeChat's"),
        None => {}
    }
    let mut files = Vec::with_capacity(2);
    for (table, frame) in [
        (
            layout::TAGS,
            oa_counts::tags_frame(&counts.tags, tag_members)?,
        ),
        (layout::RECONCILIATION, reconciled.to_frame()?),
    ] {
        let mut frame = frame;
        let path = layout::account_file(table, date, &account.id, &run.run_id);
        files.push(load::commit::write_file(store, table, path, &mut frame).await?);
    }
    Ok((files, reconciled))
}

/// Crawl segments queued between the crawl and [`land_segments`].
const SEGMENTS_IN_FLIGHT: usize = 2;

/// Where an Official Account's identity rows go as they pass: the spill of
/// `identities`, when wanted the (openid, unionid) pairs, and when its crawl
/// can tell them, who joined and who left.
struct Landing {
    landed: LandedAccount,
    pairs: IdPairs,
    shape: extract::RawShape,
    changes: Option<CrawledChanges>,
}

/// Who joined and who left an Official Account since the previous complete
/// snapshot, as its crawl finds out when its identity cache is that
/// snapshot's partition of the account: the followers whose profiles it
/// fetched are not in that partition (they joined), and the rows of the
/// partition it did not list again left. Identity columns, as they pass.
#[derive(Default)]
struct CrawledChanges {
    joined: Vec<DataFrame>,
    left: Vec<DataFrame>,
    /// The carry-over went through the whole partition: `left` is complete.
    complete: bool,
}

impl Landing {
    /// Rows carried over or read back.
    fn push(&mut self, rows: DataFrame) -> Result<(), RunError> {
        self.pairs.push(&rows)?;
        self.landed.push_raw(self.shape, rows)
    }

    /// Rows of profiles the crawl fetched.
    fn push_fetched(&mut self, rows: DataFrame) -> Result<(), RunError> {
        if let Some(changes) = &mut self.changes {
            changes.joined.push(rows.clone());
        }
        self.push(rows)
    }

    /// Rows of the previous partition not listed again.
    fn push_left(&mut self, rows: DataFrame) {
        if let Some(changes) = &mut self.changes {
            changes.left.push(rows);
        }
    }

    fn finish(self) -> Result<(LandedAccount, Option<DataFrame>), RunError> {
        let mut landed = self.landed.finish()?;
        if let Some(changes) = self.changes.filter(|c| c.complete) {
            let identities = |parts: Vec<DataFrame>| -> Result<LazyFrame, RunError> {
                let raw = match load::stack(parts)? {
                    Some(raw) => raw,
                    None => return Ok(derive::empty_identities()?.lazy()),
                };
                Ok(account_identities(&landed.account, self.shape, raw)?.lazy())
            };
            let rows =
                transform::changes_of(identities(changes.joined)?, identities(changes.left)?)?;
            landed.crawled_changes = Some(rows.collect()?);
        }
        Ok((landed, self.pairs.finish()?))
    }
}

/// The followers of the previous partition to carry over, from the
/// identity cache the crawl hands over once it has read the whole list.
struct PendingCarry {
    /// The previous partition's local copy, from which the cache was read.
    previous: oneshot::Receiver<LocalCopy>,
    known: oneshot::Receiver<KnownFollowers>,
}

impl PendingCarry {
    /// Waits for the cache (None if the crawl stopped before the list
    /// ended), then for a turn to carry over.
    async fn ready(self) -> Option<ReadyCarry> {
        let known = self.known.await.ok()?;
        let previous = self.previous.await.ok()?;
        // Accounts carry their followers over one per two cores: each holds
        // a slice of the previous partition, the rows it writes and its
        // spill buffer (~200 MB at 250k rows), and the copying is CPU-bound.
        let turn = carry_over_turn().acquire().await.ok()?;
        Some(ReadyCarry {
            previous,
            known,
            _turn: turn,
        })
    }
}

/// A carry-over whose cache is complete and whose turn has come.
struct ReadyCarry {
    previous: LocalCopy,
    known: KnownFollowers,
    _turn: tokio::sync::SemaphorePermit<'static>,
}

impl ReadyCarry {
    async fn carry(
        self,
        followers: &mut FollowersWriter,
        landing: &mut Landing,
    ) -> Result<(), RunError> {
        let carry = CarryOver {
            previous: &self.previous,
            known: &self.known,
        };
        let rows = |rows| match rows {
            Carried::Listed(rows) => landing.push(rows),
            Carried::Left(rows) => {
                landing.push_left(rows);
                Ok(())
            }
        };
        followers.carried_over(carry, rows).await?;
        if let Some(changes) = &mut landing.changes {
            changes.complete = true;
        }
        tracing::info!(rows = self.known.listed_count(), "followers carried over");
        Ok(())
    }
}

/// Feeds the followers partition and the landing with the crawl's segments:
/// first the `saved` ones an earlier run of the date saved, then each one the
/// crawl saves, until the crawl drops its sender; and, with `carry`, the
/// followers carried over as soon as the crawl has listed them all (while
/// it fetches the last profiles). On an error the partition is abandoned.
async fn land_segments(
    state: StateStore,
    saved: u32,
    mut segments: mpsc::Receiver<DataFrame>,
    carry: Option<PendingCarry>,
    mut followers: FollowersWriter,
    mut landing: Landing,
) -> Result<(FollowersWriter, Landing), RunError> {
    let result = async {
        for segment in 0..saved {
            let rows = state.read_segment(segment).await?;
            landing.push_fetched(followers.fetched(rows).await?)?;
        }
        let ready = async move {
            match carry {
                Some(carry) => carry.ready().await,
                None => None,
            }
        };
        tokio::pin!(ready);
        let mut waiting = true;
        loop {
            tokio::select! {
                rows = segments.recv() => match rows {
                    Some(rows) => landing.push_fetched(followers.fetched(rows).await?)?,
                    None => break,
                },
                ready = &mut ready, if waiting => {
                    waiting = false;
                    if let Some(ready) = ready {
                        ready.carry(&mut followers, &mut landing).await?;
                    }
                }
            }
        }
        // The crawl is over: its cache, if it listed it all, was sent.
        if waiting {
            if let Some(ready) = ready.await {
                ready.carry(&mut followers, &mut landing).await?;
            }
        }
        Ok::<_, RunError>(())
    }
    .await;
    match result {
        Ok(()) => Ok((followers, landing)),
        Err(error) => {
            followers.abort().await;
            Err(error)
        }
    }
}

/// The crawl's store, which also hands each segment it saves to
/// [`land_segments`] (after saving it: the partition holds saved rows only).
struct TeeStore<'a> {
    state: &'a StateStore,
    segments: mpsc::Sender<DataFrame>,
}

impl CrawlStore for TeeStore<'_> {
    async fn load_checkpoint(&self) -> Result<Option<Checkpoint>, StateError> {
        self.state.load_checkpoint().await
    }

    async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StateError> {
        self.state.save_checkpoint(checkpoint).await
    }

    async fn save_page(&self, page: u32, openids: &[String]) -> Result<(), StateError> {
        self.state.save_page(page, openids).await
    }

    async fn load_page(&self, page: u32) -> Result<Vec<String>, StateError> {
        self.state.load_page(page).await
    }

    async fn save_segment(&self, segment: u32, rows: DataFrame) -> Result<(), StateError> {
        self.state.save_segment(segment, rows.clone()).await?;
        self.segments.send(rows).await.map_err(|_| StateError {
            what: format!("hand segment {segment} to the followers partition"),
            detail: "its writer stopped".to_string(),
        })
    }
}

/// Whether the job has a WeCom account linked through idconvert: only then
/// are (openid, unionid) pairs kept (over 10M followers they are not free).
fn links_contacts(job: &Job) -> bool {
    job.accounts.iter().any(extract::needs_idconvert)
}

/// The (openid, unionid) columns of followers, gathered a row group at a
/// time when wanted (ids not pseudonymized, an account to link).
struct IdPairs(Option<Vec<DataFrame>>);

impl IdPairs {
    fn wanted(wanted: bool) -> Self {
        IdPairs(wanted.then(Vec::new))
    }

    fn push(&mut self, followers: &DataFrame) -> PolarsResult<()> {
        if let Some(parts) = &mut self.0 {
            parts.push(followers.select(["openid", "unionid"])?);
        }
        Ok(())
    }

    fn finish(self) -> PolarsResult<Option<DataFrame>> {
        match self.0 {
            Some(parts) => load::stack(parts),
            None => Ok(None),
        }
    }
}

/// The followers file of `account_id` in a complete snapshot, if it has one.
/// The rows of `account_id`'s followers in the previous snapshot (0 when
/// there is none): the room the known-follower cache makes at once.
fn previous_rows(previous: Option<&Manifest>, account_id: &str) -> usize {
    previous
        .and_then(|m| load::account_file(m, layout::FOLLOWERS, account_id))
        .map_or(0, |f| f.rows as usize)
}

fn previous_partition(previous: &Manifest, account_id: &str) -> Option<String> {
    load::account_file(previous, layout::FOLLOWERS, account_id).map(|f| f.path.clone())
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
