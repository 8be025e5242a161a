//! Official Account followers: user/get pages → batchget chunks of 100 →
//! follower rows, streamed and checkpointed.
//!
//! The follower list is the sequential critical path (each page needs the
//! previous page's `next_openid`), so it runs beside the profile fetch and
//! feeds it over a bounded channel: batchget calls (each a tokio task of its
//! own, so their answers are decoded on every core) run `concurrency` at a
//! time behind the listing instead of after it. OpenIDs needing a profile are
//! packed into full chunks of 100 across page boundaries, so a crawl makes
//! exactly ceil(new / 100) batchget calls. With `refresh = "new"`, OpenIDs of
//! the previous snapshot ([`KnownFollowers`]) need no call at all.
//!
//! Every listed page and every segment of fetched rows is saved through a
//! [`CrawlStore`] as it completes, with a [`Checkpoint`]; a crawl that stops
//! (killed, crashed, out of quota) resumes from there.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

use chrono::Utc;
use polars::prelude::*;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::transform::timestamp_type;
use crate::wechat::official_account::BATCHGET_MAX;
use crate::wechat::{ApiError, OfficialAccountClient, UserInfo};

use super::checkpoint::{Checkpoint, CrawlStore, StateError};
use super::known::KnownFollowers;
use super::openid_hash::{OpenidHasher, PrehashedState};
use super::progress::ExtractProgress;

/// Rows are saved as a segment once this many list positions are profiled
/// (one user/get page): the most a kill makes a re-run fetch again.
pub const SEGMENT_POSITIONS: u64 = 10_000;
/// user/get pages buffered between the listing and the profile fetch.
const PAGES_IN_FLIGHT: usize = 4;

/// Why a crawl stopped.
#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot build the follower rows: {0}")]
    Rows(#[from] PolarsError),
    /// A batchget task panicked (a bug) or was cancelled.
    #[error("a profile fetch task failed: {0}")]
    Task(String),
}

/// What a finished crawl produced, beyond the segments in its store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrawlSummary {
    /// OpenIDs in the list (duplicates included).
    pub listed: u64,
    /// Segments of fetched profiles saved over the whole crawl (all runs),
    /// numbered from 0: what the caller reads back, in list order.
    pub segments: u32,
    /// Listed followers carried over from the identity cache.
    pub carried_over: u64,
}

/// Crawls one account's followers into `store`, resuming from its checkpoint.
///
/// `known` reads the identity cache of `refresh = "new"` (None without
/// one). The listing starts at once, as it needs no cache: the token and the
/// first pages come while the cache is read, and the profiles wait for it.
/// As soon as the whole list is read, the cache goes to `listed` with its
/// listed rows marked, so the caller carries them over while the last
/// profiles are fetched (without a cache, or if the crawl stops before the
/// list ends, `listed` is dropped unsent).
pub async fn crawl<S: CrawlStore, E: From<CrawlError>>(
    client: &OfficialAccountClient,
    concurrency: usize,
    store: &S,
    checkpoint: Checkpoint,
    known: impl std::future::Future<Output = Result<Option<KnownFollowers>, E>>,
    listed: oneshot::Sender<KnownFollowers>,
    progress: &dyn ExtractProgress,
) -> Result<CrawlSummary, E> {
    let checkpoint = Arc::new(Mutex::new(checkpoint));
    let (pages_tx, pages_rx) = mpsc::channel::<Vec<String>>(PAGES_IN_FLIGHT);
    let lister = list_pages(client, store, checkpoint.clone(), pages_tx, progress);
    let profiler = async {
        // A failed read drops the pages' receiver, which stops the lister.
        let known = known.await?;
        let carried_over = fetch_profiles(
            client,
            concurrency,
            store,
            checkpoint.clone(),
            known.map(|known| (known, listed)),
            pages_rx,
            progress,
        )
        .await?;
        Ok::<_, E>(carried_over)
    };
    // The profiler ends when the lister drops its sender; a listing error ends
    // both, after the profiler has saved what it completed.
    let (listed, profiled) = tokio::join!(lister, profiler);
    let carried_over = profiled?;
    listed?;
    let done = checkpoint.lock().await.clone();
    Ok(CrawlSummary {
        listed: done.listed,
        segments: done.segments,
        carried_over,
    })
}

/// Replays the saved pages, then lists the rest, saving each page first.
async fn list_pages<S: CrawlStore>(
    client: &OfficialAccountClient,
    store: &S,
    checkpoint: Arc<Mutex<Checkpoint>>,
    pages: mpsc::Sender<Vec<String>>,
    progress: &dyn ExtractProgress,
) -> Result<(), CrawlError> {
    let saved = checkpoint.lock().await.clone();
    for page in 0..saved.pages {
        let openids = store.load_page(page).await?;
        if pages.send(openids).await.is_err() {
            return Ok(());
        }
    }
    if saved.list_done {
        return Ok(());
    }
    let mut pager = client.followers_from(saved.next_openid.clone());
    let mut next = pager.next_page().await?;
    while let Some(page) = next {
        // The next page is requested while this one is saved: the saving
        // stays off the critical path (one user/get after another). The
        // request is made first, and the saving (which serializes the page
        // before it awaits anything) yields once, so that the request's
        // connection writes it out before the saving's CPU work.
        let save = async {
            tokio::task::yield_now().await;
            let mut state = checkpoint.lock().await;
            store.save_page(state.pages, &page.openids).await?;
            state.pages += 1;
            state.listed += page.openids.len() as u64;
            state.next_openid = page.next_openid.clone();
            state.list_done = page.next_openid.is_none();
            store.save_checkpoint(&state).await?;
            progress.page_listed(page.total, state.listed);
            Ok::<_, CrawlError>(())
        };
        let (following, saved) = tokio::join!(biased; pager.next_page(), save);
        saved?;
        if pages.send(page.openids).await.is_err() {
            return Ok(());
        }
        next = following?;
    }
    let mut state = checkpoint.lock().await;
    if !state.list_done {
        state.list_done = true;
        store.save_checkpoint(&state).await?;
    }
    Ok(())
}

/// A batchget call to make: OpenIDs in list order, and the list position
/// after the last OpenID it covers.
struct Job {
    openids: Vec<String>,
    end: u64,
}

/// Exact-enough duplicate detection for OpenIDs that are not in the cache:
/// a 128-bit hash per OpenID seen (a false duplicate has odds of about
/// n²/2¹²⁹: nil for any follower count).
struct Seen {
    hasher: OpenidHasher,
    hashes: HashSet<u128, PrehashedState>,
}

impl Seen {
    fn new() -> Self {
        Seen {
            hasher: OpenidHasher::random(),
            hashes: HashSet::default(),
        }
    }

    fn insert(&mut self, openid: &str) -> bool {
        self.hashes.insert(self.hasher.hash128(openid))
    }
}

/// Fetches profiles for the OpenIDs that need one, `concurrency` calls at a
/// time, and saves the rows as segments in list order. The identity cache,
/// if any, goes to its sender once the list is over; returns how many of
/// its followers were listed.
async fn fetch_profiles<S: CrawlStore>(
    client: &OfficialAccountClient,
    concurrency: usize,
    store: &S,
    checkpoint: Arc<Mutex<Checkpoint>>,
    mut known: Option<(KnownFollowers, oneshot::Sender<KnownFollowers>)>,
    mut pages: mpsc::Receiver<Vec<String>>,
    progress: &dyn ExtractProgress,
) -> Result<u64, CrawlError> {
    let resume_at = checkpoint.lock().await.profiled;
    let mut seen = Seen::new();
    let mut position: u64 = 0;
    let mut pending: Vec<String> = Vec::new();
    let mut jobs: VecDeque<Job> = VecDeque::new();
    // Calls complete in any order (a slow or retried call must not hold the
    // others' slots); their results are applied in list order. Each call is
    // a task of its own, so decoding the answers uses every worker thread
    // (not only the one polling this crawl); dropping the set (a cancelled
    // crawl) aborts them.
    let mut in_flight = JoinSet::new();
    let mut completed: BTreeMap<u64, (Vec<UserInfo>, u64)> = BTreeMap::new();
    let (mut next_call, mut next_applied) = (0u64, 0u64);
    // The first call that failed: what completed before it is kept.
    let mut failed: Option<(u64, ApiError)> = None;
    let mut rows: Vec<UserInfo> = Vec::new();
    let mut rows_end = resume_at;
    let mut saved_end = resume_at;
    let mut list_open = true;
    let mut carried_over = 0;
    let limit = concurrency.max(1);

    loop {
        // Start queued jobs while there is room (and results do not pile
        // up behind a slow call).
        while failed.is_none() && in_flight.len() < limit && completed.len() < 4 * limit {
            let Some(job) = jobs.pop_front() else { break };
            let client = client.clone();
            let call = next_call;
            next_call += 1;
            in_flight.spawn(
                async move {
                    let users = client.batchget(&job.openids).await;
                    (call, users.map(|users| (users, job.end)))
                }
                .in_current_span(),
            );
        }
        if let Some((call, _)) = &failed {
            if next_applied == *call {
                break;
            }
        }
        tokio::select! {
            page = pages.recv(), if failed.is_none() && list_open && jobs.len() < limit => {
                let Some(page) = page else {
                    list_open = false;
                    // Every listed follower of the cache is marked.
                    if let Some((known, listed)) = known.take() {
                        carried_over = known.listed_count();
                        let _ = listed.send(known);
                    }
                    // The list is over: the last, partial chunk (or an empty
                    // marker job that moves the saved position to the end).
                    jobs.push_back(Job { openids: std::mem::take(&mut pending), end: position });
                    continue;
                };
                for openid in page {
                    let at = position;
                    position += 1;
                    let known_row = known.as_ref().and_then(|(k, _)| k.row_of(&openid));
                    let is_new = match (known_row, known.as_mut()) {
                        (Some(row), Some((k, _))) => {
                            k.mark_listed(row);
                            false
                        }
                        _ => seen.insert(&openid),
                    };
                    if !is_new || at < resume_at {
                        continue;
                    }
                    pending.push(openid);
                    if pending.len() == BATCHGET_MAX {
                        jobs.push_back(Job { openids: std::mem::take(&mut pending), end: position });
                    }
                }
                if pending.is_empty() && position > resume_at {
                    jobs.push_back(Job { openids: Vec::new(), end: position });
                }
            }
            done = in_flight.join_next(), if !in_flight.is_empty() => {
                let Some(done) = done else { continue };
                let (call, result) = done.map_err(|error| CrawlError::Task(error.to_string()))?;
                match result {
                    Ok(done) => {
                        completed.insert(call, done);
                    }
                    // Keep what completed before the failure (e.g. 45009):
                    // the calls before it are still awaited.
                    Err(error) => {
                        if failed.as_ref().is_none_or(|(first, _)| call < *first) {
                            failed = Some((call, error));
                        }
                    }
                }
                while let Some((users, end)) = completed.remove(&next_applied) {
                    next_applied += 1;
                    progress.profiled(users.len() as u64);
                    rows.extend(users.into_iter().filter(|user| user.subscribe == 1));
                    rows_end = end;
                    if rows_end - saved_end >= SEGMENT_POSITIONS {
                        save_segment(store, &checkpoint, &mut rows, rows_end).await?;
                        saved_end = rows_end;
                    }
                }
            }
            else => break,
        }
    }
    if let Some((_, error)) = failed {
        save_segment(store, &checkpoint, &mut rows, rows_end).await?;
        return Err(error.into());
    }
    save_segment(store, &checkpoint, &mut rows, rows_end).await?;
    Ok(carried_over)
}

/// Saves `rows` as the next segment and moves the checkpoint to `end`.
async fn save_segment<S: CrawlStore>(
    store: &S,
    checkpoint: &Mutex<Checkpoint>,
    rows: &mut Vec<UserInfo>,
    end: u64,
) -> Result<(), CrawlError> {
    let mut state = checkpoint.lock().await;
    if end <= state.profiled && rows.is_empty() {
        return Ok(());
    }
    if !rows.is_empty() {
        let frame = followers_frame(rows, Utc::now().timestamp_micros())?;
        store.save_segment(state.segments, frame).await?;
        state.segments += 1;
        rows.clear();
    }
    state.profiled = end;
    store.save_checkpoint(&state).await?;
    Ok(())
}

/// The `followers` table (SPEC §4) from user/info profiles.
pub fn followers_frame(users: &[UserInfo], fetched_at_micros: i64) -> PolarsResult<DataFrame> {
    let n = users.len();
    let strings =
        |f: fn(&UserInfo) -> Option<&str>| -> Vec<Option<&str>> { users.iter().map(f).collect() };
    let mut tags =
        ListPrimitiveChunkedBuilder::<Int32Type>::new("tagid_list".into(), n, n, DataType::Int32);
    for user in users {
        tags.append_slice(&user.tagid_list);
    }
    let micros = |secs: Option<i64>| secs.map(|s| s.saturating_mul(1_000_000));
    let subscribe_time: Int64Chunked = users.iter().map(|u| micros(u.subscribe_time)).collect();
    let fetched: Int64Chunked = std::iter::repeat_n(Some(fetched_at_micros), n).collect();
    let qr_scene: Int64Chunked = users.iter().map(|u| u.qr_scene).collect();
    let as_timestamp = |name: &str, ca: Int64Chunked| -> PolarsResult<Column> {
        Ok(ca
            .with_name(name.into())
            .into_series()
            .cast(&timestamp_type())?
            .into_column())
    };
    let columns = vec![
        Column::new("openid".into(), strings(|u| Some(u.openid.as_str()))),
        Column::new("unionid".into(), strings(|u| u.unionid.as_deref())),
        as_timestamp("subscribe_time", subscribe_time)?,
        Column::new(
            "subscribe_scene".into(),
            strings(|u| u.subscribe_scene.as_deref()),
        ),
        Column::new("language".into(), strings(|u| u.language.as_deref())),
        Column::new("remark".into(), strings(|u| u.remark.as_deref())),
        tags.finish().into_column(),
        qr_scene.with_name("qr_scene".into()).into_column(),
        Column::new(
            "qr_scene_str".into(),
            strings(|u| u.qr_scene_str.as_deref()),
        ),
        as_timestamp("profile_fetched_at", fetched)?,
    ];
    DataFrame::new(n, columns)
}
