//! The load: the warehouse layout, Parquet encoding, and the commit protocol
//! that makes a snapshot date visible whole or not at all.
//!
//! - [`store`]: the output location as an object store (local, S3, GCS, Azure, memory);
//! - [`layout`]: table names and Hive partition paths (SPEC §4);
//! - [`parquet`]: zstd Parquet with statistics and bounded row groups; files
//!   from outside checked before polars reads them (`parquet::check_file`);
//! - [`commit`]: files first, one Delta transaction per table, the snapshot
//!   marker (`manifest.json`) last;
//! - [`delta`]: every table a Delta Lake table (delta-rs), fenced commits,
//!   file statistics, vacuum;
//! - [`history`]: the complete snapshots before a date (for `changes`);
//! - [`read`]: a few columns or a slice of a stored file, via a local copy;
//! - [`spill`]: identity rows hash-partitioned on local disk, for the bounded-memory dedupe;
//! - [`stream`], [`followers`]: partitions written row group by row group;
//! - [`state`]: crawl checkpoints under `_state/`; [`lease`]: one run per date.

pub mod commit;
pub mod delta;
pub mod history;
pub mod layout;
pub mod lease;
pub mod migrate;
pub mod parquet;
pub mod read;
pub mod scratch;
pub mod spill;
pub mod state;
pub mod store;
pub mod stream;
pub mod uploads;
pub mod vacuum;

pub use commit::{
    complete_dates, read_file, read_manifest, Manifest, ManifestAccount, ManifestFile,
    SnapshotWriter,
};
pub use history::{account_file, previous_manifest, table_file};
pub use read::read_columns;
pub use store::{open, Store};

use chrono::NaiveDate;

/// Which run writes: the snapshot date and the run id that its data files,
/// upload records, lease and log lines are named by. One per `run` or
/// `merge`; the pipeline takes it as its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunTag {
    pub date: NaiveDate,
    pub run_id: String,
}

use std::path::PathBuf;

/// `parts` stacked into one frame (their chunks, not copied), or `None`
/// when there are none.
pub fn stack(
    parts: impl IntoIterator<Item = polars::prelude::DataFrame>,
) -> polars::prelude::PolarsResult<Option<polars::prelude::DataFrame>> {
    let mut parts = parts.into_iter();
    let Some(mut out) = parts.next() else {
        return Ok(None);
    };
    for part in parts {
        out.vstack_mut(&part)?;
    }
    Ok(Some(out))
}

/// A failure to read or write the warehouse.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot open output {location}: {source}")]
    Open {
        location: String,
        source: object_store::Error,
    },
    #[error("cannot create output folder {}: {source}", dir.display())]
    CreateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("output scheme {scheme}:// is not supported")]
    Scheme { scheme: String },
    #[error("object store error at {path}: {source}")]
    Store {
        path: String,
        source: object_store::Error,
    },
    #[error("upload of {path} failed: {source}")]
    Upload {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write or read the local spill {} (it lives under TMPDIR, default /tmp: is there room?): {source}", path.display())]
    Spill {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode table {table} as Parquet: {source}")]
    Encode {
        table: String,
        source: polars::prelude::PolarsError,
    },
    #[error("cannot decode Parquet file {path}: {source}")]
    Decode {
        path: String,
        source: polars::prelude::PolarsError,
    },
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("cannot serialize the manifest: {0}")]
    ManifestJson(serde_json::Error),
    #[error("manifest of {date} lists no {table} file: it was written by another program; re-run that date")]
    MissingTable {
        date: chrono::NaiveDate,
        table: String,
    },
    #[error("Delta table {table}: {detail}")]
    Delta { table: String, detail: String },
    /// The run lost its lease to a later run (paused or stalled past it):
    /// it commits nothing (exit 4).
    #[error(
        "this run lost the lease of snapshot {date} to a later run and committed nothing: {detail}"
    )]
    LeaseLost {
        date: chrono::NaiveDate,
        detail: String,
    },
    #[error("manifest {path} is not valid: {source}")]
    BadManifest {
        path: String,
        source: serde_json::Error,
    },
    /// The task writing `path` panicked (a bug) or was cancelled.
    #[error("the writer of {path} stopped: {detail}")]
    WriterTask { path: String, detail: String },
}

impl LoadError {
    pub(crate) fn store(path: &object_store::path::Path, source: object_store::Error) -> Self {
        LoadError::Store {
            path: path.to_string(),
            source,
        }
    }
}
