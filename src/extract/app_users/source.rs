//! Where a login export lives: one file or every file under a folder or an
//! object-store prefix, found through `object_store` so that local paths,
//! `s3://`, `gs://` and `az://` sources read the same way.

use futures::stream::BoxStream;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::job::OutputLocation;
use crate::load::read::LocalCopy;
use crate::load::{self, Store};

/// One export file: its key in the store and the name errors show (a local
/// path or a full URL).
pub(super) struct SourceFile {
    key: Path,
    pub name: String,
}

/// The data files of a source, sorted by name.
pub(super) struct SourceFiles {
    store: Store,
    pub files: Vec<SourceFile>,
}

impl SourceFiles {
    /// The file's bytes as they arrive.
    pub async fn stream(
        &self,
        file: &SourceFile,
    ) -> Result<BoxStream<'static, object_store::Result<bytes::Bytes>>, String> {
        let result = self
            .store
            .get(&file.key)
            .await
            .map_err(|err| format!("cannot read the file: {err}"))?;
        Ok(result.into_stream())
    }

    /// The file copied to a private local file, for Parquet (read a slice
    /// of rows at a time); removed when dropped.
    pub async fn local_copy(&self, file: &SourceFile) -> Result<LocalCopy, String> {
        LocalCopy::fetch(&self.store, file.key.as_ref())
            .await
            .map_err(|err| format!("cannot read the file: {err}"))
    }
}

/// How a listed key is shown in messages (a local path or a full URL).
type NameOf = Box<dyn Fn(&Path) -> String + Send>;

/// Lists `source`: the file it names, or every file under it. Files whose
/// name starts with `.` or `_` (`_SUCCESS` markers, `.crc` side files of
/// Spark and Hadoop) are not data and are left out; an empty source is an
/// error, never an account without users.
pub(super) async fn list(source: &OutputLocation) -> Result<SourceFiles, String> {
    let (store, key, name_of): (Store, Option<Path>, NameOf) = match source {
        OutputLocation::Local(path) => {
            if path.is_file() {
                let (Some(dir), Some(file)) = (path.parent(), path.file_name()) else {
                    return Err("not a file path".to_string());
                };
                let store = local_store(dir)?;
                let dir = dir.to_path_buf();
                let key = Path::from(file.to_string_lossy().as_ref());
                return Ok(SourceFiles {
                    store,
                    files: vec![SourceFile {
                        name: dir.join(file).display().to_string(),
                        key,
                    }],
                });
            }
            if !path.is_dir() {
                return Err("no such file or folder".to_string());
            }
            let store = local_store(path)?;
            let root = path.clone();
            (
                store,
                None,
                Box::new(move |key: &Path| root.join(key.as_ref()).display().to_string()),
            )
        }
        OutputLocation::Url(url) => {
            // Open the bucket itself; the URL's path is a key or a prefix in it.
            let mut root = url.clone();
            root.set_path("");
            let store =
                load::open(&OutputLocation::Url(root.clone())).map_err(|err| err.to_string())?;
            let key = url.path().trim_matches('/');
            let base = root.as_str().trim_end_matches('/').to_string();
            let key = (!key.is_empty()).then(|| Path::from(key));
            if let Some(key) = &key {
                if store.head(key).await.is_ok() {
                    return Ok(SourceFiles {
                        files: vec![SourceFile {
                            name: format!("{base}/{key}"),
                            key: key.clone(),
                        }],
                        store,
                    });
                }
            }
            (
                store,
                key,
                Box::new(move |key: &Path| format!("{base}/{key}")),
            )
        }
    };
    let objects: Vec<_> = store
        .list(key.as_ref())
        .try_collect()
        .await
        .map_err(|err| format!("cannot list the source: {err}"))?;
    let mut files: Vec<SourceFile> = objects
        .into_iter()
        .filter(|object| {
            object
                .location
                .filename()
                .is_some_and(|name| !name.starts_with('.') && !name.starts_with('_'))
        })
        .map(|object| SourceFile {
            name: name_of(&object.location),
            key: object.location,
        })
        .collect();
    if files.is_empty() {
        return Err(
            "no export files here: expected a file, or a folder/prefix holding .csv, .ndjson or .parquet files"
                .to_string(),
        );
    }
    files.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(SourceFiles { store, files })
}

fn local_store(dir: &std::path::Path) -> Result<Store, String> {
    object_store::local::LocalFileSystem::new_with_prefix(dir)
        .map(|fs| std::sync::Arc::new(fs) as Store)
        .map_err(|err| format!("cannot open the folder: {err}"))
}
