//! Streaming a partition file: row groups are encoded as they come and
//! uploaded as the parts of a multipart upload, so a table of any size is
//! written with one row group in memory. The object appears only when the
//! upload completes (`finish`); an aborted upload leaves nothing visible.

use std::io::Write;
use std::sync::{Arc, Mutex};

use object_store::{path::Path, ObjectStoreExt, WriteMultipart};
use polars::io::parquet::write::BatchedWriter;
use polars::prelude::*;

use super::{commit::ManifestFile, store::Store, LoadError};

/// Rows per row group of streamed partitions. Smaller than
/// [`super::parquet::ROW_GROUP_ROWS`] to bound the memory of the write; a
/// row group of followers is ~15 MiB of Parquet.
pub const STREAM_ROW_GROUP_ROWS: usize = 250_000;
/// Multipart part size (S3 needs at least 5 MiB but for the last part).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploaded at once.
const PARTS_IN_FLIGHT: usize = 4;

/// The bytes the Parquet encoder writes, drained into the upload after each row group.
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut inner) => inner.extend_from_slice(buf),
            Err(poisoned) => poisoned.into_inner().extend_from_slice(buf),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuffer {
    fn take(&self) -> Vec<u8> {
        match self.0.lock() {
            Ok(mut inner) => std::mem::take(&mut *inner),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

/// A Parquet file being written row group by row group to the store.
pub struct PartitionWriter {
    table: String,
    path: Path,
    buffer: SharedBuffer,
    encoder: BatchedWriter<SharedBuffer>,
    upload: WriteMultipart,
    pending: Vec<DataFrame>,
    pending_rows: usize,
    rows: u64,
    bytes: u64,
}

impl PartitionWriter {
    /// Starts the upload of `path` for a table of `schema`.
    pub async fn create(
        store: &Store,
        table: &str,
        path: Path,
        schema: &Schema,
    ) -> Result<Self, LoadError> {
        let upload = store
            .put_multipart(&path)
            .await
            .map_err(|source| LoadError::store(&path, source))?;
        let buffer = SharedBuffer::default();
        let encoder = ParquetWriter::new(buffer.clone())
            .with_compression(super::parquet::compression())
            .with_statistics(StatisticsOptions::full())
            .batched(schema)
            .map_err(|source| LoadError::Encode {
                table: table.to_string(),
                source,
            })?;
        Ok(PartitionWriter {
            table: table.to_string(),
            path,
            buffer,
            encoder,
            upload: WriteMultipart::new_with_chunk_size(upload, PART_SIZE),
            pending: Vec::new(),
            pending_rows: 0,
            rows: 0,
            bytes: 0,
        })
    }

    fn encode_error(&self, source: PolarsError) -> LoadError {
        LoadError::Encode {
            table: self.table.clone(),
            source,
        }
    }

    /// Adds rows; a row group is encoded and uploaded once enough are pending.
    pub async fn write(&mut self, rows: DataFrame) -> Result<(), LoadError> {
        if rows.height() == 0 {
            return Ok(());
        }
        self.pending_rows += rows.height();
        self.pending.push(rows);
        if self.pending_rows >= STREAM_ROW_GROUP_ROWS {
            self.flush_row_group().await?;
        }
        Ok(())
    }

    async fn flush_row_group(&mut self) -> Result<(), LoadError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let parts = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        let Some(mut group) = super::stack(parts).map_err(|e| self.encode_error(e))? else {
            return Ok(());
        };
        group.rechunk_mut();
        self.rows += group.height() as u64;
        // Encoding and zstd are CPU work: keep them off the async workers.
        let result = tokio::task::block_in_place(|| self.encoder.write_batch(&group));
        result.map_err(|e| self.encode_error(e))?;
        self.drain().await
    }

    async fn drain(&mut self) -> Result<(), LoadError> {
        let bytes = self.buffer.take();
        self.bytes += bytes.len() as u64;
        self.upload.write(&bytes);
        self.upload
            .wait_for_capacity(PARTS_IN_FLIGHT)
            .await
            .map_err(|source| LoadError::store(&self.path, source))
    }

    /// Writes the last row group and the footer, and completes the upload.
    pub async fn finish(mut self) -> Result<ManifestFile, LoadError> {
        if let Err(error) = self.finish_encoding().await {
            let _ = self.upload.abort().await;
            return Err(error);
        }
        self.upload
            .finish()
            .await
            .map_err(|source| LoadError::store(&self.path, source))?;
        Ok(ManifestFile {
            table: self.table,
            path: self.path.to_string(),
            rows: self.rows,
            bytes: self.bytes,
        })
    }

    async fn finish_encoding(&mut self) -> Result<(), LoadError> {
        self.flush_row_group().await?;
        self.encoder.finish().map_err(|e| self.encode_error(e))?;
        self.drain().await
    }

    /// Abandons the upload: nothing becomes visible.
    pub async fn abort(self) {
        let _ = self.upload.abort().await;
    }
}
