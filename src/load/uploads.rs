//! Multipart uploads that a killed run leaves behind are aborted by the next
//! run.
//!
//! On S3 an upload that is never completed or aborted stays stored (and
//! billed, and holding personal data) without ever becoming visible, and S3
//! cannot list them through `object_store`. So a run's store records each
//! multipart upload it starts — `_state/uploads/<run_id>-<n>.json`, with the
//! object's path and the upload id — and deletes the record once the upload
//! is completed or aborted. A record left behind is an upload its run did
//! not finish: the next run aborts it, unless its run still holds a lease.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::NaiveDate;
use futures::stream::BoxStream;
use futures::TryStreamExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartId, MultipartUpload, ObjectMeta,
    ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult,
    RenameOptions, Result, UploadPart,
};
use serde::{Deserialize, Serialize};

use super::RunTag;

/// The folder of the upload records.
pub const UPLOADS: &str = "_state/uploads";

/// An upload in progress, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub run_id: String,
    pub snapshot_date: NaiveDate,
    pub path: String,
    pub upload_id: String,
}

/// `inner`, with its multipart uploads recorded while they run.
#[derive(Debug)]
pub struct RecordedUploads<S> {
    inner: Arc<S>,
    run: RunTag,
    next: AtomicU64,
}

impl<S: ObjectStore + MultipartStore> RecordedUploads<S> {
    pub fn new(inner: Arc<S>, run: RunTag) -> Self {
        RecordedUploads {
            inner,
            run,
            next: AtomicU64::new(0),
        }
    }

    /// Aborts the uploads recorded by runs for which `held(date, run_id)`
    /// says they no longer hold a lease of their date (the caller asks the
    /// leases); returns how many.
    pub async fn abort_stale<F, Fut>(
        &self,
        held: F,
    ) -> std::result::Result<usize, crate::load::LoadError>
    where
        F: Fn(NaiveDate, String) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<bool, crate::load::LoadError>>,
    {
        let err = |path: &Path, source| crate::load::LoadError::store(path, source);
        let prefix = Path::from(UPLOADS);
        let records: Vec<ObjectMeta> = self
            .inner
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| err(&prefix, e))?;
        let mut aborted = 0;
        for meta in records {
            let bytes = match self.inner.get(&meta.location).await {
                Ok(found) => found.bytes().await.map_err(|e| err(&meta.location, e))?,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(err(&meta.location, e)),
            };
            let Ok(record) = serde_json::from_slice::<UploadRecord>(&bytes) else {
                continue;
            };
            if record.run_id == self.run.run_id
                || held(record.snapshot_date, record.run_id.clone()).await?
            {
                continue;
            }
            let path = Path::from(record.path.as_str());
            match self.inner.abort_multipart(&path, &record.upload_id).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => {
                    tracing::warn!(%path, %error, "could not abort an upload a killed run left; the bucket's lifecycle rule will");
                    continue;
                }
            }
            tracing::info!(%path, run_id = %record.run_id, "aborted an upload a killed run left");
            let _ = self.inner.delete(&meta.location).await;
            aborted += 1;
        }
        Ok(aborted)
    }
}

impl<S> std::fmt::Display for RecordedUploads<S>
where
    S: std::fmt::Display,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecordedUploads({})", self.inner)
    }
}

#[async_trait]
impl<S: ObjectStore + MultipartStore> ObjectStore for RecordedUploads<S> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let upload_id = self.inner.create_multipart(location).await?;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let record_path = Path::from(format!("{UPLOADS}/{}-{n}.json", self.run.run_id));
        let record = UploadRecord {
            run_id: self.run.run_id.clone(),
            snapshot_date: self.run.date,
            path: location.to_string(),
            upload_id: upload_id.clone(),
        };
        let body = serde_json::to_vec(&record).map_err(|source| object_store::Error::Generic {
            store: "RecordedUploads",
            source: Box::new(source),
        })?;
        if let Err(error) = self.inner.put(&record_path, PutPayload::from(body)).await {
            let _ = self.inner.abort_multipart(location, &upload_id).await;
            return Err(error);
        }
        Ok(Box::new(RecordedUpload {
            store: self.inner.clone(),
            path: location.clone(),
            upload_id,
            record: record_path,
            parts: Arc::new(Mutex::new(Vec::new())),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

/// One recorded multipart upload.
#[derive(Debug)]
struct RecordedUpload<S> {
    store: Arc<S>,
    path: Path,
    upload_id: MultipartId,
    record: Path,
    /// Part ids by part index, as the parts finish (in any order).
    parts: Arc<Mutex<Vec<Option<PartId>>>>,
}

impl<S> RecordedUpload<S> {
    fn part_ids(&self) -> Result<Vec<PartId>> {
        let parts = match self.parts.lock() {
            Ok(parts) => parts.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        parts
            .into_iter()
            .map(|p| {
                p.ok_or_else(|| object_store::Error::Generic {
                    store: "RecordedUploads",
                    source: "a part of the upload did not finish".into(),
                })
            })
            .collect()
    }
}

#[async_trait]
impl<S: ObjectStore + MultipartStore> MultipartUpload for RecordedUpload<S> {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let index = {
            let mut parts = match self.parts.lock() {
                Ok(parts) => parts,
                Err(poisoned) => poisoned.into_inner(),
            };
            parts.push(None);
            parts.len() - 1
        };
        let (store, path, id, parts) = (
            self.store.clone(),
            self.path.clone(),
            self.upload_id.clone(),
            self.parts.clone(),
        );
        Box::pin(async move {
            let part = store.put_part(&path, &id, index, data).await?;
            let mut parts = match parts.lock() {
                Ok(parts) => parts,
                Err(poisoned) => poisoned.into_inner(),
            };
            parts[index] = Some(part);
            Ok(())
        })
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let parts = self.part_ids()?;
        let done = self
            .store
            .complete_multipart(&self.path, &self.upload_id, parts)
            .await?;
        let _ = self.store.delete(&self.record).await;
        Ok(done)
    }

    async fn abort(&mut self) -> Result<()> {
        self.store
            .abort_multipart(&self.path, &self.upload_id)
            .await?;
        let _ = self.store.delete(&self.record).await;
        Ok(())
    }
}
