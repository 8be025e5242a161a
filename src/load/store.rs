//! Opening the output (or any input) location as an object store.
//!
//! Every table goes through `object_store`, so the same code writes a local
//! folder, S3 (and S3-compatible servers), GCS, Azure or memory. Credentials
//! and endpoints come from the usual environment variables (`AWS_*`,
//! `GOOGLE_*`, `AZURE_*`), never from the job file.

use std::sync::Arc;

use object_store::{
    aws::AmazonS3Builder, azure::MicrosoftAzureBuilder, gcp::GoogleCloudStorageBuilder,
    local::LocalFileSystem, memory::InMemory, path::Path, prefix::PrefixStore, ObjectMeta,
    ObjectStore, ObjectStoreExt,
};

use crate::job::OutputLocation;

use super::LoadError;

/// An object store rooted at the output location: paths are relative to it.
pub type Store = Arc<dyn ObjectStore>;

/// Opens `location`. Local folders are created if missing.
pub fn open(location: &OutputLocation) -> Result<Store, LoadError> {
    let err = |source: object_store::Error| LoadError::Open {
        location: location.to_string(),
        source,
    };
    match location {
        OutputLocation::Local(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| LoadError::CreateDir {
                dir: dir.clone(),
                source,
            })?;
            let fs = LocalFileSystem::new_with_prefix(dir).map_err(err)?;
            Ok(Arc::new(fs))
        }
        OutputLocation::Url(url) => {
            let store: Arc<dyn ObjectStore> = match url.scheme() {
                "memory" => return Ok(Arc::new(InMemory::new())),
                "s3" | "s3a" => Arc::new(
                    AmazonS3Builder::from_env()
                        .with_url(url.as_str())
                        .build()
                        .map_err(err)?,
                ),
                "gs" => Arc::new(
                    GoogleCloudStorageBuilder::from_env()
                        .with_url(url.as_str())
                        .build()
                        .map_err(err)?,
                ),
                "az" | "azure" | "abfs" | "abfss" => Arc::new(
                    MicrosoftAzureBuilder::from_env()
                        .with_url(url.as_str())
                        .build()
                        .map_err(err)?,
                ),
                other => {
                    return Err(LoadError::Scheme {
                        scheme: other.to_string(),
                    })
                }
            };
            let prefix = url.path().trim_matches('/');
            if prefix.is_empty() {
                Ok(store)
            } else {
                Ok(Arc::new(PrefixStore::new(store, Path::from(prefix))))
            }
        }
    }
}

/// An S3 output that records its multipart uploads ([`super::uploads`]).
pub type RecordedS3 = super::uploads::RecordedUploads<PrefixStore<object_store::aws::AmazonS3>>;

/// Opens `location` for a run: as [`open`], but on S3 the store records its
/// multipart uploads, and the handle returned beside it aborts those a
/// killed run left ([`super::uploads`]).
pub fn open_for_run(
    location: &OutputLocation,
    run: super::RunTag,
) -> Result<(Store, Option<Arc<RecordedS3>>), LoadError> {
    let OutputLocation::Url(url) = location else {
        return Ok((open(location)?, None));
    };
    if !matches!(url.scheme(), "s3" | "s3a") {
        return Ok((open(location)?, None));
    }
    let s3 = AmazonS3Builder::from_env()
        .with_url(url.as_str())
        .build()
        .map_err(|source| LoadError::Open {
            location: location.to_string(),
            source,
        })?;
    let prefixed = PrefixStore::new(s3, Path::from(url.path().trim_matches('/')));
    let recorded = Arc::new(super::uploads::RecordedUploads::new(
        Arc::new(prefixed),
        run,
    ));
    Ok((recorded.clone(), Some(recorded)))
}

/// The object at `path` with the version a conditional put replaces
/// (`PutMode::Update`), or None when there is none.
pub async fn get_versioned(
    store: &Store,
    path: &Path,
) -> Result<Option<(bytes::Bytes, object_store::UpdateVersion)>, object_store::Error> {
    let found = match store.get(path).await {
        Ok(found) => found,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(error) => return Err(error),
    };
    let version = object_store::UpdateVersion {
        e_tag: found.meta.e_tag.clone(),
        version: found.meta.version.clone(),
    };
    Ok(Some((found.bytes().await?, version)))
}

/// The object at `path`, or None when there is none.
pub async fn get_if_exists(
    store: &Store,
    path: &Path,
) -> Result<Option<bytes::Bytes>, object_store::Error> {
    match store.get(path).await {
        Ok(result) => result.bytes().await.map(Some),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Every object under `prefix`.
pub async fn list_all(store: &Store, prefix: &Path) -> Result<Vec<ObjectMeta>, LoadError> {
    use futures::TryStreamExt;
    (store.list(Some(prefix)).try_collect().await)
        .map_err(|source| LoadError::store(prefix, source))
}

/// Deletes the object at `path`; one that is already gone is fine.
pub async fn delete_if_exists(store: &Store, path: &Path) -> Result<(), object_store::Error> {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(error) => Err(error),
    }
}
