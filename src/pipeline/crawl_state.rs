//! A crawl's state kept in the output store: the extract stage's
//! [`CrawlStore`] over the load stage's [`StateStore`], so that neither of
//! them knows the other.

use polars::prelude::DataFrame;

use crate::extract::checkpoint::{Checkpoint, CrawlStore, StateError, CHECKPOINT_VERSION};
use crate::load::state::StateStore;

const CHECKPOINT: &str = "checkpoint.json";

impl CrawlStore for StateStore {
    async fn load_checkpoint(&self) -> Result<Option<Checkpoint>, StateError> {
        let checkpoint: Option<Checkpoint> = self.load_json(CHECKPOINT).await?;
        // A checkpoint of another format is not trusted: start over.
        Ok(checkpoint.filter(|c| c.version == CHECKPOINT_VERSION))
    }

    async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StateError> {
        self.save_json(CHECKPOINT, checkpoint).await
    }

    async fn save_page(&self, page: u32, openids: &[String]) -> Result<(), StateError> {
        self.save_json(&StateStore::page_name(page), &openids).await
    }

    async fn load_page(&self, page: u32) -> Result<Vec<String>, StateError> {
        let name = StateStore::page_name(page);
        self.load_json(&name).await?.ok_or_else(|| StateError {
            what: format!("read {name}"),
            detail: "missing".to_string(),
        })
    }

    async fn save_segment(&self, segment: u32, rows: DataFrame) -> Result<(), StateError> {
        self.write_segment(segment, rows).await
    }
}
