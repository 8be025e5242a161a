//! `unionsnap merge JOB.toml --date D`: the second half of a sharded run.
//!
//! The pods of a Kubernetes Indexed Job each extract a share of the accounts
//! (`run --shard I/N`) and write raw partitions only. Once they have all
//! landed, `merge` reads every account's raw partition of D back from the
//! store, builds the derived tables and commits the manifest — the same
//! [`pipeline::commit_snapshot`] an unsharded run ends with, so the result is
//! the same. While an account's partition is missing it commits nothing and
//! names the missing accounts (exit 3): the date's manifest is not touched.

use chrono::NaiveDate;
use object_store::ObjectStoreExt;

use crate::job::Job;
use crate::load::{self, layout, LoadError, SnapshotWriter};
use crate::pipeline::{self, Committed, RunError};

/// How a merge ended.
#[derive(Debug)]
pub enum MergeOutcome {
    /// Every account had landed: the date is committed.
    Committed(Box<Committed>),
    /// These accounts (job order) have no raw partition for the date yet;
    /// nothing was written.
    Missing(Vec<String>),
}

/// Commits `date` from the raw partitions of every account of `job`.
pub async fn merge(job: &Job, date: NaiveDate, run_id: &str) -> Result<MergeOutcome, RunError> {
    let store = load::open(&job.output)?;
    let mut landed_files = Vec::new();
    let mut missing = Vec::new();
    for account in &job.accounts {
        let shape = pipeline::raw_shape(account);
        let path = layout::account_file(shape.table, date, &account.id);
        match store.head(&path).await {
            Ok(meta) => landed_files.push((account, shape, path, meta.size)),
            Err(object_store::Error::NotFound { .. }) => missing.push(account.id.clone()),
            Err(source) => {
                return Err(LoadError::Store {
                    path: path.to_string(),
                    source,
                }
                .into())
            }
        }
    }
    if !missing.is_empty() {
        return Ok(MergeOutcome::Missing(missing));
    }

    let mut writer = SnapshotWriter::begin(store.clone(), date).await?;
    let mut landed = Vec::with_capacity(landed_files.len());
    for (account, shape, path, bytes) in landed_files {
        let raw = load::read_file(&store, path.as_ref()).await?;
        writer.adopt(shape.table, &path, raw.height() as u64, bytes);
        landed.push(pipeline::account_identities(account, shape, raw)?);
        tracing::info!(account_id = %account.id, %path, "raw partition read back");
    }
    let committed = pipeline::commit_snapshot(job, run_id, writer, landed).await?;
    Ok(MergeOutcome::Committed(Box::new(committed)))
}
