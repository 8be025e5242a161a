//! Reading stored table files a few columns or a slice at a time: the file
//! is first copied to a local temporary file (streamed, whatever the store),
//! so Parquet can be read from it without holding the whole file in memory.

use std::io::Write as _;

use futures::StreamExt;
use object_store::{path::Path, ObjectStoreExt};
use polars::prelude::*;

use super::stream::STREAM_ROW_GROUP_ROWS;
use super::{store::Store, LoadError};

/// Reads only `columns` of one table file; also returns the file's size.
pub async fn read_columns(
    store: &Store,
    path: &str,
    columns: &[&str],
) -> Result<(DataFrame, u64), LoadError> {
    let local = LocalCopy::fetch(store, path).await?;
    let frame = ParquetReader::new(local.open()?)
        .with_columns(Some(columns.iter().map(|c| c.to_string()).collect()))
        .finish()
        .map_err(|source| LoadError::Decode {
            path: path.to_string(),
            source,
        })?;
    Ok((frame, local.size))
}

/// Reads `columns` (all when `None`) of one table file a slice of
/// [`STREAM_ROW_GROUP_ROWS`] rows at a time, giving each slice to `each`;
/// returns the file's rows and size.
pub async fn for_each_slice<E: From<LoadError>>(
    store: &Store,
    path: &str,
    columns: Option<&[&str]>,
    each: impl FnMut(DataFrame) -> Result<(), E>,
) -> Result<(u64, u64), E> {
    LocalCopy::fetch(store, path)
        .await?
        .for_each_slice(columns, each)
}

/// A stored file copied to a local temporary file, so that Parquet can be
/// read from it a row group at a time whatever the store.
pub(crate) struct LocalCopy {
    path: std::path::PathBuf,
    /// The stored file's path, relative to the store's root.
    source: String,
    size: u64,
}

impl LocalCopy {
    pub(crate) async fn fetch(store: &Store, path: &str) -> Result<LocalCopy, LoadError> {
        let location = Path::from(path);
        let io = |source: std::io::Error| LoadError::Upload {
            path: path.to_string(),
            source,
        };
        let local = super::scratch::path("copy", ".parquet");
        let mut file = super::scratch::create_private_file(&local).map_err(io)?;
        // Owns the file from here, so it is removed whatever happens next.
        let mut copy = LocalCopy {
            path: local,
            source: path.to_string(),
            size: 0,
        };
        let mut stream = store
            .get(&location)
            .await
            .map_err(|source| LoadError::store(&location, source))?
            .into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| LoadError::store(&location, source))?;
            copy.size += chunk.len() as u64;
            file.write_all(&chunk).map_err(io)?;
        }
        Ok(copy)
    }

    pub(crate) fn open(&self) -> Result<std::fs::File, LoadError> {
        std::fs::File::open(&self.path).map_err(|source| LoadError::Upload {
            path: self.path.display().to_string(),
            source,
        })
    }

    /// The stored file's path, relative to the store's root.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// Reads `columns` (all when `None`) a slice of [`STREAM_ROW_GROUP_ROWS`]
    /// rows at a time, giving each slice to `each`; returns the file's rows
    /// and size.
    pub(crate) fn for_each_slice<E: From<LoadError>>(
        &self,
        columns: Option<&[&str]>,
        mut each: impl FnMut(DataFrame) -> Result<(), E>,
    ) -> Result<(u64, u64), E> {
        let decode = |source| LoadError::Decode {
            path: self.source.clone(),
            source,
        };
        let total = self.rows().map_err(decode)?;
        let mut offset = 0;
        while offset < total {
            let len = STREAM_ROW_GROUP_ROWS.min(total - offset);
            each(self.read_slice(offset, len, columns).map_err(decode)?)?;
            offset += len;
        }
        Ok((total as u64, self.size))
    }

    /// The file's row count (from its footer).
    pub(crate) fn rows(&self) -> PolarsResult<usize> {
        ParquetReader::new(std::fs::File::open(&self.path)?).num_rows()
    }

    /// `len` rows from `offset`, only `columns` when given.
    pub(crate) fn read_slice(
        &self,
        offset: usize,
        len: usize,
        columns: Option<&[&str]>,
    ) -> PolarsResult<DataFrame> {
        let file = std::fs::File::open(&self.path)?;
        ParquetReader::new(file)
            .with_columns(columns.map(|c| c.iter().map(|c| c.to_string()).collect()))
            .with_slice(Some((offset, len)))
            .finish()
    }
}

impl Drop for LocalCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
