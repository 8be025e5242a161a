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

use crate::extract;
use crate::job::Job;
use crate::load::lease::{lease_ttl, Lease};
use crate::load::{self, layout, LoadError, ManifestFile, SnapshotWriter, Store};
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

/// Commits `date` from the raw partitions of every account of `job`,
/// holding the date's lease (no run of the date may write meanwhile).
pub async fn merge(job: &Job, date: NaiveDate, run_id: &str) -> Result<MergeOutcome, RunError> {
    let store = load::open(&job.output)?;
    let lease = Lease::acquire(&store, date, None, run_id, lease_ttl()).await?;
    let result = merge_leased(job, date, run_id, store).await;
    lease.release().await;
    result
}

async fn merge_leased(
    job: &Job,
    date: NaiveDate,
    run_id: &str,
    store: Store,
) -> Result<MergeOutcome, RunError> {
    let mut landed_files = Vec::new();
    let mut missing = Vec::new();
    for account in &job.accounts {
        let shape = extract::raw_shape(account);
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

    let previous = load::history::previous_manifest(&store, date).await?;
    let mut writer = SnapshotWriter::begin(store.clone(), date).await?;
    let mut landed = Vec::with_capacity(landed_files.len());
    for (account, shape, path, bytes) in landed_files {
        let mut account_landed = pipeline::LandedAccount::new(account, previous.is_some())?;
        // Followers can be large: only the identity columns are read back,
        // a row group at a time.
        let rows = if shape.table == layout::FOLLOWERS {
            load::followers::for_each_identities(&store, path.as_ref(), |rows| {
                account_landed.push_raw(shape, rows)
            })
            .await?
            .0
        } else {
            let raw = load::read_file(&store, path.as_ref()).await?;
            let rows = raw.height() as u64;
            account_landed.push_raw(shape, raw)?;
            rows
        };
        writer.add_file(ManifestFile {
            table: shape.table.to_string(),
            path: path.to_string(),
            rows,
            bytes,
        });
        landed.push(account_landed.finish()?);
        tracing::info!(account_id = %account.id, %path, "raw partition read back");
    }
    let committed =
        pipeline::commit_snapshot(job, run_id, writer, landed, previous.as_ref()).await?;
    Ok(MergeOutcome::Committed(Box::new(committed)))
}
