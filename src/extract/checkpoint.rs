//! Where a crawl stands, so that a run that was killed, crashed or ran out of
//! quota resumes where it stopped instead of calling WeChat again.
//!
//! A crawl has two cursors that move forward independently: the follower
//! *list* (user/get pages, each saved as it arrives) and the *profiles*
//! (batchget results, saved as segments of rows in list order). The
//! [`Checkpoint`] records both; a [`CrawlStore`] keeps it with the pages and
//! segments. After a kill, a re-run repeats at most the user/get page that was
//! in flight and the batchget chunks after the last saved segment.

use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use crate::job::Refresh;

/// Version of the checkpoint format; a checkpoint of another version is ignored.
pub const CHECKPOINT_VERSION: u32 = 2;

/// The saved position of one account's crawl for one snapshot date.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    /// The `refresh` mode the crawl started with (`"new"` / `"full"` in JSON).
    pub refresh: Refresh,
    /// The followers file (of the previous complete snapshot) that serves
    /// as the identity cache, pinned when the crawl starts so a resumed
    /// crawl uses the same one: files are immutable, so the same path is the
    /// same rows, whatever was committed since.
    pub cache_path: Option<String>,
    /// user/get pages saved so far.
    pub pages: u32,
    /// The cursor to continue listing from (`next_openid` of the last saved page).
    pub next_openid: Option<String>,
    /// True once the list is over.
    pub list_done: bool,
    /// OpenIDs saved in pages (list positions).
    pub listed: u64,
    /// List positions before this one have their rows in saved segments.
    pub profiled: u64,
    /// Segments saved so far (numbered from 0).
    pub segments: u32,
    /// True once the account's partition is written: a re-run skips the crawl.
    pub complete: bool,
}

impl Checkpoint {
    pub fn new(refresh: Refresh, cache_path: Option<String>) -> Self {
        Checkpoint {
            version: CHECKPOINT_VERSION,
            refresh,
            cache_path,
            ..Checkpoint::default()
        }
    }
}

pub use crate::load::state::StateError;

/// Keeps one account's crawl state (checkpoint, list pages, profile segments)
/// for one snapshot date. The pipeline implements it over the load stage's
/// state store (`pipeline::crawl_state`).
pub trait CrawlStore: Send + Sync {
    fn load_checkpoint(
        &self,
    ) -> impl std::future::Future<Output = Result<Option<Checkpoint>, StateError>> + Send;
    fn save_checkpoint(
        &self,
        checkpoint: &Checkpoint,
    ) -> impl std::future::Future<Output = Result<(), StateError>> + Send;
    fn save_page(
        &self,
        page: u32,
        openids: &[String],
    ) -> impl std::future::Future<Output = Result<(), StateError>> + Send;
    fn load_page(
        &self,
        page: u32,
    ) -> impl std::future::Future<Output = Result<Vec<String>, StateError>> + Send;
    fn save_segment(
        &self,
        segment: u32,
        rows: DataFrame,
    ) -> impl std::future::Future<Output = Result<(), StateError>> + Send;
}
