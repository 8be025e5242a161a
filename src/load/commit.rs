//! The commit protocol: how a snapshot date becomes visible, whole or not at all.
//!
//! 1. [`SnapshotWriter::begin`] deletes the date's manifest, so from then on no
//!    reader takes the date for complete while its files are being replaced.
//! 2. Every table file is written whole: a single PUT, or a multipart upload
//!    that only becomes visible when completed (`object_store::buffered`).
//!    Local files are written to a temporary name and renamed.
//! 3. [`SnapshotWriter::commit`] deletes the date's files that this run did not
//!    write (an account removed from the job, say), then writes
//!    `_manifests/snapshot_date=D/manifest.json` listing every file with its
//!    row count — last. A reader that sees the manifest sees exactly those files.

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use object_store::{buffered::BufWriter, path::Path, ObjectStoreExt, PutPayload};
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::store::{delete_if_exists, get_if_exists, Store};
use super::{layout, parquet, LoadError};

/// Version of the manifest format; bumped only by incompatible changes.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;
/// Uploads larger than this go as multipart uploads (completed atomically).
const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;

/// `manifest.json`: what makes a snapshot date complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub job: String,
    pub snapshot_date: NaiveDate,
    pub run_id: String,
    pub committed_at: DateTime<Utc>,
    pub accounts: Vec<ManifestAccount>,
    pub files: Vec<ManifestFile>,
}

/// One account of a complete snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestAccount {
    pub account_id: String,
    pub account_kind: String,
    pub members: i64,
}

/// One file of a complete snapshot, relative to the output root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub table: String,
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

/// Writes the files of one snapshot date and commits them with a manifest.
pub struct SnapshotWriter {
    store: Store,
    date: NaiveDate,
    files: Vec<ManifestFile>,
}

impl SnapshotWriter {
    /// Starts (re)writing `date`: its manifest is removed first.
    pub async fn begin(store: Store, date: NaiveDate) -> Result<Self, LoadError> {
        let manifest = layout::manifest_file(date);
        delete_if_exists(&store, &manifest)
            .await
            .map_err(|source| LoadError::store(&manifest, source))?;
        Ok(SnapshotWriter {
            store,
            date,
            files: Vec::new(),
        })
    }

    pub fn date(&self) -> NaiveDate {
        self.date
    }

    /// The files written so far.
    pub fn files(&self) -> &[ManifestFile] {
        &self.files
    }

    /// Records a file written by a [`super::stream::PartitionWriter`], or
    /// one already in the store (a raw partition a sharded run wrote, which
    /// `merge` commits as it landed).
    pub fn add_file(&mut self, file: ManifestFile) {
        self.files.retain(|f| f.path != file.path);
        self.files.push(file);
    }

    /// The store the snapshot is written to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Writes `table/snapshot_date=D/account_id=A/part-0.parquet`.
    pub async fn write_account_table(
        &mut self,
        table: &str,
        account_id: &str,
        df: &mut DataFrame,
    ) -> Result<(), LoadError> {
        let path = layout::account_file(table, self.date, account_id);
        self.write(table, path, df).await
    }

    /// Writes `table/snapshot_date=D/part-0.parquet`.
    pub async fn write_date_table(
        &mut self,
        table: &str,
        df: &mut DataFrame,
    ) -> Result<(), LoadError> {
        let path = layout::date_file(table, self.date);
        self.write(table, path, df).await
    }

    async fn write(
        &mut self,
        table: &str,
        path: Path,
        df: &mut DataFrame,
    ) -> Result<(), LoadError> {
        let file = write_file(&self.store, table, path, df).await?;
        self.add_file(file);
        Ok(())
    }

    /// Deletes the date's files this run did not write, then writes the manifest.
    pub async fn commit(
        self,
        job: &str,
        run_id: &str,
        accounts: Vec<ManifestAccount>,
        tables: &[&str],
    ) -> Result<Manifest, LoadError> {
        for table in tables {
            let prefix = layout::date_prefix(table, self.date);
            let existing: Vec<_> = self
                .store
                .list(Some(&prefix))
                .try_collect()
                .await
                .map_err(|source| LoadError::store(&prefix, source))?;
            for object in existing {
                if !self
                    .files
                    .iter()
                    .any(|f| f.path == object.location.as_ref())
                {
                    tracing::info!(path = %object.location, "deleting a file the new snapshot does not list");
                    delete_if_exists(&self.store, &object.location)
                        .await
                        .map_err(|source| LoadError::store(&object.location, source))?;
                }
            }
        }
        let mut files = self.files;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let manifest = Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            job: job.to_string(),
            snapshot_date: self.date,
            run_id: run_id.to_string(),
            committed_at: Utc::now(),
            accounts,
            files,
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(LoadError::ManifestJson)?;
        put_whole(&self.store, &layout::manifest_file(self.date), json).await?;
        Ok(manifest)
    }
}

/// Writes one whole table file (a single PUT, or a multipart upload when
/// large) and says what it wrote, for the manifest.
pub async fn write_file(
    store: &Store,
    table: &str,
    path: Path,
    df: &mut DataFrame,
) -> Result<ManifestFile, LoadError> {
    let rows = df.height() as u64;
    let bytes = parquet::encode(df).map_err(|source| LoadError::Encode {
        table: table.to_string(),
        source,
    })?;
    let size = bytes.len() as u64;
    put_whole(store, &path, bytes).await?;
    Ok(ManifestFile {
        table: table.to_string(),
        path: path.to_string(),
        rows,
        bytes: size,
    })
}

/// Puts `bytes` so that the object appears whole or not at all.
async fn put_whole(store: &Store, path: &Path, bytes: Vec<u8>) -> Result<(), LoadError> {
    if bytes.len() <= MULTIPART_THRESHOLD {
        store
            .put(path, PutPayload::from(bytes))
            .await
            .map_err(|source| LoadError::store(path, source))?;
        return Ok(());
    }
    let mut writer = BufWriter::with_capacity(store.clone(), path.clone(), MULTIPART_THRESHOLD);
    let io = |source: std::io::Error| LoadError::Upload {
        path: path.to_string(),
        source,
    };
    if let Err(source) = writer.write_all(&bytes).await {
        let _ = writer.abort().await;
        return Err(io(source));
    }
    writer.shutdown().await.map_err(io)
}

/// Reads the manifest of `date`, if the date is complete.
pub async fn read_manifest(store: &Store, date: NaiveDate) -> Result<Option<Manifest>, LoadError> {
    let path = layout::manifest_file(date);
    let Some(bytes) = get_if_exists(store, &path)
        .await
        .map_err(|source| LoadError::store(&path, source))?
    else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| LoadError::BadManifest {
            path: path.to_string(),
            source,
        })
}

/// The dates that have a manifest, oldest first.
pub async fn complete_dates(store: &Store) -> Result<Vec<NaiveDate>, LoadError> {
    let prefix = Path::from(layout::MANIFESTS);
    let objects: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|source| LoadError::store(&prefix, source))?;
    let mut dates: Vec<NaiveDate> = objects
        .iter()
        .filter(|o| o.location.filename() == Some("manifest.json"))
        .filter_map(|o| layout::snapshot_date_of(&o.location))
        .collect();
    dates.sort();
    dates.dedup();
    Ok(dates)
}

/// Reads one table file listed in a manifest.
pub async fn read_file(store: &Store, path: &str) -> Result<DataFrame, LoadError> {
    let path = Path::from(path);
    let bytes = store
        .get(&path)
        .await
        .map_err(|source| LoadError::store(&path, source))?
        .bytes()
        .await
        .map_err(|source| LoadError::store(&path, source))?;
    parquet::decode(bytes).map_err(|source| LoadError::Decode {
        path: path.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;
    use polars::prelude::*;

    use super::*;

    fn date(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, day).unwrap()
    }

    async fn paths(store: &Store) -> Vec<String> {
        let mut all: Vec<String> = store
            .list(None)
            .map_ok(|o| o.location.to_string())
            .try_collect()
            .await
            .unwrap();
        all.sort();
        all
    }

    #[tokio::test]
    async fn the_manifest_lists_every_file_with_its_rows_and_comes_last() {
        let store: Store = Arc::new(InMemory::new());
        let mut writer = SnapshotWriter::begin(store.clone(), date(21))
            .await
            .unwrap();
        let mut followers = df!("openid" => ["o1", "o2", "o3"]).unwrap();
        writer
            .write_account_table(layout::FOLLOWERS, "brand_oa", &mut followers)
            .await
            .unwrap();
        assert!(read_manifest(&store, date(21)).await.unwrap().is_none());
        let manifest = writer
            .commit("acme", "run-1", vec![], &layout::ALL_TABLES)
            .await
            .unwrap();
        assert_eq!(manifest.files.len(), 1);
        assert_eq!(manifest.files[0].rows, 3);
        assert_eq!(
            read_manifest(&store, date(21)).await.unwrap(),
            Some(manifest)
        );
        assert_eq!(complete_dates(&store).await.unwrap(), vec![date(21)]);
        let back = read_file(
            &store,
            "followers/snapshot_date=2026-11-21/account_id=brand_oa/part-0.parquet",
        )
        .await
        .unwrap();
        assert!(back.equals(&followers));
    }

    #[tokio::test]
    async fn a_rerun_removes_the_manifest_first_and_stale_files_at_commit() {
        let store: Store = Arc::new(InMemory::new());
        for (day, accounts) in [(21, vec!["a", "b"]), (22, vec!["a", "b"])] {
            let mut writer = SnapshotWriter::begin(store.clone(), date(day))
                .await
                .unwrap();
            for account in accounts {
                let mut df = df!("openid" => ["o1"]).unwrap();
                writer
                    .write_account_table(layout::FOLLOWERS, account, &mut df)
                    .await
                    .unwrap();
            }
            writer
                .commit("acme", "run-1", vec![], &layout::ALL_TABLES)
                .await
                .unwrap();
        }
        let mut writer = SnapshotWriter::begin(store.clone(), date(21))
            .await
            .unwrap();
        assert!(
            read_manifest(&store, date(21)).await.unwrap().is_none(),
            "manifest removed first"
        );
        let mut df = df!("openid" => ["o1", "o2"]).unwrap();
        writer
            .write_account_table(layout::FOLLOWERS, "a", &mut df)
            .await
            .unwrap();
        writer
            .commit("acme", "run-2", vec![], &layout::ALL_TABLES)
            .await
            .unwrap();
        assert_eq!(
            paths(&store).await,
            [
                "_manifests/snapshot_date=2026-11-21/manifest.json",
                "_manifests/snapshot_date=2026-11-22/manifest.json",
                "followers/snapshot_date=2026-11-21/account_id=a/part-0.parquet",
                "followers/snapshot_date=2026-11-22/account_id=a/part-0.parquet",
                "followers/snapshot_date=2026-11-22/account_id=b/part-0.parquet",
            ],
            "b's file of the 21st is gone, the 22nd untouched"
        );
    }
}
