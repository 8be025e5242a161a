//! Streaming a partition file: row groups are encoded as they come and
//! uploaded as the parts of a multipart upload, so a table of any size is
//! written with one row group in memory. The object appears only when the
//! upload completes (`finish`); an aborted upload leaves nothing visible.

use std::io::Write;
use std::sync::{Arc, Mutex};

use object_store::{path::Path, ObjectStoreExt, WriteMultipart};
use polars::io::parquet::write::BatchedWriter;
use polars::prelude::*;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::delta::{FileFacts, FileStats};
use super::{commit::ManifestFile, store::Store, LoadError};

/// Rows per row group of streamed partitions. Smaller than
/// [`super::parquet::ROW_GROUP_ROWS`] to bound the memory of the write; a
/// row group of followers is ~15 MiB of Parquet.
pub const STREAM_ROW_GROUP_ROWS: usize = 250_000;
/// Rows per row group of the derived tables (identities, people, changes):
/// a bucket group's rows are encoded as soon as they are this many, while
/// the next group (or the changes pass) is derived, instead of all at the
/// end of a small snapshot. About DuckDB's own row group (122,880 rows).
pub const DERIVED_ROW_GROUP_ROWS: usize = 100_000;
/// Multipart part size (S3 needs at least 5 MiB but for the last part).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploaded at once.
const PARTS_IN_FLIGHT: usize = 4;

/// The row groups being encoded at once, process-wide: one per core.
fn encoding_turns() -> &'static tokio::sync::Semaphore {
    static TURNS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    TURNS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    })
}

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
    schema: Schema,
    buffer: SharedBuffer,
    encoder: BatchedWriter<SharedBuffer>,
    upload: WriteMultipart,
    pending: Vec<DataFrame>,
    pending_rows: usize,
    /// Rows pending before a row group is encoded.
    row_group_rows: usize,
    rows: u64,
    bytes: u64,
    /// The file's statistics for the Delta log, row group by row group.
    stats: FileStats,
}

impl PartitionWriter {
    /// Starts the upload of `path` for a table of `schema`.
    pub async fn create(
        store: &Store,
        table: &str,
        path: Path,
        schema: &Schema,
    ) -> Result<Self, LoadError> {
        let upload = async {
            (store.put_multipart(&path).await).map_err(|source| LoadError::store(&path, source))
        };
        // The date goes in the vacuum's journal as the upload starts.
        let (upload, ()) = tokio::try_join!(upload, super::vacuum::journal(store, &path))?;
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
            schema: schema.clone(),
            buffer,
            encoder,
            upload: WriteMultipart::new_with_chunk_size(upload, PART_SIZE),
            pending: Vec::new(),
            pending_rows: 0,
            row_group_rows: STREAM_ROW_GROUP_ROWS,
            rows: 0,
            bytes: 0,
            stats: FileStats::default(),
        })
    }

    /// Encodes a row group once `rows` are pending (else
    /// [`STREAM_ROW_GROUP_ROWS`]).
    pub fn with_row_group_rows(mut self, rows: usize) -> Self {
        self.row_group_rows = rows.max(1);
        self
    }

    fn encode_error(&self, source: PolarsError) -> LoadError {
        LoadError::Encode {
            table: self.table.clone(),
            source,
        }
    }

    /// Adds rows; a row group is encoded and uploaded once enough are
    /// pending, of exactly `row_group_rows` (but for a flush and the last).
    /// Rows not of the file's schema are an error (the encoder would write
    /// them under the footer of another schema).
    pub async fn write(&mut self, rows: DataFrame) -> Result<(), LoadError> {
        if rows.height() == 0 {
            return Ok(());
        }
        if **rows.schema() != self.schema {
            return Err(self.encode_error(polars_err!(
                SchemaMismatch: "rows of schema {:?} for a file of schema {:?}",
                rows.schema(),
                self.schema
            )));
        }
        // A row group holds `row_group_rows` at most; the rest of `rows`
        // starts the next one. (Stacked whole, the ~99% of each previous
        // row group a next day lists again made row groups of two: twice
        // the memory to encode them, and the day after read them in
        // slices across two row groups, each decoded twice.)
        let mut rows = rows;
        while self.pending_rows + rows.height() >= self.row_group_rows {
            let room = self.row_group_rows.saturating_sub(self.pending_rows);
            let (head, tail) = rows.split_at(room as i64);
            self.pending_rows += head.height();
            self.pending.push(head);
            self.flush_row_group().await?;
            rows = tail;
        }
        if rows.height() > 0 {
            self.pending_rows += rows.height();
            self.pending.push(rows);
        }
        Ok(())
    }

    /// Encodes the pending rows as a row group now, however few, instead
    /// of waiting for more.
    async fn flush_row_group(&mut self) -> Result<(), LoadError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // A row group in the making (its rows stacked, its pages encoded)
        // is the biggest transient of a write: as many at once as there are
        // cores, however many files are being written.
        let _turn = encoding_turns()
            .acquire()
            .await
            .map_err(|_| self.encode_error(polars_err!(ComputeError: "encoding turns closed")))?;
        let parts = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        let Some(mut group) = super::stack(parts).map_err(|e| self.encode_error(e))? else {
            return Ok(());
        };
        group.rechunk_mut();
        self.rows += group.height() as u64;
        // Counting, encoding and zstd are CPU work: keep them off the
        // async workers.
        let result = tokio::task::block_in_place(|| {
            self.stats.update(&group)?;
            self.encoder.write_batch(&group)
        });
        drop((group, _turn));
        result.map_err(|e| self.encode_error(e))?;
        self.drain().await
    }

    async fn drain(&mut self) -> Result<(), LoadError> {
        let bytes = self.buffer.take();
        self.upload_bytes(bytes).await
    }

    async fn upload_bytes(&mut self, bytes: Vec<u8>) -> Result<(), LoadError> {
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
        let facts = match FileFacts::new(&self.table, &self.schema, &self.stats) {
            Ok(facts) => facts,
            Err(error) => {
                let _ = self.upload.abort().await;
                return Err(error);
            }
        };
        self.upload
            .finish()
            .await
            .map_err(|source| LoadError::store(&self.path, source))?;
        Ok(ManifestFile {
            table: self.table,
            path: self.path.to_string(),
            rows: self.rows,
            bytes: self.bytes,
            facts: Some(Arc::new(facts)),
        })
    }

    async fn finish_encoding(&mut self) -> Result<(), LoadError> {
        self.flush_row_group().await?;
        self.encoder.finish().map_err(|e| self.encode_error(e))?;
        // The footer, with the bounds of every row group's columns.
        let footer = self.buffer.take();
        self.stats
            .read_bounds(&footer)
            .map_err(|e| self.encode_error(e))?;
        self.upload_bytes(footer).await
    }

    /// Abandons the upload: nothing becomes visible.
    pub async fn abort(self) {
        let _ = self.upload.abort().await;
    }
}

/// What [`BackgroundWriter`] hands its task.
enum Message {
    Rows(DataFrame),
    Flush,
    Finish,
}

/// A [`PartitionWriter`] in a task of its own: rows are encoded and uploaded
/// while the caller computes the next ones (on two cores, deriving a bucket
/// group and encoding the previous one overlap). At most one batch of rows
/// waits for the task. The file is completed only by [`Self::finish`]:
/// aborted, dropped or failed, the upload is abandoned and nothing becomes
/// visible.
pub struct BackgroundWriter {
    path: String,
    rows: mpsc::Sender<Message>,
    task: Option<JoinHandle<Result<Option<ManifestFile>, LoadError>>>,
}

impl BackgroundWriter {
    pub fn spawn(mut writer: PartitionWriter) -> Self {
        let path = writer.path.to_string();
        let (rows, mut incoming) = mpsc::channel(1);
        let writing = async move {
            while let Some(message) = incoming.recv().await {
                let written = match message {
                    Message::Rows(rows) => writer.write(rows).await,
                    Message::Flush => writer.flush_row_group().await,
                    Message::Finish => return writer.finish().await.map(Some),
                };
                if let Err(error) = written {
                    writer.abort().await;
                    return Err(error);
                }
            }
            // The sender is gone without `finish`: abandon the file.
            writer.abort().await;
            Ok(None)
        };
        let task = tokio::spawn(writing.in_current_span());
        BackgroundWriter {
            path,
            rows,
            task: Some(task),
        }
    }

    /// Queues `rows`; waits while the previous batch is still queued. An
    /// error of the task (an earlier batch's) comes back here.
    pub async fn write(&mut self, rows: DataFrame) -> Result<(), LoadError> {
        if rows.height() == 0 {
            return Ok(());
        }
        if self.rows.send(Message::Rows(rows)).await.is_err() {
            return Err(self.stopped().await);
        }
        Ok(())
    }

    /// Has the rows queued so far encoded as a row group now (while the
    /// caller waits for the next ones), not when enough have come.
    pub async fn flush(&mut self) -> Result<(), LoadError> {
        if self.rows.send(Message::Flush).await.is_err() {
            return Err(self.stopped().await);
        }
        Ok(())
    }

    /// Writes what is queued, the footer, and completes the upload.
    pub async fn finish(mut self) -> Result<ManifestFile, LoadError> {
        let _ = self.rows.send(Message::Finish).await;
        match self.join().await {
            Ok(Some(file)) => Ok(file),
            Ok(None) => Err(self.task_error("it ended without completing the file")),
            Err(error) => Err(error),
        }
    }

    /// Abandons the upload: nothing becomes visible.
    pub async fn abort(mut self) {
        let task = self.task.take();
        // Without its sender, the task abandons the upload.
        drop(self);
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// The error the task stopped with.
    async fn stopped(&mut self) -> LoadError {
        match self.join().await {
            Err(error) => error,
            Ok(_) => self.task_error("it stopped before the rows were written"),
        }
    }

    async fn join(&mut self) -> Result<Option<ManifestFile>, LoadError> {
        let Some(task) = self.task.take() else {
            return Err(self.task_error("it had already stopped"));
        };
        match task.await {
            Ok(result) => result,
            Err(error) => Err(self.task_error(&error.to_string())),
        }
    }

    fn task_error(&self, detail: &str) -> LoadError {
        LoadError::WriterTask {
            path: self.path.clone(),
            detail: detail.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use object_store::memory::InMemory;

    const PATH: &str = "people/snapshot_date=2026-11-21/part-0.parquet";

    async fn writer(store: &Store) -> BackgroundWriter {
        let schema = Schema::from_iter([Field::new("person_id".into(), DataType::String)]);
        let writer = PartitionWriter::create(store, "people", Path::from(PATH), &schema)
            .await
            .unwrap();
        BackgroundWriter::spawn(writer)
    }

    /// The objects of the store but the vacuum's journal (the date of a
    /// file being written goes in it as the write starts, and stays).
    async fn objects(store: &Store) -> Vec<String> {
        let all: Vec<String> = store
            .list(None)
            .map_ok(|o| o.location.to_string())
            .try_collect()
            .await
            .unwrap();
        let journal = format!("{}/", crate::load::layout::JOURNAL);
        all.into_iter()
            .filter(|o| !o.starts_with(&journal))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_background_writer_completes_the_file_with_every_row() {
        let store: Store = Arc::new(InMemory::new());
        let mut writer = writer(&store).await;
        let ids: Vec<String> = (0..300_000).map(|i| format!("u{i}")).collect();
        for part in ids.chunks(70_000) {
            writer
                .write(df!("person_id" => part).unwrap())
                .await
                .unwrap();
        }
        let file = writer.finish().await.unwrap();
        assert_eq!((file.path.as_str(), file.rows), (PATH, 300_000));
        // Two row groups; the bounds come from the footer's statistics.
        let stats: serde_json::Value =
            serde_json::from_str(&file.facts.as_ref().unwrap().stats).unwrap();
        assert_eq!(stats["numRecords"], 300_000);
        assert_eq!(stats["minValues"]["person_id"], "u0");
        assert_eq!(stats["maxValues"]["person_id"], "u99999");
        assert_eq!(stats["nullCount"]["person_id"], 0);
        let back = super::super::commit::read_file(&store, PATH).await.unwrap();
        assert!(back.equals(&df!("person_id" => ids).unwrap()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_aborted_or_dropped_background_writer_leaves_nothing() {
        let store: Store = Arc::new(InMemory::new());
        let mut aborted = writer(&store).await;
        aborted
            .write(df!("person_id" => ["u1"]).unwrap())
            .await
            .unwrap();
        aborted.abort().await;
        let mut dropped = writer(&store).await;
        dropped
            .write(df!("person_id" => ["u2"]).unwrap())
            .await
            .unwrap();
        drop(dropped);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(objects(&store).await.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_write_is_an_error_and_leaves_nothing() {
        let store: Store = Arc::new(InMemory::new());
        let mut writer = writer(&store).await;
        // Not the file's schema: the task's encoder refuses it.
        let wrong = df!("n" => (0..300_000i64).collect::<Vec<_>>()).unwrap();
        let mut result = writer.write(wrong).await;
        if result.is_ok() {
            result = writer.finish().await.map(|_| ());
        }
        let error = result.unwrap_err();
        assert!(matches!(error, LoadError::Encode { .. }), "{error}");
        assert!(objects(&store).await.is_empty());
    }

    /// Row groups of exactly `row_group_rows`, whatever the sizes written,
    /// but for a flush and the last; the rows in their order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_row_group_holds_its_rows_at_most() {
        let store: Store = Arc::new(InMemory::new());
        let schema = Schema::from_iter([Field::new("n".into(), DataType::Int64)]);
        let mut writer = PartitionWriter::create(&store, "people", Path::from(PATH), &schema)
            .await
            .unwrap()
            .with_row_group_rows(100);
        let mut next = 0i64;
        let mut rows = |n: i64| {
            next += n;
            df!("n" => (next - n..next).collect::<Vec<_>>()).unwrap()
        };
        for n in [70, 70, 250, 5] {
            writer.write(rows(n)).await.unwrap();
        }
        writer.flush_row_group().await.unwrap();
        writer.write(rows(30)).await.unwrap();
        let file = writer.finish().await.unwrap();
        assert_eq!(file.rows, 425);
        let bytes = store
            .get(&Path::from(PATH))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let metadata =
            polars_parquet::parquet::read::read_metadata(&mut std::io::Cursor::new(&bytes))
                .unwrap();
        let groups: Vec<usize> = metadata.row_groups.iter().map(|g| g.num_rows()).collect();
        assert_eq!(groups, [100, 100, 100, 95, 30]);
        let back = super::super::commit::read_file(&store, PATH).await.unwrap();
        assert!(back.equals(&df!("n" => (0..425i64).collect::<Vec<_>>()).unwrap()));
    }
}
