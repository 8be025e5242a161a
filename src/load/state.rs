//! Crawl state in the output store, under `_state/snapshot_date=D/account_id=A/`:
//! the checkpoint, the saved user/get pages, the segments of fetched rows,
//! and `landed.json`: the raw partition a run landed and has not committed
//! (a resumed run or `merge` commits it).
//!
//! Keeping it in the output store (not on a local disk) lets a re-run on
//! another machine — the next Kubernetes pod, say — resume the crawl. The
//! state of a date is deleted once that date's snapshot marker is written.

use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};
use object_store::{path::Path, ObjectStoreExt, PutPayload};
use polars::prelude::DataFrame;

use crate::job::OutputLocation;

use serde::{Deserialize, Serialize};

use super::commit::ManifestFile;
use super::delta::FileFacts;
use super::parquet;
use super::store::{get_if_exists, Store};

/// A failure to read or write crawl state.
#[derive(Debug, thiserror::Error)]
#[error("crawl state {what}: {detail}")]
pub struct StateError {
    pub what: String,
    pub detail: String,
}

/// The folder of all crawl state.
pub const STATE: &str = "_state";

/// A raw partition a run landed (written whole, not committed): what a
/// resumed run or `merge` needs to commit it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Landed {
    /// The run that wrote it.
    pub run_id: String,
    /// The run id of the date's snapshot marker when that run started, if
    /// any: the partition is committed only while that is still the date's
    /// marker (a commit in between makes it an earlier generation's).
    pub base: Option<String>,
    /// The raw partition's file.
    #[serde(flatten)]
    pub partition: LandedFile,
    /// WeCom staff whose contacts the partition lacks (see
    /// `RawTable::unlicensed_staff_left_out`).
    #[serde(default)]
    pub unlicensed_staff_left_out: u64,
    /// The account's other files of the date (the `id_links` of a corp
    /// linked through idconvert, the `group_members` of a corp reading its
    /// customer groups), committed with the partition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<LandedFile>,
}

/// A file landed and not yet committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LandedFile {
    pub table: String,
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    pub facts: Option<FileFacts>,
}

impl From<&ManifestFile> for LandedFile {
    fn from(file: &ManifestFile) -> Self {
        LandedFile {
            table: file.table.clone(),
            path: file.path.clone(),
            rows: file.rows,
            bytes: file.bytes,
            facts: file.facts.as_deref().cloned(),
        }
    }
}

impl LandedFile {
    fn file(&self) -> ManifestFile {
        ManifestFile {
            table: self.table.clone(),
            path: self.path.clone(),
            rows: self.rows,
            bytes: self.bytes,
            facts: self.facts.clone().map(std::sync::Arc::new),
        }
    }
}

impl Landed {
    pub fn new(run_id: &str, base: Option<&str>, file: &ManifestFile) -> Self {
        Landed {
            run_id: run_id.to_string(),
            base: base.map(str::to_owned),
            partition: file.into(),
            unlicensed_staff_left_out: 0,
            also: Vec::new(),
        }
    }

    /// The partition's file and the others landed with it, as the commit
    /// takes them.
    pub fn files(&self) -> Vec<ManifestFile> {
        std::iter::once(&self.partition)
            .chain(&self.also)
            .map(LandedFile::file)
            .collect()
    }
}

/// The partitions landed for `date` and not yet committed, by account,
/// whatever their generation (see [`Landed::base`]).
pub async fn landed_of(
    store: &Store,
    date: NaiveDate,
) -> Result<std::collections::BTreeMap<String, Landed>, StateError> {
    let prefix = Path::from(super::layout::date_folder(STATE, date));
    let objects: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| state_error(format!("list {prefix}"), e))?;
    let mut landed = std::collections::BTreeMap::new();
    for object in objects {
        if object.location.filename() != Some(LANDED) {
            continue;
        }
        let Some(account) = object
            .location
            .parts()
            .find_map(|p| p.as_ref().strip_prefix("account_id=").map(str::to_owned))
        else {
            continue;
        };
        let state = StateStore::new(store.clone(), date, &account);
        if let Some(record) = state.load_landed().await? {
            landed.insert(account, record);
        }
    }
    Ok(landed)
}

const LANDED: &str = "landed.json";

/// One account's crawl state for one date.
#[derive(Clone)]
pub struct StateStore {
    store: Store,
    root: String,
}

fn state_error(what: impl Into<String>, detail: impl std::fmt::Display) -> StateError {
    StateError {
        what: what.into(),
        detail: detail.to_string(),
    }
}

impl StateStore {
    pub fn new(store: Store, date: NaiveDate, account_id: &str) -> Self {
        StateStore {
            store,
            root: format!("{STATE}/snapshot_date={date}/account_id={account_id}"),
        }
    }

    fn path(&self, name: &str) -> Path {
        Path::from(format!("{}/{name}", self.root))
    }

    /// `pages/page-NNNNNN.json`
    pub fn page_name(page: u32) -> String {
        format!("pages/page-{page:06}.json")
    }

    /// `segments/seg-NNNNNN.parquet`
    pub fn segment_path(&self, segment: u32) -> Path {
        self.path(&format!("segments/seg-{segment:06}.parquet"))
    }

    async fn get(&self, path: &Path) -> Result<Option<bytes::Bytes>, StateError> {
        get_if_exists(&self.store, path)
            .await
            .map_err(|e| state_error(format!("read {path}"), e))
    }

    async fn put(&self, path: &Path, bytes: Vec<u8>) -> Result<(), StateError> {
        self.store
            .put(path, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| state_error(format!("write {path}"), e))
    }

    /// The JSON object `name` of this account's state, if saved.
    pub async fn load_json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, StateError> {
        let path = self.path(name);
        match self.get(&path).await? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| state_error(format!("decode {path}"), e)),
            None => Ok(None),
        }
    }

    /// Saves `value` as the JSON object `name` of this account's state.
    pub async fn save_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StateError> {
        let json =
            serde_json::to_vec(value).map_err(|e| state_error(format!("encode {name}"), e))?;
        self.put(&self.path(name), json).await
    }

    /// Saves a segment of rows (read back once and deleted: LZ4, the
    /// cheapest on the crawl's CPU).
    pub async fn write_segment(&self, segment: u32, mut rows: DataFrame) -> Result<(), StateError> {
        let path = self.segment_path(segment);
        let bytes = parquet::encode_scratch(&mut rows)
            .map_err(|e| state_error(format!("encode {path}"), e))?;
        self.put(&path, bytes).await
    }

    /// Reads a saved segment of rows.
    pub async fn read_segment(&self, segment: u32) -> Result<DataFrame, StateError> {
        let path = self.segment_path(segment);
        let bytes = self
            .get(&path)
            .await?
            .ok_or_else(|| state_error(format!("read {path}"), "missing"))?;
        parquet::decode(bytes).map_err(|e| state_error(format!("decode {path}"), e))
    }

    /// Records the partition this account landed.
    pub async fn save_landed(&self, landed: &Landed) -> Result<(), StateError> {
        self.save_json(LANDED, landed).await
    }

    /// The partition this account landed, if a run recorded one.
    pub async fn load_landed(&self) -> Result<Option<Landed>, StateError> {
        self.load_json(LANDED).await
    }

    /// Deletes the pages and segments (the checkpoint stays).
    pub async fn delete_crawl_data(&self) -> Result<(), StateError> {
        for folder in ["pages", "segments"] {
            delete_prefix(&self.store, &self.path(folder)).await?;
        }
        Ok(())
    }
}

/// Deletes everything under `prefix`, in bulk where the store can (S3's
/// DeleteObjects takes 1,000 keys a request: the state of a 10M-follower
/// crawl is ~4,000 objects). Objects already gone are no error.
pub async fn delete_prefix(store: &Store, prefix: &Path) -> Result<(), StateError> {
    let locations = store
        .list(Some(prefix))
        .map_ok(|meta| meta.location)
        .boxed();
    let mut deleted = store.delete_stream(locations);
    while let Some(result) = deleted.next().await {
        match result {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(state_error(format!("delete under {prefix}"), error)),
        }
    }
    Ok(())
}

pub async fn delete_date_state(
    store: &Store,
    output: &OutputLocation,
    date: NaiveDate,
) -> Result<(), StateError> {
    let prefix = format!("{STATE}/snapshot_date={date}");
    delete_prefix(store, &Path::from(prefix.as_str())).await?;
    // A local folder also holds what no listing shows: the staging files
    // (`name#N`) of writes a killed process left half-done. The date is
    // committed, so its whole state folder goes.
    if let OutputLocation::Local(root) = output {
        match std::fs::remove_dir_all(root.join(&prefix)) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(state_error(format!("delete {prefix}"), error));
            }
            _ => {}
        }
    }
    Ok(())
}
